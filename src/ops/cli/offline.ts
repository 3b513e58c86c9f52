/**
 * OpsApi on the data directory of a stopped server: the tus directory, the published files and
 * their records, and the SQLite queue file. connect.ts takes the data-directory lock for it (the
 * queue file must have one owner: opening it for writing requeues every lease).
 *
 * Reads use a read-only connection to the queue file (nothing changes, not even lease
 * recovery); replay, purge, retry and re-admission open it with the backend the server uses
 * (openSpilloverQueueBackend, durable). With persistent_queue = false nothing of the queue
 * survives a stop but dead letters; re-admission is then left to the server's start-up.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/index.js';
import { s3StoresFromConfig } from '../../finalize/s3-stores.js';
import { DeadLetterQueue, jobIdOf, queueDatabasePath, toPayload, type CompletedUpload, type DedupStore, type FinalizeJobPayload, type FinalizeOutcome } from '../../finalize/index.js';
import { QueueFile, canRetryNow, emptyCounts, openSpilloverQueueBackend, tierForSize, type PriorityLevels, type QueueBackend } from '../../queue/index.js';
import { FilePublishedStore, FileSpaceProbe, TusFileStore, hasClaims, uploadSources, type PublishedStore, type TusUploadStore, type UploadSources } from '../../storage/index.js';
import type { DataDirLock } from '../data-dir-lock.js';
import { discardTusUpload } from '../tus-uploads.js';
import { OfflineQuarantine } from '../quarantine-ops.js';
import { recover, type RecoveryContext } from '../recovery.js';
import { offlineFilesystem, spaceReport } from '../space-report.js';
import {
  OpsFailure,
  type DeadLetterSelector,
  type DeadLetterView,
  type JobView,
  type ListJobsQuery,
  type OpsApi,
  type ProgressSink,
  type QuarantineView,
  type QueueStatusView,
  type RecoveryReport,
  type RetryView,
  type SpaceReport,
  type UploadView,
  type VerifyReport,
} from '../types.js';
import { verifyPublished } from '../verify.js';
import { deadLetterOfJob, jobView, pendingByTier, totalOf, uploadView } from '../views.js';

/** The stores of storage.backend, as the offline commands use them. */
interface OfflineStores {
  readonly tus: TusUploadStore;
  /** The S3 client (full keys); null for the file backend. */
  readonly client: S3Client | null;
  readonly published: PublishedStore;
  readonly content: DedupStore | null;
  readonly sources: UploadSources;
  /** True for the file backend: published files are below the data directory. */
  readonly local: boolean;
  /** S3: completed PUT bodies below incoming/ (recover). */
  readonly incomingObjects?: RecoveryContext['incomingObjects'];
  destroy(): void;
}

export class OfflineOps implements OpsApi {
  readonly mode = 'offline' as const;
  readonly #config: Config;
  readonly #dataDir: string;
  readonly #queuePath: string | null;
  #stores: OfflineStores | null = null;
  #backend: QueueBackend | null = null;
  readonly #quarantine: OfflineQuarantine;

  /** The data-directory lock, held until close() (none when there is no data directory). */
  readonly #lock: DataDirLock | null;

