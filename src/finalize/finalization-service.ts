/**
 * Finalization through the durable queue: the finalizer. Admits every completed upload (tus or
 * PUT) as a job (job-admission.ts), runs the pipeline on the dispatcher's workers, and lets a
 * download of a file still in the queue wait for it (awaitPublished). Its other faces are
 * separate objects: `intake` (the intake gate, intake-gate.ts) and `admin` (queue
 * administration, queue-admin.ts). Everything observable is reported by telemetry.ts.
 *
 * Lifecycle: the constructor does no I/O; start() opens the backend, recovers and reconciles,
 * then starts the workers; stop(graceMs) drains them and closes the backend.
 */
import { mkdir } from 'node:fs/promises';
import { AppError } from '../errors.js';
import {
  Dispatcher,
  PRIORITY_TIERS,
  QueueUnavailableError,
  type DeadReason,
  type Job,
  type JobError,
  type PriorityTier,
  type QueueBackend,
  type QueueRecovery,
  type TimerHandle,
} from '../queue/index.js';
import { metrics } from '../observability/index.js';
import { isStoreUnreachable, storageFullCause, uploadSources } from '../storage/index.js';
import { AdmissionWaitlist, admitBriefly } from './admission-waitlist.js';
import { CircuitBreaker, type BreakerTransition } from './circuit-breaker.js';
import { DEFAULT_INTAKE_DELAY, retryAfterSeconds } from './pressure.js';
import { expectedSha256FromMetadata } from './checksum.js';
import { DeadLetterQueue } from './dead-letters.js';
import { sha256File } from './hash-file.js';
import { IntakeGate, type IntakeControl } from './intake-gate.js';
import { admitJob } from './job-admission.js';
import type { FinalizationOptions, PendingDownload } from './finalization-options.js';
import { fromPayload, jobIdOf, type FinalizeJobPayload } from './job-payload.js';
import { FinalizePipeline, type PipelineStep, type PublishedEvent } from './pipeline.js';
import { reportQuarantined } from './quarantine-admin.js';
import { ScanStep } from './scan-step.js';
import { ScanSlots } from '../scan/index.js';
import { PublishWaiters } from './publish-waiters.js';
import { QueueAdmin } from './queue-admin.js';
import { buryPreviousJobs, readmitFinishedUploads, removeStagingOrphans } from './recovery.js';
import { countDeadLetters, dispatcherTelemetry, logBreakerTransition, logDeadLetter, logPublished, logPublishPostponed, logStoreUnreachable, setBreakerGauge, setQueueLengths, setWorkerGauge } from './telemetry.js';
import type { CompletedUpload, FinalizeOutcome, UploadFinalizer } from './types.js';

type State = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

/** Retry-After of a download whose upload waits for room to be admitted. */
const WAITLIST_RETRY_AFTER_S = 10;
/** Retry-After of a download whose queue lookup could not reach the shared queue (cluster mode, degraded). */
const UNREACHABLE_RETRY_AFTER_S = 5;


export class FinalizationService implements UploadFinalizer {
  readonly #o: FinalizationOptions;
  readonly #pending: Record<PriorityTier, number> = { high: 0, medium: 0, low: 0 };
  readonly #waiters: PublishWaiters;
  readonly #gate: IntakeGate;
  readonly #pipeline: FinalizePipeline;
  /** Built by start(), once the backend is open. */
  #dispatcher: Dispatcher | null = null;
  readonly #storageBreaker: CircuitBreaker | null;
  readonly #webhookBreaker: CircuitBreaker | null;
  /** null when scanning is off or circuit_breaker_enabled = false. */
  readonly #scanBreaker: CircuitBreaker | null;
  readonly deadLetters: DeadLetterQueue;
  /** The intake gate, asked before a new upload's body (src/intake). */
  readonly intake: IntakeControl;
  /** Queue administration for operators (admin API, status page). */
  readonly admin: QueueAdmin;
  #backend: QueueBackend | null = null;
  /** Completed tus uploads whose job could not be written for lack of space (admission-waitlist.ts). */
  readonly #waitlist: AdmissionWaitlist;
  #state: State = 'created';
  #pruneTimer: TimerHandle | undefined;
  #countsTimer: TimerHandle | undefined;

