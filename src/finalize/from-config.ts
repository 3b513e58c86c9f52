/**
 * Builds the FinalizationService of the embedded single-node mode from the config. Backend:
 *   persistent_queue  spillover_to_disk
 *   true              true     SpilloverQueueBackend, <data_dir>/queue/queue.sqlite fsynced per
 *                              commit, queue_size jobs in memory, the rest on disk only (default)
 *   true              false    the same, every queued job also in memory
 *   false             true     SpilloverQueueBackend on a scratch <data_dir>/queue/spill.sqlite
 *   false             false    MemoryQueueBackend
 * plus <data_dir>/queue/staging for admitted PUT bodies and <data_dir>/cas for dedup, and with
 * [scan] enabled a clamd scan before publishing (flagged files go to parts.quarantine).
 */
import { join } from 'node:path';
import { describeClamdAddress, isClusterMode, ownSubdir, type Config } from '../config/index.js';
import type { Logger } from '../observability/index.js';
import {
  DEFAULT_AGING_THRESHOLD_MS,
  MemoryQueueBackend,
  openSpilloverQueueBackend,
  systemClock,
  type Clock,
  type PriorityLevels,
  type QueueBackend,
} from '../queue/index.js';
import { ClamdScanner } from '../scan/index.js';
import type { ContentAddressedStore, PublishedStore, QuarantineStore, TusUploadStore, UploadSources } from '../storage/index.js';
import type { FinalizationOptions, FinalizeStep, PublishAnnouncer, ScanSettings, TusUploads } from './finalization-options.js';
import { FinalizationService } from './finalization-service.js';
import type { DedupStore } from './pipeline.js';
import { fileContentStoreFromConfig } from './storage-from-config.js';
import { logSpill } from './telemetry.js';
import { completedTusUpload } from './completed-tus-upload.js';

export interface FinalizationParts {
  readonly published: PublishedStore;
  readonly tusStore: TusUploadStore;
  /** storage.backend = "s3": the dedup store and the source refs of the S3 stores (s3StoresFromConfig). Default: the file backend's. */
  readonly content?: DedupStore | null;
  readonly sources?: UploadSources;
  readonly log: Logger;
  readonly clock?: Clock;
  /** Where flagged files go (app.ts builds it: the HTTP layer answers 451 from it too). */
  readonly quarantine?: QuarantineStore;
  /** Overrides for tests (timings, hooks); applied last. */
  readonly overrides?: Partial<FinalizationOptions>;
  /** Cluster mode (src/cluster): the shared queue with its local journal, and publish notifications. */
  readonly cluster?: ClusterFinalization;
}

export interface ClusterFinalization {
  readonly openBackend: () => Promise<QueueBackend>;
  readonly announcer: PublishAnnouncer;
}

/** How long a GET of a file still being finalized waits for it before answering 503. */
export const DOWNLOAD_WAIT_MS = 10_000;

export function queueDatabasePath(dataDir: string): string {
  return join(dataDir, 'queue', 'queue.sqlite');
}

/**
 * The content-addressed store of [finalize] dedup for the file backend (<data_dir>/cas), or null
 * when dedup is off. storage.backend = "s3" takes s3StoresFromConfig(config).content instead.
 */
export function contentStoreFromConfig(config: Config): ContentAddressedStore | null {
  return fileContentStoreFromConfig(config);
}

