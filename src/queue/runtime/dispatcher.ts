/**
 * Runs queued jobs on `workers` concurrent workers: claims the best job for an idle worker
 * (picked by the load-balancing strategy), applies the handler's outcome (done, retry with
 * backoff, dead letter, postpone), replaces a worker stuck past the job timeout and requeues its
 * job, and checks worker health every interval. It knows nothing about what a job does, and
 * reports through `events` instead of logging or touching metrics.
 */
import { AppError } from '../../errors.js';
import { nextRetry, type RandomSource, type RetryPolicy } from './backoff.js';
import type { Clock, TimerHandle } from './clock.js';
import { chooseWorker, type LoadBalancingStrategy } from './load-balancer.js';
import type { Job, JobError, QueueBackend } from '../contract/types.js';
import {
  DEFAULT_HEALTH_THRESHOLDS,
  WorkerWindow,
  assessWorker,
  type HealthAssessment,
  type HealthThresholds,
  type WorkerStatus,
} from './worker-health.js';

/** hmac_retries_total{reason}. */
export type RetryReason = 'timeout' | 'network' | 'server_error';

/** What a handler reports for one attempt. Expected outcomes are values; a throw counts as a transient server_error. */
export type JobOutcome =
  | { readonly kind: 'done' }
  /** Transient: retried with backoff until max_retry_attempts, then a dead letter. */
  | { readonly kind: 'retry'; readonly error: JobError; readonly reason: RetryReason }
  /** Permanent (checksum mismatch, missing file): a dead letter at once. */
  | { readonly kind: 'dead'; readonly error: JobError }
  /** Not attempted (a dependency's breaker is open): back in line from untilMs, no attempt spent. */
  | { readonly kind: 'postpone'; readonly untilMs: number };

export interface JobContext {
  /** Aborted when the job times out or the dispatcher stops; the reason is an AppError. */
  readonly signal: AbortSignal;
  readonly workerId: number;
}

export type JobHandler = (job: Job, context: JobContext) => Promise<JobOutcome>;

export type DeadReason = 'permanent' | 'retries_exhausted';

/** Everything the dispatcher does that an operator may want to see. Called synchronously; must not throw. */
export interface DispatcherEvents {
  onStart?(job: Job, workerId: number): void;
  /** Every attempt that ran (timeouts included, postponed ones not): for per-worker counts and timings. */
  onAttempt?(job: Job, workerId: number, ok: boolean, durationMs: number): void;
  onDone?(job: Job, workerId: number, durationMs: number): void;
  onRetry?(job: Job, workerId: number, error: JobError, reason: RetryReason, delayMs: number): void;
  onDead?(job: Job, workerId: number, error: JobError, reason: DeadReason): void;
  onPostpone?(job: Job, workerId: number, untilMs: number): void;
  /** The job ran past the job timeout: the worker was replaced and the job requeued (or buried). */
  onTimeout?(job: Job, workerId: number): void;
  onWorkerStatus?(workerId: number, status: WorkerStatus, previous: WorkerStatus, assessment: HealthAssessment): void;
  /** A backend call failed; the dispatcher keeps going and retries on its next poll. */
  onError?(err: unknown, during: string): void;
}

export interface DispatcherOptions {
  readonly backend: QueueBackend;
  readonly handler: JobHandler;
  /** numworkers. */
  readonly workers: number;
  /** queue_timeout: a job running longer is abandoned and its worker replaced. */
  readonly jobTimeoutMs: number;
  readonly retry: RetryPolicy;
  readonly strategy: LoadBalancingStrategy;
  /** queue_health_check_interval. */
  readonly healthCheckIntervalMs: number;
  /** Re-looks for jobs whose time came without a wake-up we know of (restored backoffs). Default 1000. */
  readonly pollIntervalMs?: number;
  /**
   * Earliest time a job may be claimed: return nowMs to go ahead, a later time to pause claiming
   * (e.g. the storage breaker every job needs is open). Default: always nowMs.
   */
  readonly claimableAt?: (nowMs: number) => number;
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly health?: Partial<HealthThresholds>;
  readonly events?: DispatcherEvents;
}

/** What metrics and health endpoints read. */
export interface WorkerView {
  readonly id: number;
  readonly status: WorkerStatus;
  readonly processed: number;
  readonly errors: number;
  readonly avgMs: number | null;
  readonly busy: boolean;
  /** Times this worker slot was replaced after a stuck job. */
  readonly replacements: number;
}

