/**
 * The Node flags the server is started with (`npm start`, the benches and the test helpers;
 * docs/performance.md "Garbage collection while the disk is slow"). They must be given to `node`
 * itself: V8 reads them once, when the heap is set up, and NODE_OPTIONS does not accept them.
 * The bin's shebang stays `#!/usr/bin/env node` (BusyBox's env has no -S); a server started
 * without them logs a warning naming them.
 *
 * Why: V8 sets the old generation's limit a few MB above the live heap (~20 MB here). While a
 * body waits for a slow disk, the socket buffers and stream objects in flight survive two
 * scavenges and are promoted; each promotion then finds less room left than the young
 * generation's size and starts a full mark-compact. Under disk pressure that was ~100
 * mark-compacts per GiB uploaded (2-3 CPU-s/GiB, more than hashing costs). A 64 MB floor under
 * the limit keeps that room; the heap still collects normally above it.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64'];

/** The flags of SERVER_NODE_FLAGS this process was started without (for a start-up warning). */
export function missingServerNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return SERVER_NODE_FLAGS.filter((flag) => !execArgv.includes(flag));
}
