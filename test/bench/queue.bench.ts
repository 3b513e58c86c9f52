/**
 * Finalization queue benchmarks (npm run bench; never part of npm test):
 *   1. jobs/s from enqueue to done with a no-op pipeline: the dispatcher on each backend,
 *      `producers` callers each enqueueing one job at a time (each durable before that caller
 *      goes on, like an upload answered after its job is written) while `workers` workers drain
 *      them; 1 producer is the worst case for group commit (every group holds one admission),
 *      BENCH_PRODUCERS (default 64) and 256 many uploads finishing at once. Admissions per second
 *      are bounded by producers / (commit + WAL sync time) until the CPU is;
 *   2. restore time of 100,000 persisted jobs (open + lease recovery + window load);
 *   3. event-loop delay while hashing a 1 GiB file (worker thread vs on the main thread).
 * Env: BENCH_QUEUE_JOBS (default 5000), BENCH_RESTORE_JOBS (100000), BENCH_HASH_SIZE (1GiB),
 *      BENCH_WORKERS (4), BENCH_PRODUCERS (64).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { parseSize } from '../../src/config/index.js';
import { sha256File } from '../../src/finalize/index.js';
import {
  Dispatcher,
  MemoryQueueBackend,
  openSpilloverQueueBackend,
  systemClock,
  tierForSize,
  type EnqueueInput,
  type QueueBackend,
} from '../../src/queue/index.js';

const JOBS = Number(process.env.BENCH_QUEUE_JOBS ?? 5000);
const RESTORE_JOBS = Number(process.env.BENCH_RESTORE_JOBS ?? 100_000);
const HASH_BYTES = parseSize(process.env.BENCH_HASH_SIZE ?? '1GiB');
const WORKERS = Number(process.env.BENCH_WORKERS ?? 4);
const PRODUCERS = Number(process.env.BENCH_PRODUCERS ?? 64);

const input = (i: number, at: number): EnqueueInput => {
  const size = [1_000, 20_000_000, 200_000_000][i % 3]!;
  return { id: `job-${i}`, slotPath: `s/${i}/f.bin`, size, priority: tierForSize(size), payload: { uploadId: `u${i}`, sourceFile: `/x/${i}` }, enqueuedAtMs: at };
};

async function throughput(name: string, backend: QueueBackend, producers: number): Promise<void> {
  let done = 0;
  let finish!: () => void;
  const allDone = new Promise<void>((r) => (finish = r));
  const dispatcher = new Dispatcher({
    backend,
    handler: async () => ({ kind: 'done' }),
    workers: WORKERS,
    jobTimeoutMs: 60_000,
    retry: { baseMs: 1000, maxMs: 60_000, maxRetries: 5 },
    strategy: 'least_loaded',
    healthCheckIntervalMs: 15_000,
    clock: systemClock,
    random: Math.random,
    events: {
      onDone: () => {
        if (++done === JOBS) finish();
      },
    },
  });
  dispatcher.start();
  const started = performance.now();
  let next = 0;
  const producer = async () => {
    for (let i = next++; i < JOBS; i = next++) {
      if (!(await backend.enqueue(input(i, Date.now())))) throw new Error(`job ${i} refused`);
      dispatcher.poke();
    }
  };
  await Promise.all(Array.from({ length: producers }, producer));
  const enqueuedMs = performance.now() - started;
  await allDone;
  const totalMs = performance.now() - started;
  await dispatcher.stop(0);
  const group = 'groupCommits' in backend ? (backend as { groupCommits: { commits: number; syncs: number; writes: number } }).groupCommits : undefined;
  await backend.close();
  const label = `${name}, ${producers} producer${producers === 1 ? '' : 's'}`;
  console.log(
    `  ${label.padEnd(46)} ${JOBS} jobs: ${((JOBS / totalMs) * 1000).toFixed(0).padStart(6)} jobs/s enqueue-to-done` +
      ` (${totalMs.toFixed(0)} ms; enqueue alone ${((JOBS / enqueuedMs) * 1000).toFixed(0)}/s)` +
      (group ? `; ${group.writes} writes (admissions + completions) in ${group.commits} commits, ${group.syncs} WAL syncs` : ''),
  );
}

async function restore(dir: string): Promise<void> {
  const path = join(dir, 'restore.sqlite');
  const writer = await openSpilloverQueueBackend({ path, memoryLimit: 1000, durable: true });
  const t0 = performance.now();
  for (let i = 0; i < RESTORE_JOBS; i += 1000) {
    await writer.enqueueMany(Array.from({ length: Math.min(1000, RESTORE_JOBS - i) }, (_, k) => input(i + k, i + k)));
  }
  const writeMs = performance.now() - t0;
  for (let i = 0; i < 100; i++) await writer.claimNext('gone', RESTORE_JOBS, 60_000); // in flight at the crash
  await writer.close();

  const t1 = performance.now();
  const spill = await openSpilloverQueueBackend({ path, memoryLimit: 1000, durable: true });
  const spillMs = performance.now() - t1;
  const residency = JSON.stringify(spill.residency);
  const firstClaim = performance.now();
  await spill.claimNext('w', RESTORE_JOBS, 60_000);
  const claimMs = performance.now() - firstClaim;
  console.log(`  wrote ${RESTORE_JOBS} jobs in batches of 1000: ${writeMs.toFixed(0)} ms`);
  console.log(`  SpilloverQueueBackend open (queue_size 1000): ${spillMs.toFixed(0)} ms, restored ${spill.recovery.restoredJobs}, ${residency}; first claim ${claimMs.toFixed(2)} ms`);
  await spill.close();
}

async function hashing(dir: string): Promise<void> {
  const path = join(dir, 'big.bin');
  const out = createWriteStream(path);
  const chunk = randomBytes(8 * 1024 * 1024);
  for (let written = 0; written < HASH_BYTES; written += chunk.length) {
    if (!out.write(chunk.subarray(0, Math.min(chunk.length, HASH_BYTES - written)))) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(r));
  const measure = async (name: string, fn: () => Promise<string>) => {
    const h = monitorEventLoopDelay({ resolution: 10 });
    const before = performance.eventLoopUtilization();
    h.enable();
    const t = performance.now();
    const digest = await fn();
    const ms = performance.now() - t;
    h.disable();
    const elu = performance.eventLoopUtilization(before).utilization;
    console.log(
      `  ${name.padEnd(40)} ${(HASH_BYTES / 2 ** 20 / (ms / 1000)).toFixed(0).padStart(5)} MiB/s, event-loop delay p50 ${(h.percentile(50) / 1e6).toFixed(1)} ms` +
        ` p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms max ${(h.max / 1e6).toFixed(1)} ms, main thread busy ${(elu * 100).toFixed(0)}% (${digest.slice(0, 8)})`,
    );
  };
  await measure('sha256File (worker thread)', () => sha256File(path));
  await measure('stream + createHash on the main thread', async () => {
    const hash = createHash('sha256');
    await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), hash);
    return hash.digest('hex');
  });
}

const dir = await mkdtemp(join(tmpdir(), 'hfs-queue-bench-'));
try {
  console.log(`queue bench: node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}, linux ${release()}, tmp ${tmpdir()}`);
  console.log(`1. enqueue-to-done, no-op pipeline, ${WORKERS} workers`);
  for (const producers of [...new Set([1, PRODUCERS, 256])]) {
    await throughput('MemoryQueueBackend', new MemoryQueueBackend(), producers);
    const spill = await openSpilloverQueueBackend({ path: join(dir, `spill-${producers}.sqlite`), memoryLimit: 1000, durable: true });
    await throughput('SpilloverQueueBackend (fsync)', spill, producers);
  }
  console.log(`2. restore of ${RESTORE_JOBS} persisted jobs (100 of them leased at the crash)`);
  await restore(dir);
  console.log(`3. sha256 of ${(HASH_BYTES / 2 ** 30).toFixed(2)} GiB`);
  await hashing(dir);
} finally {
  await rm(dir, { recursive: true, force: true });
}