type State = 'created' | 'running' | 'draining' | 'stopped';

interface Running {
  readonly job: Job;
  readonly owner: string;
  readonly startedAtMs: number;
  readonly controller: AbortController;
  timer: TimerHandle | undefined;
  readonly settled: Promise<void>;
}

interface WorkerSlot {
  readonly id: number;
  generation: number;
  running: Running | null;
  readonly window: WorkerWindow;
  status: WorkerStatus;
}

/** setTimeout fires at once (with a warning) for delays above 2^31 - 1 ms (~24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Leases outlive the job timeout by this much, so the dispatcher's own timeout acts first. */
const LEASE_MARGIN_MS = 60_000;

export class Dispatcher {
  readonly #o: DispatcherOptions;
  readonly #workers: WorkerSlot[];
  readonly #health: HealthThresholds;
  readonly #leaseMs: number;
  #state: State = 'created';
  #pumping = false;
  #pumpAgain = false;
  #lastChosenId = 0;
  #wakeTimer: TimerHandle | undefined;
  #wakeAtMs = Infinity;
  #pollTimer: TimerHandle | undefined;
  #healthTimer: TimerHandle | undefined;
  /** Settled outcomes still being written to the backend (a timed-out job's fail, …). */
  readonly #settling = new Set<Promise<void>>();

