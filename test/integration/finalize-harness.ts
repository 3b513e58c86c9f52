/**
 * A FinalizationService on a temp data dir over a store (file, or S3 in finalize-s3-store.ts),
 * a log that tests can wait on, and helpers to hand it completed uploads the way the PUT and tus
 * handlers do. The store decides how the service is built and where a PUT body lives; the rest
 * (log, put, restart, dispose) is one harness for both.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { FinalizationService, queueDatabasePath, type CompletedUpload, type FinalizationOptions, type FinalizeOutcome } from '../../src/finalize/index.js';
import { createLogger, type Logger } from '../../src/observability/index.js';
import { logSpill } from '../../src/finalize/telemetry.js';
import { openSpilloverQueueBackend, systemClock } from '../../src/queue/index.js';
import { ContentAddressedStore, fileSource, FilePublishedStore, type UploadSource } from '../../src/storage/index.js';

export type Line = Record<string, unknown> & { msg: string; level: number };

/** A started finalizer over one store, as a store factory opens it. */
export interface OpenedStore<Parts> {
  readonly service: FinalizationService;
  /** Stores `data` where this backend keeps a finished PUT body, as a source not handed over yet. */
  incoming(data: Buffer): Promise<UploadSource>;
  /** What tests reach into besides the service (the published store, an S3 client…). */
  readonly parts: Parts;
  /** Releases what the store holds (clients); the service is stopped already. */
  close(): void;
}

/** How a harness builds its finalizer: file stores in the data dir, or S3 stores on a bucket. */
export interface StoreFactory<Parts> {
  /** The temp dir's name start. */
  readonly tempPrefix: string;
  /** Builds the service on `dir` (not started: the harness starts it). */
  open(dir: string, log: Logger, overrides: Partial<FinalizationOptions>): Promise<OpenedStore<Parts>>;
}

export type Harness<Parts = FileParts> = Parts & {
  dir: string;
  service: FinalizationService;
  lines: Line[];
  /** Resolves with the first line (seen or future) matching. */
  waitLog(pred: (l: Line) => boolean): Promise<Line>;
  /** An object or file as an incoming upload source (not handed over). */
  incoming(data: Buffer): Promise<UploadSource>;
  /** Stores `data` as an incoming body and hands it to the finalizer like a PUT. */
  put(slotPath: string, data: Buffer, extra?: Partial<CompletedUpload>): Promise<FinalizeOutcome>;
  /** A fresh service on the same data dir and store (after stop()), for restart scenarios. */
  restart(overrides?: Partial<FinalizationOptions>): Promise<Harness<Parts>>;
  dispose(): Promise<void>;
};

/** A JSON logger at debug whose lines tests read and wait on. */
/** How long waitLog waits for its line (the slowest legitimate wait here is a few retry delays). */
const WAIT_LOG_MS = 60_000;

export function lineLogger(): { lines: Line[]; waitLog(pred: (l: Line) => boolean): Promise<Line>; log: Logger } {
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
  return {
    lines,
    log,
    waitLog(pred) {
      const seen = lines.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        // Never a hang: a line that does not come fails the test, naming what came last.
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no matching log line within ${WAIT_LOG_MS} ms; the last ones: ${lines.slice(-3).map((l) => l.msg).join(' | ')}`));
        }, WAIT_LOG_MS);
        const waiter = { pred, resolve: (l: Line) => (clearTimeout(timer), resolve(l)) };
        waiters.push(waiter);
      });
    },
  };
}

/** Starts a finalizer over `store` on a new temp dir, or on `reuseDir` (left in place by dispose). */
export async function startHarness<Parts>(store: StoreFactory<Parts>, overrides: Partial<FinalizationOptions> = {}, reuseDir?: string): Promise<Harness<Parts>> {
  const dir = reuseDir ?? (await mkdtemp(join(tmpdir(), store.tempPrefix)));
  const { lines, log, waitLog } = lineLogger();
  const opened = await store.open(dir, log, overrides);
  const { service, incoming } = opened;
  await service.start();
  return {
    ...opened.parts,
    dir,
    service,
    lines,
    waitLog,
    incoming,
    async put(slotPath, data, extra = {}) {
      const source = await incoming(data);
      return service.finalize({ protocol: 'put', uploadId: randomUUID(), slotPath, contentType: 'application/octet-stream', size: data.length, source, ...extra });
    },
    async restart(more = {}) {
      await service.stop(0);
      opened.close();
      return startHarness(store, { ...overrides, ...more }, dir);
    },
    async dispose() {
      await service.stop(0);
      opened.close();
      if (reuseDir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface FileParts {
  published: FilePublishedStore;
}

/** File stores in the data dir with the SQLite spillover queue, options set here (not from a Config). */
export const fileStore: StoreFactory<FileParts> = {
  tempPrefix: 'hfs-finalize-',
  async open(dir, log, overrides) {
    const published = new FilePublishedStore(dir);
    await published.init();
    const service = new FinalizationService({
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
    });
    return {
      service,
      parts: { published },
      async incoming(data) {
        const sourceFile = published.newIncomingFile();
        await mkdir(join(dir, 'incoming'), { recursive: true });
        await writeFile(sourceFile, data);
        return fileSource(sourceFile, data.length);
      },
      close() {},
    };
  },
};

/** Resolves when `n` lines matching `pred` were logged. */
export async function waitCount(h: Harness<unknown>, pred: (l: Line) => boolean, n: number): Promise<void> {
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