  constructor(config: Config, lock: DataDirLock | null = null) {
    this.#config = config;
    this.#lock = lock;
    this.#dataDir = config.storage.dataDir;
    if (!existsSync(this.#dataDir)) throw new OpsFailure(`no data directory at ${this.#dataDir} (storage.data_dir, HFS_DATA_DIR)`);
    this.#queuePath = config.queue_resilience.persistentQueue ? queueDatabasePath(this.#dataDir) : null;
    this.#quarantine = new OfflineQuarantine(config, () => this.#tusStore(), config.storage.backend === 's3' ? () => this.#backendStores() : undefined);
  }

  async listUploads(): Promise<UploadView[]> {
    const now = Date.now();
    return (await this.#tusStore().listUnfinished()).map((u) => uploadView(u, now));
  }

  async showUpload(id: string): Promise<UploadView> {
    const u = await this.#tusStore().summarize(id);
    if (u === null) throw new OpsFailure(`no upload ${id}`);
    return uploadView(u, Date.now());
  }

  async terminateUpload(id: string): Promise<void> {
    const u = await this.showUpload(id);
    if (u.finished) throw new OpsFailure(`upload ${id} is finished and can no longer be terminated`);
    await this.#tusStore().remove(id);
  }

  async queueStatus(): Promise<QueueStatusView> {
    const counts = this.#read((f) => f.counts(), emptyCounts());
    return { counts, pending: pendingByTier(counts), deadLetters: totalOf(counts.dead), pressure: null, workers: null, breakers: null };
  }

  async listJobs(query: ListJobsQuery): Promise<JobView[]> {
    return this.#read((f) => f.listJobs(query).map(jobView), []);
  }

  async retryJob(id: string): Promise<RetryView> {
    const job = this.#read((f) => f.get(id), null);
    if (job === null) throw new OpsFailure(`no job ${id}`);
    if (job.state === 'dead') {
      const moved = await this.replayDeadLetters({ id });
      return { id, action: moved === 1 ? 'replayed' : 'none', state: moved === 1 ? 'queued' : 'dead' };
    }
    if (job.state === 'queued') {
      if (job.availableAtMs <= Date.now()) return { id, action: 'none', state: 'queued' };
      const backend = await this.#writable();
      if (!canRetryNow(backend)) throw new OpsFailure('this queue cannot reschedule jobs');
      return { id, action: (await backend.retryNow(id, Date.now())) ? 'made_available' : 'none', state: 'queued' };
    }
    throw new OpsFailure(`job ${id} is ${job.state === 'done' ? 'done' : 'leased by a previous run (it is requeued when the server starts)'}`);
  }

  async listDeadLetters(query: { limit?: number; offset?: number }): Promise<DeadLetterView[]> {
    return this.#read((f) => f.listJobs({ states: ['dead'], ...query }).map(deadLetterOfJob), []);
  }

  async replayDeadLetters(target: DeadLetterSelector): Promise<number> {
    if (!this.#hasQueueFile()) return 0;
    return (await this.#deadLetters()).replay(target);
  }

  async purgeDeadLetters(target: DeadLetterSelector): Promise<number> {
    if (!this.#hasQueueFile()) return 0;
    return (await this.#deadLetters()).purge(target);
  }

  async recover(options: { dryRun: boolean }, progress?: ProgressSink): Promise<RecoveryReport> {
    const { published, local, tus, incomingObjects } = this.#backendStores();
    // A dry run changes nothing, not even lease recovery: it looks jobs up read-only.
    const reader = options.dryRun && this.#queuePath !== null ? QueueFile.open(this.#queuePath) : null;
    const backend = options.dryRun ? null : await this.#writableOrNull();
    const lookup = {
      byId: async (id: string) => (backend ? backend.get(id) : (reader?.get(id) ?? null)),
      bySlot: async (slot: string) => (backend ? backend.getBySlot(slot) : (reader?.getBySlot(slot) ?? null)),
    };
    const context: RecoveryContext = {
      dataDir: this.#dataDir,
      minAgeMs: 0,
      nowMs: Date.now(),
      offline: true,
      jobById: lookup.byId,
      jobBySlot: lookup.bySlot,
      publishedRecord: (slot) => published.record(slot),
      publishedExists: async (slot) => (await published.stat(slot)) !== null,
      readmit: (upload) => this.#readmit(backend, upload),
      discardUpload: (id) => discardTusUpload(this.#tusStore(), id),
      ...(!local && { tusStore: tus }),
      ...(incomingObjects && { incomingObjects }),
      ...(hasClaims(published) && { claims: published }),
    };
    try {
      return await recover(context, options, progress);
    } finally {
      reader?.close();
    }
  }

  verify(progress?: ProgressSink): Promise<VerifyReport> {
    const { published, local } = this.#backendStores();
    // A claim without its file whose job is still in the journal is a publish the next start finishes.
    const slotBusy = async (slot: string) => (this.#read((f) => f.getBySlot(slot), null)?.state ?? 'done') !== 'done';
    return verifyPublished({ published, ...(local && { dataDir: this.#dataDir }), ...(progress && { progress }), recordSettleMs: 0, slotBusy });
  }

  space(): Promise<SpaceReport> {
    return spaceReport({
      dataDir: this.#dataDir,
      nowMs: Date.now(),
      filesystem: (unfinished) => offlineFilesystem(new FileSpaceProbe(this.#dataDir), this.#config.storage.minFreeSpace, unfinished),
      unfinished: () => this.#tusStore().listUnfinished(),
      deadLetterCount: async () => totalOf(this.#read((f) => f.counts(), emptyCounts()).dead),
      deadLetters: async (page) => this.listDeadLetters(page),
      admissionsWaitingForSpace: null,
    });
  }

  listQuarantine(): Promise<QuarantineView[]> {
    return this.#quarantine.list();
  }

  releaseQuarantined(id: string): Promise<QuarantineView> {
    return this.#quarantine.release(id);
  }

  deleteQuarantined(id: string): Promise<void> {
    return this.#quarantine.delete(id);
  }

  async close(): Promise<void> {
    await this.#backend?.close();
    this.#backend = null;
    this.#stores?.destroy();
    this.#stores = null;
    this.#lock?.release();
  }

  /** The same admission as FinalizationService.finalize, minus what only a running server does. */
  async #readmit(backend: QueueBackend | null, upload: CompletedUpload): Promise<FinalizeOutcome> {
    if (backend === null) throw new Error('persistent_queue is off: the server re-admits it when it starts');
    const { workers, queue_resilience: qr } = this.#config;
    const levels = (workers.priorityQueueEnabled ? qr.priorityLevels : 1) as PriorityLevels;
    const now = Date.now();
    const payload: FinalizeJobPayload = {
      protocol: upload.protocol,
      uploadId: upload.uploadId,
      contentType: upload.contentType,
      source: upload.source.ref,
      receivedAtMs: now,
      ...(upload.expectedSha256 !== undefined && { expectedSha256: upload.expectedSha256 }),
    };
    const id = jobIdOf(upload);
    const added = await backend.enqueue({ id, slotPath: upload.slotPath, size: upload.size, priority: tierForSize(upload.size, levels), payload: toPayload(payload), enqueuedAtMs: now });
    if (added) return 'accepted';
    return (await backend.get(id))?.slotPath === upload.slotPath ? 'accepted' : 'exists';
  }

  #tusStore(): TusUploadStore {
    return this.#backendStores().tus;
  }

  #backendStores(): OfflineStores {
    if (this.#stores !== null) return this.#stores;
    if (this.#config.storage.backend === 's3') {
      const s = s3StoresFromConfig(this.#config);
      return (this.#stores = { tus: s.tusStore, client: s.client, published: s.published, content: s.content, sources: s.sources, local: false, incomingObjects: s.incomingObjects, destroy: () => s.destroy() });
    }
    return (this.#stores = {
      tus: new TusFileStore(join(this.#dataDir, 'tus'), this.#config.tus.expirationMs),
      published: new FilePublishedStore(this.#dataDir),
      client: null,
      content: null, // the quarantine commands build their own
      sources: uploadSources(),
      local: true,
      destroy: () => {},
    });
  }

  #hasQueueFile(): boolean {
    return this.#queuePath !== null && existsSync(this.#queuePath);
  }

  /** Runs a read on a read-only connection; `empty` when there is no queue file. */
  #read<T>(fn: (f: QueueFile) => T, empty: T): T {
    if (this.#queuePath === null) return empty;
    const file = QueueFile.open(this.#queuePath);
    if (file === null) return empty;
    try {
      return fn(file);
    } finally {
      file.close();
    }
  }

  async #writable(): Promise<QueueBackend> {
    if (this.#queuePath === null) throw new OpsFailure('persistent_queue is off: there is no queue on disk');
    const { workers, queue_resilience: qr } = this.#config;
    return (this.#backend ??= await openSpilloverQueueBackend({
      path: this.#queuePath,
      memoryLimit: qr.spilloverToDisk ? workers.queueSize : Number.POSITIVE_INFINITY,
      durable: true,
      modes: { fileMode: this.#config.storage.fileMode, dirMode: this.#config.storage.dirMode },
    }));
  }

  async #writableOrNull(): Promise<QueueBackend | null> {
    return this.#queuePath === null ? null : this.#writable();
  }

  async #deadLetters(): Promise<DeadLetterQueue> {
    const backend = await this.#writable();
    return new DeadLetterQueue({
      backend: () => backend,
      discard: (payload) => this.#discard(payload),
      now: () => Date.now(),
      onChange: async () => {},
    });
  }

  async #discard(payload: FinalizeJobPayload): Promise<void> {
    if (payload.protocol === 'tus') await discardTusUpload(this.#tusStore(), payload.uploadId);
    else await this.#backendStores().sources.remove(payload.source).catch(() => {});
  }
}