  constructor(options: DispatcherOptions) {
    if (!(options.workers >= 1)) throw new RangeError('workers must be >= 1');
    if (!(options.jobTimeoutMs > 0)) throw new RangeError('jobTimeoutMs must be > 0');
    this.#o = options;
    this.#health = { ...DEFAULT_HEALTH_THRESHOLDS, ...options.health };
    this.#leaseMs = options.jobTimeoutMs + LEASE_MARGIN_MS;
    this.#workers = Array.from({ length: options.workers }, (_, i) => ({
      id: i + 1,
      generation: 0,
      running: null,
      window: new WorkerWindow(),
      status: 'healthy' as WorkerStatus,
    }));
  }

  get state(): State {
    return this.#state;
  }

  start(): void {
    if (this.#state !== 'created') throw new Error(`dispatcher cannot start from ${this.#state}`);
    this.#state = 'running';
    this.#schedulePoll();
    this.#scheduleHealth();
    this.poke();
  }

  /** Something may be claimable now (a job was admitted, replayed, …). Cheap; coalesces. */
  poke(): void {
    if (this.#state !== 'running') return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    void this.#pump().finally(() => {
      this.#pumping = false;
    });
  }

  workers(): WorkerView[] {
    return this.#workers.map((w) => ({
      id: w.id,
      status: w.status,
      processed: w.window.processed,
      errors: w.window.errors,
      avgMs: w.window.avgMs(),
      busy: w.running !== null,
      replacements: w.generation,
    }));
  }

  /** Average job time over every worker's recent window; null before any job finished. */
  averageJobMs(): number | null {
    let total = 0;
    let n = 0;
    for (const w of this.#workers) {
      for (const s of w.window.samples()) {
        total += s.durationMs;
        n += 1;
      }
    }
    return n === 0 ? null : total / n;
  }

  /** Runs one health check now (the timer runs it every healthCheckIntervalMs). */
  checkHealth(): void {
    const now = this.#o.clock.now();
    const poolAvg = this.averageJobMs();
    for (const w of this.#workers) {
      const assessment = assessWorker(w.window.samples(), poolAvg, w.running, now, this.#o.jobTimeoutMs, this.#health);
      if (assessment.status !== w.status) {
        const previous = w.status;
        w.status = assessment.status;
        this.#o.events?.onWorkerStatus?.(w.id, assessment.status, previous, assessment);
      }
    }
  }

  /**
   * Stops claiming, waits up to `graceMs` for running jobs, then aborts the rest (reason
   * ERR_SERVER_SHUTDOWN) and gives their jobs back without spending an attempt. The backend is
   * left open for the caller to close.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'created') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'draining';
    const { clock } = this.#o;
    clock.clearTimeout(this.#pollTimer);
    clock.clearTimeout(this.#healthTimer);
    clock.clearTimeout(this.#wakeTimer);
    const running = () => this.#workers.flatMap((w) => (w.running ? [w.running.settled] : []));
    if (running().length > 0 && graceMs > 0) {
      let timer: TimerHandle | undefined;
      await Promise.race([
        Promise.all(running()),
        new Promise<void>((resolve) => {
          timer = clock.setTimeout(resolve, graceMs);
        }),
      ]);
      clock.clearTimeout(timer);
    }
    for (const w of this.#workers) {
      const r = w.running;
      if (r === null) continue;
      w.running = null;
      w.generation += 1;
      clock.clearTimeout(r.timer);
      r.controller.abort(new AppError('ERR_SERVER_SHUTDOWN'));
      await this.#call('postpone on shutdown', () => this.#o.backend.postpone(r.job.id, r.owner, clock.now()));
    }
    await Promise.all(this.#settling);
    this.#state = 'stopped';
  }

  async #pump(): Promise<void> {
    const { backend, clock } = this.#o;
    try {
      do {
        this.#pumpAgain = false;
        for (;;) {
          if (this.#state !== 'running') return;
          const now = clock.now();
          const openAt = this.#o.claimableAt?.(now) ?? now;
          if (openAt > now) {
            this.#wakeAt(openAt);
            break;
          }
          const worker = this.#pickWorker();
          if (worker === null) break;
          const job = await backend.claimNext(ownerOf(worker), now, this.#leaseMs);
          if (job === null) break;
          this.#lastChosenId = worker.id; // only a worker that got a job takes its turn
          if (this.#state !== 'running') {
            // Stopped while claiming: hand it straight back.
            await backend.postpone(job.id, ownerOf(worker), job.availableAtMs);
            return;
          }
          this.#startJob(worker, job);
        }
      } while (this.#pumpAgain);
    } catch (err) {
      this.#o.events?.onError?.(err, 'claim');
    }
  }

  #pickWorker(): WorkerSlot | null {
    const idle = this.#workers
      .filter((w) => w.running === null)
      .map((w) => ({ id: w.id, status: w.status, recentBusyMs: w.window.recentBusyMs(), processed: w.window.processed, slot: w }));
    return chooseWorker(idle, this.#o.strategy, this.#lastChosenId, this.#o.random)?.slot ?? null;
  }

  #startJob(worker: WorkerSlot, job: Job): void {
    const { clock } = this.#o;
    const controller = new AbortController();
    let finish!: () => void;
    const running: Running = {
      job,
      owner: ownerOf(worker),
      startedAtMs: clock.now(),
      controller,
      timer: undefined,
      settled: new Promise<void>((resolve) => (finish = resolve)),
    };
    running.timer = clock.setTimeout(() => this.#onTimeout(worker, running), Math.min(this.#o.jobTimeoutMs, MAX_TIMER_MS));
    worker.running = running;
    this.#o.events?.onStart?.(job, worker.id);
    void this.#run(worker, running).finally(finish);
  }

  async #run(worker: WorkerSlot, running: Running): Promise<void> {
    const { clock, handler } = this.#o;
    let outcome: JobOutcome;
    try {
      outcome = await handler(running.job, { signal: running.controller.signal, workerId: worker.id });
    } catch (err) {
      outcome = { kind: 'retry', error: jobErrorOf(err, clock.now()), reason: 'server_error' };
    }
    if (worker.running !== running) return; // timed out or stopped meanwhile: already handled
    clock.clearTimeout(running.timer);
    const durationMs = clock.now() - running.startedAtMs;
    if (outcome.kind !== 'postpone') {
      worker.window.record({ durationMs, ok: outcome.kind === 'done' });
      this.#o.events?.onAttempt?.(running.job, worker.id, outcome.kind === 'done', durationMs);
    }
    await this.#settle(worker.id, running, outcome, durationMs);
    worker.running = null;
    this.poke();
  }

  #onTimeout(worker: WorkerSlot, running: Running): void {
    if (worker.running !== running) return;
    const { clock } = this.#o;
    const now = clock.now();
    // Replace the worker: the slot takes new jobs under a new owner at once; whatever the stuck
    // attempt does later is ignored, and its lease is no longer its own.
    worker.running = null;
    worker.generation += 1;
    worker.window.record({ durationMs: now - running.startedAtMs, ok: false });
    running.controller.abort(new AppError('ERR_JOB_TIMEOUT'));
    this.#o.events?.onAttempt?.(running.job, worker.id, false, now - running.startedAtMs);
    this.#o.events?.onTimeout?.(running.job, worker.id);
    const error: JobError = { atMs: now, code: 'ERR_JOB_TIMEOUT', message: `no result within ${this.#o.jobTimeoutMs} ms` };
    const settling = this.#settle(worker.id, running, { kind: 'retry', error, reason: 'timeout' }, now - running.startedAtMs);
    this.#settling.add(settling);
    void settling.finally(() => {
      this.#settling.delete(settling);
      this.poke();
    });
    this.poke();
  }

  /** Writes an attempt's outcome to the backend. A false answer means the lease was lost: nothing to do. */
  async #settle(workerId: number, running: Running, outcome: JobOutcome, durationMs: number): Promise<void> {
    const { backend, clock, events } = this.#o;
    const { job, owner } = running;
    switch (outcome.kind) {
      case 'done':
        if (await this.#call('complete', () => backend.complete(job.id, owner, clock.now()))) events?.onDone?.(job, workerId, durationMs);
        return;
      case 'postpone':
        if (await this.#call('postpone', () => backend.postpone(job.id, owner, outcome.untilMs))) {
          events?.onPostpone?.(job, workerId, outcome.untilMs);
          this.#wakeAt(outcome.untilMs);
        }
        return;
      case 'dead':
        if (await this.#call('bury', () => backend.bury(job.id, owner, outcome.error))) events?.onDead?.(job, workerId, outcome.error, 'permanent');
        return;
      case 'retry': {
        const decision = nextRetry(job.attempts + 1, this.#o.retry, this.#o.random);
        if (decision.kind === 'give_up') {
          if (await this.#call('bury', () => backend.bury(job.id, owner, outcome.error))) {
            events?.onDead?.(job, workerId, outcome.error, 'retries_exhausted');
          }
          return;
        }
        const retryAt = clock.now() + decision.delayMs;
        if (await this.#call('fail', () => backend.fail(job.id, owner, outcome.error, retryAt))) {
          events?.onRetry?.(job, workerId, outcome.error, outcome.reason, decision.delayMs);
          this.#wakeAt(retryAt);
        }
        return;
      }
    }
  }

  async #call(during: string, fn: () => Promise<boolean>): Promise<boolean> {
    try {
      return await fn();
    } catch (err) {
      this.#o.events?.onError?.(err, during);
      return false;
    }
  }

  /** One timer for the earliest known moment something becomes claimable. */
  #wakeAt(atMs: number): void {
    if (this.#state !== 'running' || atMs >= this.#wakeAtMs) return;
    const { clock } = this.#o;
    clock.clearTimeout(this.#wakeTimer);
    this.#wakeAtMs = atMs;
    this.#wakeTimer = clock.setTimeout(() => {
      this.#wakeAtMs = Infinity;
      this.#wakeTimer = undefined;
      this.poke();
    }, Math.min(atMs - clock.now(), MAX_TIMER_MS)); // a later wake-up comes from the poll
  }

  #schedulePoll(): void {
    const { clock, backend } = this.#o;
    const interval = this.#o.pollIntervalMs ?? 1_000;
    this.#pollTimer = clock.setTimeout(() => {
      if (this.#state !== 'running') return;
      void this.#call('release expired leases', async () => (await backend.releaseExpiredLeases(clock.now())) > 0).then(() => {
        this.poke();
        this.#schedulePoll();
      });
    }, interval);
  }

  #scheduleHealth(): void {
    const { clock } = this.#o;
    this.#healthTimer = clock.setTimeout(() => {
      if (this.#state !== 'running') return;
      this.checkHealth();
      this.#scheduleHealth();
    }, this.#o.healthCheckIntervalMs);
  }
}

function ownerOf(worker: WorkerSlot): string {
  return `worker-${worker.id}.${worker.generation}`;
}

/** A thrown error as a job error: AppErrors keep their code; the message goes to the job's history. */
export function jobErrorOf(err: unknown, atMs: number): JobError {
  const code = AppError.is(err) ? err.code : typeof (err as { code?: unknown })?.code === 'string' ? String((err as { code: string }).code) : 'ERR_INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  return { atMs, code, message };
}
