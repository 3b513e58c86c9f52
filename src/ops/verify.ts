/**
 * `verify`: re-hashes every published file and compares it with the record written when it was
 * published (size and sha256). Only reads, so it runs the same way inside a running server (admin
 * API) and offline. Files published without a recorded hash are counted as unverifiable. Works on
 * any PublishedStore: a local file is hashed off the main thread (sha256File), an S3 object as it
 * streams in. On the file backend it also reads the records: one whose file is gone (not a
 * deletion's tombstone) is a `missing` file, restorable by `recover` when the content store still
 * holds its bytes. On S3 a published file has no record apart from the object: what stays when
 * the object is deleted from the bucket by hand is its claim (`claims/<path>`), which keeps the
 * slot taken; such a claim is a `missing` file too, freed by `recover`.
 */
import { join } from 'node:path';
import { sha256File } from '../finalize/index.js';
import { sha256Stream } from '../finalize/hash-file.js';
import { ContentAddressedStore, hasClaims, type ClaimedPaths, type PublishedEntry, type PublishedStore } from '../storage/index.js';
import type { ProgressSink, VerifyProblem, VerifyReport } from './types.js';
import { walkFiles } from './walk.js';

/** A record younger than this may belong to a publish in progress (record first, then the link). */
const RECORD_SETTLE_MS = 60_000;


export interface VerifyOptions {
  readonly published: Pick<PublishedStore, 'list' | 'record' | 'read' | 'stat'>;
  /** storage.backend = "file": the data directory, so files are hashed from their path. Absent: read through the store. */
  readonly dataDir?: string;
  readonly progress?: ProgressSink;
  readonly signal?: AbortSignal;
  /** Records younger than this are not judged (a running server publishes record first, then the file). Default 60 s; 0 offline. */
  readonly recordSettleMs?: number;
  /**
   * True while a job that is not done holds the slot (its publish runs or waits: a claim without
   * its file yet). Given, it judges claims (S3) instead of recordSettleMs: a server-side copy of a
   * large file can take longer than any fixed window.
   */
  readonly slotBusy?: (slotPath: string) => Promise<boolean>;
}

export async function verifyPublished(options: VerifyOptions): Promise<VerifyReport> {
  // First pass: what is there, so the progress bar knows the total (bytes, for an honest ETA).
  const files: PublishedEntry[] = [];
  for await (const f of options.published.list()) files.push(f);
  files.sort((a, b) => a.path.localeCompare(b.path));
  const total = files.reduce((n, f) => n + f.size, 0);
  const problems: VerifyProblem[] = [];
  let done = 0;
  let unverifiable = 0;
  options.progress?.({ done, total, unit: 'bytes' });
  for (const f of files) {
    options.signal?.throwIfAborted();
    const problem = await checkOne(f, options);
    if (problem === 'unverifiable') unverifiable += 1;
    else if (problem !== null) problems.push(problem);
    done += f.size;
    options.progress?.({ done, total, unit: 'bytes' });
  }
  if (options.dataDir !== undefined) problems.push(...(await missingFiles(options.dataDir, new Set(files.map((f) => f.path)), options)));
  const { published } = options;
  if (hasClaims(published)) problems.push(...(await unpublishedClaims(published, options)));
  return { checked: files.length, bytes: total, unverifiable, problems };
}

/** Records (file backend) whose published file is gone. */
async function missingFiles(dataDir: string, present: ReadonlySet<string>, options: VerifyOptions): Promise<VerifyProblem[]> {
  const out: VerifyProblem[] = [];
  const settled = Date.now() - (options.recordSettleMs ?? RECORD_SETTLE_MS);
  const content = new ContentAddressedStore(join(dataDir, 'cas'));
  for await (const f of walkFiles(join(dataDir, 'meta'))) {
    options.signal?.throwIfAborted();
    if (!f.rel.endsWith('.json') || f.mtimeMs > settled) continue;
    const slotPath = f.rel.slice(0, -'.json'.length);
    if (present.has(slotPath)) continue;
    const record = await options.published.record(slotPath);
    if (record === null || record.deletedAtMs !== undefined) continue; // unreadable (recover's business) or deleted for good
    const kept = typeof record.sha256 === 'string' && (await content.find(record.sha256)) !== null;
    out.push({ slotPath, kind: 'missing', detail: kept ? 'the published file is gone; the content store still holds its bytes: recover restores it (with the server running, once its record is 15 minutes old)' : 'the published file is gone, and no copy is left' });
  }
  return out;
}

/** Claims (S3) whose file is gone: the object was deleted from the bucket, and the claim alone holds the slot. */
async function unpublishedClaims(store: Pick<PublishedStore, 'stat'> & ClaimedPaths, options: VerifyOptions): Promise<VerifyProblem[]> {
  const out: VerifyProblem[] = [];
  const settled = Date.now() - (options.recordSettleMs ?? RECORD_SETTLE_MS);
  for await (const c of store.unpublishedClaims()) {
    options.signal?.throwIfAborted();
    // A publish claims first, then copies the bytes: its job finishes it (a quarantine release,
    // which runs without a job, may be reported while it copies).
    if (options.slotBusy ? await options.slotBusy(c.path) : c.mtimeMs > settled) continue;
    if ((await store.stat(c.path)) !== null) continue; // published since the listing
    out.push({ slotPath: c.path, kind: 'missing', detail: 'the published file is gone from the bucket; its claim still holds the slot: recover releases it (with the server running, once the claim is 15 minutes old)' });
  }
  return out;
}

async function checkOne(f: PublishedEntry, options: VerifyOptions): Promise<VerifyProblem | 'unverifiable' | null> {
  const slotPath = f.path;
  const record = await options.published.record(slotPath);
  if (record === null) return { slotPath, kind: 'no_record', detail: 'no metadata record beside the published file' };
  if (typeof record.size === 'number' && record.size !== f.size) {
    return { slotPath, kind: 'size_mismatch', detail: `recorded ${record.size} bytes, file has ${f.size}` };
  }
  if (typeof record.sha256 !== 'string') return 'unverifiable';
  let actual: string;
  const signal = options.signal ? { signal: options.signal } : {};
  try {
    actual =
      options.dataDir !== undefined
        ? await sha256File(join(options.dataDir, 'files', slotPath), signal)
        : await sha256Stream(options.published.read(slotPath), options.signal);
  } catch (err) {
    if (options.signal?.aborted) throw err;
    const e = err as { code?: string; name?: string };
    return { slotPath, kind: 'unreadable', detail: e.code ?? e.name ?? 'read failed' };
  }
  if (actual !== record.sha256) return { slotPath, kind: 'corrupt', detail: `recorded sha256 ${record.sha256}, file hashes to ${actual}` };
  return null;
}