export function finalizationFromConfig(config: Config, parts: FinalizationParts): FinalizationService {
  const { workers, queue_resilience: qr, timeouts, finalize, storage } = config;
  const dataDir = storage.dataDir;
  const agingThresholdMs = qr.priorityAgingEnabled ? DEFAULT_AGING_THRESHOLD_MS : null;
  const openBackend = async (): Promise<QueueBackend> => {
    if (!qr.persistentQueue && !qr.spilloverToDisk) return new MemoryQueueBackend({ agingThresholdMs });
    return openSpilloverQueueBackend({
      // Not persistent: a scratch journal (not fsynced; a restart keeps only its dead letters).
      path: qr.persistentQueue ? queueDatabasePath(dataDir) : join(dataDir, 'queue', 'spill.sqlite'),
      memoryLimit: qr.spilloverToDisk ? workers.queueSize : Infinity,
      durable: qr.persistentQueue,
      agingThresholdMs,
      onSpill: (event) => logSpill(parts.log, event),
      modes: { fileMode: storage.fileMode, dirMode: storage.dirMode },
    });
  };
  const { cluster } = parts;
  const options: FinalizationOptions = {
    openBackend: cluster?.openBackend ?? openBackend,
    // Cluster mode: the journal is always durable, and no instance buries the shared queue's jobs.
    persistent: cluster !== undefined || qr.persistentQueue,
    recoveryEnabled: cluster !== undefined || qr.recoveryEnabled,
    deadLetterEnabled: qr.deadLetterEnabled,
    published: parts.published,
    cas: parts.content !== undefined ? parts.content : contentStoreFromConfig(config),
    ...(parts.sources && { sources: parts.sources }),
    // Shared by every instance (a PUT's job may run anywhere); one sub-folder each in cluster mode.
    stagingDir: ownSubdir(config, join(dataDir, 'queue', 'staging')),
    dirMode: storage.dirMode,
    webhook: finalize.webhookUrl === '' ? null : { url: finalize.webhookUrl, secret: finalize.webhookSecret, timeoutMs: finalize.webhookTimeoutMs },
    circuitBreaker: workers.circuitBreakerEnabled ? {} : null,
    workers: workers.count,
    jobTimeoutMs: workers.queueTimeoutMs,
    retry: { baseMs: timeouts.retryBaseDelayMs, maxMs: timeouts.retryMaxDelayMs, maxRetries: timeouts.maxRetryAttempts },
    strategy: qr.loadBalancingStrategy,
    healthCheckIntervalMs: qr.healthCheckIntervalMs,
    capacity: workers.queueSize,
    backpressureThreshold: workers.backpressureThreshold,
    emergencyThreshold: qr.emergencyThreshold,
    largeTierLimit: workers.largeFileQueueSize,
    priorityLevels: (workers.priorityQueueEnabled ? qr.priorityLevels : 1) as PriorityLevels,
    downloadWaitMs: DOWNLOAD_WAIT_MS,
    clock: parts.clock ?? systemClock,
    random: Math.random,
    log: parts.log,
    tus: tusUploads(parts.tusStore),
    ...(cluster && { announcer: cluster.announcer }),
    // Other instances change the shared queue's counts: follow them for backpressure.
    ...(isClusterMode(config) && { countsRefreshMs: Math.min(qr.healthCheckIntervalMs, 2_000) }),
    ...(config.testing.crashAt !== null && { onStep: crashAt(config.testing.crashAt, parts.log) }),
    ...(config.testing.holdAt !== null && { onStep: holdAt(config.testing.holdAt, parts.log) }),
    scan: scanSettings(config, parts.log),
    quarantine: parts.quarantine ?? null,
    ...parts.overrides,
  };
  return new FinalizationService(options);
}

/** [scan]: clamd over its socket, or null when scanning is off. */
export function scanSettings(config: Config, log: Logger): ScanSettings | null {
  const scan = config.scan;
  if (!scan.enabled) return null;
  log.info(
    { clamd: describeClamdAddress(scan.clamd), extensions: scan.extensions, maxSize: scan.maxBytes, oversize: scan.oversize, unavailable: scan.unavailable, concurrency: scan.concurrency },
    'Malware scanning enabled',
  );
  return {
    scanner: new ClamdScanner({ address: scan.clamd, timeoutMs: scan.timeoutMs }),
    policy: { extensions: scan.extensions, maxBytes: scan.maxBytes, oversize: scan.oversize, unavailable: scan.unavailable },
    concurrency: scan.concurrency,
  };
}

function tusUploads(store: TusUploadStore): TusUploads {
  return {
    metadata: (uploadId) => store.metadata(uploadId),
    async *finished() {
      for await (const u of store.finished()) {
        if (u.state === null) continue; // not created through a slot: nothing to publish
        yield completedTusUpload(u, u.state);
      }
    },
    discard: (uploadId) => store.discard(uploadId),
    markFinished: (uploadId) => store.markFinished(uploadId),
  };
}

/** Test-only (testing.crash_at / HFS_TEST_CRASH_AT): SIGKILL this process when `step` is reached. */
function crashAt(step: string, log: Logger): (reached: FinalizeStep) => void {
  log.warn({ step }, 'Test crash hook armed: the process kills itself at this finalization step');
  return (reached) => {
    if (reached === step) process.kill(process.pid, 'SIGKILL');
  };
}

/**
 * Test-only (testing.hold_at / HFS_TEST_HOLD_AT): jobs reaching `step` wait there until the
 * process gets SIGUSR2 (or the job is aborted); after the first SIGUSR2 no job waits any more.
 */
function holdAt(step: string, log: Logger): (reached: FinalizeStep, jobId: string, signal?: AbortSignal) => Promise<void> {
  log.warn({ step }, 'Test hold hook armed: jobs wait at this finalization step until SIGUSR2');
  let released = false;
  const waiting = new Set<() => void>();
  process.on('SIGUSR2', () => {
    released = true;
    for (const wake of [...waiting]) wake();
  });
  return async (reached, jobId, signal) => {
    if (reached !== step || released) return;
    log.info({ step, jobId }, 'Test hold: job waiting for SIGUSR2');
    await new Promise<void>((resolve) => {
      const wake = () => {
        waiting.delete(wake);
        signal?.removeEventListener('abort', wake);
        resolve();
      };
      waiting.add(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  };
}
