/**
 * A FinalizationService on a temp data dir with the SQLite backend, a log that tests can wait
 * on, and helpers to hand it completed uploads the way the PUT and tus handlers do.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { FinalizationService, queueDatabasePath, type CompletedUpload, type FinalizationOptions, type FinalizeOutcome } from '../../src/finalize/index.js';
import { createLogger } from '../../src/observability/index.js';
import { logSpill } from '../../src/finalize/telemetry.js';
import { openSpilloverQueueBackend, systemClock } from '../../src/queue/index.js';
import { ContentAddressedStore, fileSource, FilePublishedStore } from '../../src/storage/index.js';

export type Line = Record<string, unknown> & { msg: string; level: number };

export interface Harness {
  dir: string;
  service: FinalizationService;
  published: FilePublishedStore;
  lines: Line[];
  /** Resolves with the first line (seen or future) matching. */
  waitLog(pred: (l: Line) => boolean): Promise<Line>;
  /** Hands a PUT body to the finalizer like handlePut does. */
  put(slotPath: string, data: Buffer, extra?: Partial<CompletedUpload>): Promise<FinalizeOutcome>;
  /** A fresh service on the same data dir (after stop()), for restart scenarios. */
  restart(overrides?: Partial<FinalizationOptions>): Promise<Harness>;
  dispose(): Promise<void>;
}

export async function startHarness(overrides: Partial<FinalizationOptions> = {}, reuseDir?: string): Promise<Harness> {
  const dir = reuseDir ?? (await mkdtemp(join(tmpdir(), 'hfs-finalize-')));
  const published = new FilePublishedStore(dir);
  await published.init();
  const lines: Line[] = [];
  const waiters: Array<{ pred: (l: Line) => boolean; resolve: (l: Line) => void }> = [];
  const log = createLogger(
    { level: 'debug', format: 'json' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const text of chunk.toString().split('\n').filter(Boolean)) {
          const line = JSON.parse(text) as Line;
          lines.push(line);
          for (const w of [...waiters]) {
            if (w.pred(line)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve(line);
            }
          }
        }
        cb();
      },
    }),
  );
  const options: FinalizationOptions = {
    openBackend: () => openSpilloverQueueBackend({ path: queueDatabasePath(dir), memoryLimit: overrides.capacity ?? 100, durable: true, onSpill: (e) => logSpill(log, e) }),
    persistent: true,
    recoveryEnabled: true,
    deadLetterEnabled: true,
    published,
    cas: new ContentAddressedStore(join(dir, 'cas')),
    stagingDir: join(dir, 'queue', 'staging'),
    webhook: null,
    circuitBreaker: { failureThreshold: 3, coolDownMs: 100 },
    workers: 2,
    jobTimeoutMs: 10_000,
    retry: { baseMs: 5, maxMs: 20, maxRetries: 2 },
    strategy: 'least_loaded',
    healthCheckIntervalMs: 1_000,
    pollIntervalMs: 200,
    capacity: 100,
    backpressureThreshold: 0.8,
    emergencyThreshold: 0.95,
    largeTierLimit: 20,
    priorityLevels: 3,
    downloadWaitMs: 2_000,
    clock: systemClock,
    random: Math.random,
    log,
    ...overrides,
  };
  const service = new FinalizationService(options);
  await service.start();
  const harness: Harness = {
    dir,
    service,
    published,
    lines,
    waitLog(pred) {
      const seen = lines.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
    async put(slotPath, data, extra = {}) {
      const sourceFile = published.newIncomingFile();
      await mkdir(join(dir, 'incoming'), { recursive: true });
      await writeFile(sourceFile, data);
      return service.finalize({ protocol: 'put', uploadId: randomUUID(), slotPath, contentType: 'application/octet-stream', size: data.length, source: fileSource(sourceFile, data.length), ...extra });
    },
    async restart(more = {}) {
      await service.stop(0);
      return startHarness({ ...overrides, ...more }, dir);
    },
    async dispose() {
      await service.stop(0);
      if (reuseDir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** Resolves when `n` lines matching `pred` were logged. */
export async function waitCount(h: Harness, pred: (l: Line) => boolean, n: number): Promise<void> {
  for (let seen = h.lines.filter(pred).length; seen < n; seen = h.lines.filter(pred).length) {
    const before = seen;
    await h.waitLog((l) => pred(l) && h.lines.filter(pred).length > before); // the next one, not a poll
  }
}

/** A gate tests hold jobs at (onStep), then open. */
export function gate(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { wait: () => opened, open };
}

export const slot = (name: string) => `${randomBytes(6).toString('hex')}/${name}`;