  constructor(options: FinalizationOptions) {
    this.#o = options;
    const { clock, log } = options;
    this.#waiters = new PublishWaiters(clock);
    options.announcer?.onAnnounce((slotPath) => this.#waiters.notify(slotPath));
    this.#storageBreaker = this.#breaker('storage');
    this.#webhookBreaker = options.webhook === null ? null : this.#breaker('webhook');
    this.#scanBreaker = options.scan ? this.#breaker('scan') : null;
    this.#gate = new IntakeGate({
      capacity: options.capacity,
      delay: { backpressure: options.backpressureThreshold, emergency: options.emergencyThreshold, ...DEFAULT_INTAKE_DELAY, ...options.intakeDelay },
      largeTierLimit: options.largeTierLimit,
      clock,
      log,
      pending: () => this.#pending,
      retryAfterS: (jobs) => retryAfterSeconds(jobs, this.#averageJobMs(), options.workers),
    });
    const onStep = options.onStep;
    this.#pipeline = new FinalizePipeline({
      published: options.published,
      cas: options.cas,
      ...(options.sources && { sources: options.sources }),
      webhook: options.webhook,
      storageBreaker: this.#storageBreaker,
      webhookBreaker: this.#webhookBreaker,
      clock,
      hash: options.hash ?? ((path, signal) => sha256File(path, { signal })),
      onPublished: (e) => this.#onPublished(e),
      onStorageFull: (job, err, postponeMs) => logPublishPostponed(log, job, err, postponeMs),
      onStoreUnreachable: (job, err, postponeMs) => logStoreUnreachable(log, job, err, postponeMs),
      ...(options.scan && {
        scan: new ScanStep({ ...options.scan, slots: new ScanSlots(options.scan.concurrency), breaker: this.#scanBreaker, clock, random: options.random, hold: options.retry, log }),
        quarantine: options.quarantine ?? null,
        onQuarantined: (e) => {
          this.#waiters.notify(e.job.slotPath); // a waiting GET re-checks and answers 451
          this.#o.announcer?.announce(e.job.slotPath); // at the other instances too (cluster mode)
          reportQuarantined(log, e);
        },
      }),
      ...(onStep && { onStep: (step: PipelineStep, job: Job, signal: AbortSignal) => onStep(step, job.id, signal) }),
    });
    this.deadLetters = new DeadLetterQueue({
      backend: () => this.#requireBackend(),
      discard: (payload) => this.#discard(payload),
      now: () => clock.now(),
      onChange: async () => {
        await this.#syncCounts();
        this.#dispatcher?.poke();
      },
    });
    this.#waitlist = new AdmissionWaitlist({
      admit: (upload) => this.#admit(upload),
      discard: async (upload) => options.tus?.discard(upload.uploadId),
      clock,
      log,
    });
    const gate = this.#gate;
    this.intake = {
      pass: (request) => gate.pass(request),
      // Unknown while a shared queue is unreachable: let the upload start (admission and publish check again).
      slotTaken: async (slotPath) =>
        this.#waitlist.has(slotPath) || (this.#backend !== null && this.#state === 'running' && (await orUnknown(this.#backend.getBySlot(slotPath))) !== null),
      pendingUpload: async (slotPath) => {
        const waiting = this.#waitlist.get(slotPath);
        if (waiting !== undefined) return { size: waiting.size, sha256: waiting.sha256 };
        if (this.#backend === null || this.#state !== 'running') return null;
        const job = await orUnknown(this.#backend.getBySlot(slotPath));
        if (job === null || (job.state !== 'queued' && job.state !== 'leased')) return null;
        try {
          return { size: job.size, sha256: fromPayload(job.payload).receivedSha256 };
        } catch {
          return null; // a payload this version cannot read: nothing to compare with
        }
      },
      slotUpload: async (slotPath) => {
        const waiting = this.#waitlist.get(slotPath);
        if (waiting !== undefined) return { protocol: waiting.protocol, uploadId: waiting.uploadId };
        if (this.#backend === null || this.#state !== 'running') return null;
        const job = await orUnknown(this.#backend.getBySlot(slotPath));
        if (job === null) return null;
        try {
          const { protocol, uploadId } = fromPayload(job.payload);
          return { protocol, uploadId };
        } catch {
          return null; // a payload this version cannot read
        }
      },
      pressure: () => gate.pressure(),
    };
    this.admin = new QueueAdmin({
      backend: () => this.#requireBackend(),
      workers: () => this.#dispatcher?.workers() ?? [],
      poke: () => this.#dispatcher?.poke(),
      breakers: [['storage', this.#storageBreaker], ['webhook', this.#webhookBreaker], ['scan', this.#scanBreaker]],
      deadLetters: this.deadLetters,
      clock,
    });
  }

  async start(): Promise<void> {
    if (this.#state !== 'created') throw new Error(`finalization cannot start from ${this.#state}`);
    this.#state = 'starting';
    const { log, clock } = this.#o;
    await mkdir(this.#o.stagingDir, { recursive: true, mode: this.#o.dirMode ?? 0o750 });
    await this.#o.cas?.init?.();
    const backend = (this.#backend = await this.#o.openBackend());
    const dispatcher = (this.#dispatcher = this.#createDispatcher(backend));
    if (!this.#o.recoveryEnabled) {
      const buried = await buryPreviousJobs(backend, clock.now());
      if (buried > 0) log.warn({ deadLettered: buried }, 'Queue recovery disabled: jobs of the previous run moved to the dead letter queue');
    } else if (this.#o.persistent) {
      const recovery = (backend as { recovery?: QueueRecovery }).recovery;
      const counts = await backend.counts();
      const restored = recovery?.restoredJobs ?? sum(counts.queued);
      log.info(
        { restored, inFlight: recovery?.releasedLeases ?? 0, deadLetters: sum(counts.dead) },
        `Queue recovery completed: ${restored} items restored from persistence`,
      );
    }
    const orphans = await orUnknown(removeStagingOrphans(backend, this.#o.stagingDir));
    if (orphans === null) log.warn('Staged files not checked: the shared queue is unreachable');
    else if (orphans > 0) log.info({ removed: orphans }, 'Staged files without a job removed');
    await this.#syncCounts();
    for (const { id } of dispatcher.workers()) setWorkerGauge(id, 'healthy');
    for (const [dep, b] of [['storage', this.#storageBreaker], ['webhook', this.#webhookBreaker], ['scan', this.#scanBreaker]] as const) {
      if (b !== null) setBreakerGauge(dep, 'closed');
    }
    this.#state = 'running';
    const { tus } = this.#o;
    if (this.#o.recoveryEnabled && tus !== undefined) {
      const result = await orUnknown(
        readmitFinishedUploads(
          tus.finished(),
          async (u) => (await backend.get(jobIdOf(u))) !== null,
          (u) => this.finalize(u),
          (u) => tus.discard(u.uploadId),
        ),
      );
      if (result === null) log.warn('Finished uploads not checked for missing jobs: the shared queue or the store is unreachable (run recover later)');
      else if (result.admitted + result.discarded > 0) log.warn(result, 'Finished uploads found without a finalization job after a crash');
    }
    dispatcher.start();
    this.#schedulePrune();
    this.#scheduleCountsRefresh();
  }

  /** Stops the workers (running jobs get `graceMs`, then go back to the queue), then closes the backend. */
  async stop(graceMs = 0): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    this.#state = 'stopping';
    this.#o.clock.clearTimeout(this.#pruneTimer);
    this.#waitlist.stop(); // what waits is on disk: the next start admits it
    this.#o.clock.clearTimeout(this.#countsTimer);
    await this.#dispatcher?.stop(graceMs);
    this.#waiters.release();
    await this.#backend?.close();
    this.#state = 'stopped';
  }

  /**
   * UploadFinalizer: durably admits the upload as a job ('accepted', the source file now
   * belongs to the queue), or answers 'exists' when the slot is published or held by another
   * admitted upload (the source is left where it was). When persistent, the job and the bytes
   * are on disk before this resolves. Rejects with ERR_SERVER_SHUTDOWN when not running.
   *
   * When the disk is too full to write the job (docs/storage-space.md): a tus upload is
   * 'accepted' all the same (its bytes and finished record are on disk) and its admission is
   * retried until space is back, a download of its slot answering 503 meanwhile; a PUT retries
   * for a few seconds, then rejects with ERR_INSUFFICIENT_STORAGE (its source file left with
   * the caller, who removes it: the client was told nothing and sends again).
   */
  async finalize(upload: CompletedUpload): Promise<FinalizeOutcome> {
    if (this.#state !== 'running') throw new AppError('ERR_SERVER_SHUTDOWN');
    try {
      return await this.#admit(upload);
    } catch (err) {
      if (storageFullCause(err) === null) throw err;
      if (upload.protocol === 'tus') {
        this.#waitlist.add(upload, err);
        return 'accepted';
      }
      return admitBriefly(() => (this.#state === 'running' ? this.#admit(upload) : Promise.reject(err)), upload, err, this.#o);
    }
  }

  /** Space came back (the intake's storage emergency ended): retry what waits for it now. */
  spaceReturned(): void {
    this.#waitlist.poke();
    this.#dispatcher?.poke();
  }

  /** Completed tus uploads waiting for room to write their finalization job. */
  get admissionsWaitingForSpace(): number {
    return this.#waitlist.size;
  }

  /** One admission: the finished record of a tus upload (again: idempotent), then the durable job. */
  async #admit(upload: CompletedUpload): Promise<FinalizeOutcome> {
    const o = this.#o;
    if (upload.protocol === 'tus') await o.tus?.markFinished?.(upload.uploadId);
    const result = await admitJob(upload, {
      backend: this.#requireBackend(),
      published: o.published,
      stagingDir: o.stagingDir,
      priorityLevels: o.priorityLevels,
      now: () => o.clock.now(),
      expectedSha256: (u) => this.#expectedSha256(u),
      ...(o.onStep && { onStep: o.onStep }),
    });
    if (result.admitted !== null) {
      this.#pending[result.admitted] += 1;
      this.#countsChanged();
      this.#dispatcher?.poke();
    }
    return result.outcome;
  }

  /**
   * For a GET of an unpublished path: waits up to downloadWaitMs for a queued or running job of
   * that slot to publish it. Never rejects; an aborted signal answers 'absent'.
   */
  async awaitPublished(slotPath: string, signal?: AbortSignal): Promise<PendingDownload> {
    if (this.#state !== 'running' || this.#backend === null) return { kind: 'absent' };
    let job: Job | null;
    try {
      job = await this.#backend.getBySlot(slotPath);
    } catch (err) {
      // A shared queue that does not answer may hold it: never a 404 for what may be queued.
      if (err instanceof QueueUnavailableError) return { kind: 'not_ready', retryAfterS: UNREACHABLE_RETRY_AFTER_S };
      throw err;
    }
    // Its job could not be written yet (disk full): no point waiting, space is what it waits for.
    if (job === null && this.#waitlist.has(slotPath)) return { kind: 'not_ready', retryAfterS: WAITLIST_RETRY_AFTER_S };
    if (job === null || job.state === 'dead') return { kind: 'absent' };
    if (job.state === 'done') return { kind: 'published' };
    const woken = this.#waiters.wait(slotPath, this.#o.downloadWaitMs, signal);
    // Published (or quarantined) between the lookup and the wait: wake ourselves (and any other waiter; they re-check).
    if ((await this.#o.published.stat(slotPath)) !== null || (await this.#o.quarantine?.bySlot(slotPath))) this.#waiters.notify(slotPath);
    metrics.downloadsWaiting.inc();
    const published = await woken.finally(() => metrics.downloadsWaiting.dec());
    if (published) return { kind: 'published' };
    if (signal?.aborted) return { kind: 'absent' };
    const ahead = sum(this.#pending);
    return { kind: 'not_ready', retryAfterS: retryAfterSeconds(ahead, this.#averageJobMs(), this.#o.workers, { maxS: 30 }) };
  }

  /** Its upload was deleted before publishing (the job is withdrawn when it runs): waiting GETs re-check now, here and at the other instances. */
  withdrawn(slotPath: string): void {
    this.#waiters.notify(slotPath);
    this.#o.announcer?.announce(slotPath);
  }

  #createDispatcher(backend: QueueBackend): Dispatcher {
    const o = this.#o;
    return new Dispatcher({
      backend,
      handler: this.#pipeline.run,
      workers: o.workers,
      jobTimeoutMs: o.jobTimeoutMs,
      retry: o.retry,
      strategy: o.strategy,
      healthCheckIntervalMs: o.healthCheckIntervalMs,
      ...(o.pollIntervalMs !== undefined && { pollIntervalMs: o.pollIntervalMs }),
      ...(o.health && { health: o.health }),
      // Every job needs storage: while its breaker is open nothing is claimed (no attempt spent).
      claimableAt: (now) => (this.#storageBreaker?.state(now) === 'open' ? this.#storageBreaker.retryAtMs(now) : now),
      clock: o.clock,
      random: o.random,
      events: dispatcherTelemetry({
        log: o.log,
        clock: o.clock,
        jobTimeoutMs: o.jobTimeoutMs,
        onDone: (job) => this.#jobLeft(job),
        onDead: (job, workerId, error, why) => void this.#onDead(job, workerId, error, why),
      }),
    });
  }

  #averageJobMs(): number | null {
    return this.#dispatcher?.averageJobMs() ?? null;
  }

  async #onDead(job: Job, workerId: number, error: JobError, why: DeadReason): Promise<void> {
    const { log } = this.#o;
    this.#jobLeft(job);
    if (this.#o.deadLetterEnabled) {
      logDeadLetter(log, job, workerId, error, why, this.#o.retry.maxRetries, true);
      countDeadLetters(1);
      return;
    }
    try {
      await this.deadLetters.purge({ id: job.id });
      logDeadLetter(log, job, workerId, error, why, this.#o.retry.maxRetries, false);
    } catch (err) {
      log.error({ err, jobId: job.id }, 'Could not discard a failed upload');
    }
  }

  #onPublished(e: PublishedEvent): void {
    this.#waiters.notify(e.job.slotPath);
    this.#o.announcer?.announce(e.job.slotPath);
    logPublished(this.#o.log, e);
  }

  #jobLeft(job: Job): void {
    this.#pending[job.priority] = Math.max(0, this.#pending[job.priority] - 1);
    this.#countsChanged();
  }

  #countsChanged(): void {
    setQueueLengths(this.#pending);
    this.#gate.update();
  }

  async #syncCounts(): Promise<void> {
    const counts = await this.#requireBackend().counts();
    for (const tier of PRIORITY_TIERS) this.#pending[tier] = counts.queued[tier] + counts.leased[tier];
    countDeadLetters(sum(counts.dead), 'set');
    this.#countsChanged();
  }

  async #expectedSha256(upload: CompletedUpload): Promise<string | null | undefined> {
    if (upload.expectedSha256 !== undefined || upload.protocol !== 'tus' || this.#o.tus === undefined) return upload.expectedSha256;
    const metadata = await this.#o.tus.metadata(upload.uploadId);
    return metadata === null ? undefined : expectedSha256FromMetadata(metadata);
  }

  async #discard(payload: FinalizeJobPayload): Promise<void> {
    if (payload.protocol === 'tus' && this.#o.tus !== undefined) await this.#o.tus.discard(payload.uploadId);
    else await (this.#o.sources ?? uploadSources()).remove(payload.source).catch(() => {});
  }

  #breaker(dependency: 'storage' | 'webhook' | 'scan'): CircuitBreaker | null {
    const options = this.#o.circuitBreaker;
    if (options === null) return null;
    return new CircuitBreaker({ ...options, onTransition: (t) => this.#onBreaker(dependency, t) });
  }

  #onBreaker(dependency: string, t: BreakerTransition): void {
    logBreakerTransition(this.#o.log, dependency, t);
    if (t.to === 'closed') this.#dispatcher?.poke();
  }

  #schedulePrune(): void {
    const { clock, log } = this.#o;
    const retention = this.#o.doneRetentionMs ?? 3_600_000;
    this.#pruneTimer = clock.setTimeout(() => {
      if (this.#state !== 'running') return;
      this.#requireBackend()
        .pruneDone(clock.now() - retention)
        .catch((err: unknown) => log.warn({ err }, 'Pruning finished jobs failed'))
        .finally(() => this.#schedulePrune());
    }, Math.min(retention, 600_000));
  }

  /** Cluster mode: counts change at every instance; follow them for the intake gate and metrics. */
  #scheduleCountsRefresh(): void {
    const every = this.#o.countsRefreshMs;
    if (every === undefined || !(every > 0)) return;
    const { clock, log } = this.#o;
    this.#countsTimer = clock.setTimeout(() => {
      if (this.#state !== 'running') return;
      this.#syncCounts()
        .catch((err: unknown) => log.debug({ err }, 'Refreshing queue counts failed'))
        .finally(() => this.#scheduleCountsRefresh());
    }, every);
  }

  #requireBackend(): QueueBackend {
    if (this.#backend === null) throw new AppError('ERR_SERVER_SHUTDOWN');
    return this.#backend;
  }
}

/** The answer, or null when a shared queue could not be reached for it. */
async function orUnknown<T>(answer: Promise<T>): Promise<T | null> {
  try {
    return await answer;
  } catch (err) {
    if (err instanceof QueueUnavailableError || isStoreUnreachable(err)) return null;
    throw err;
  }
}

function sum(byTier: Readonly<Record<PriorityTier, number>>): number {
  return byTier.high + byTier.medium + byTier.low;
}
