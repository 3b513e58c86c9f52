/**
 * Queue administration: what operators (admin API, status page, CLI) read and do on the running
 * finalization queue: counts, workers, breakers, jobs and dead letters. Thin: every call goes
 * to the backend, the dispatcher or the dead-letter queue of the FinalizationService it was
 * built by. Calls reject with ERR_SERVER_SHUTDOWN when the queue is not open.
 */
import {
  canListJobs,
  canRetryNow,
  type Clock,
  type DeadLetterTarget,
  type Job,
  type ListDeadOptions,
  type ListJobsOptions,
  type QueueBackend,
  type QueueCounts,
  type WorkerView,
} from '../queue/index.js';
import type { BreakerState, CircuitBreaker } from './circuit-breaker.js';
import type { DeadLetter, DeadLetterQueue } from './dead-letters.js';

export type BreakerDependency = 'storage' | 'webhook' | 'scan';

/** One dependency's circuit breaker now. */
export interface BreakerStatus {
  readonly dependency: BreakerDependency;
  readonly state: BreakerState;
  /** When an attempt may pass again; null while closed. */
  readonly retryAtMs: number | null;
}

export interface QueueAdminOptions {
  readonly backend: () => QueueBackend;
  readonly workers: () => WorkerView[];
  /** Wakes the dispatcher (a job became claimable). */
  readonly poke: () => void;
  readonly breakers: ReadonlyArray<readonly [BreakerDependency, CircuitBreaker | null]>;
  readonly deadLetters: DeadLetterQueue;
  readonly clock: Clock;
}

export class QueueAdmin {
  readonly #o: QueueAdminOptions;

  constructor(options: QueueAdminOptions) {
    this.#o = options;
  }

  /** Jobs by state and tier (from the backend). */
  async counts(): Promise<QueueCounts> {
    return this.#o.backend().counts();
  }

  workers(): WorkerView[] {
    return this.#o.workers();
  }

  /** Each dependency's circuit breaker now; empty when circuit_breaker_enabled = false. */
  breakers(): BreakerStatus[] {
    const now = this.#o.clock.now();
    const out: BreakerStatus[] = [];
    for (const [dependency, b] of this.#o.breakers) {
      if (b === null) continue;
      const state = b.state(now);
      out.push({ dependency, state, retryAtMs: state === 'closed' ? null : b.retryAtMs(now) });
    }
    return out;
  }

  /** One job in whatever state it is, or null for an unknown (or pruned) id. */
  job(id: string): Promise<Job | null> {
    return this.#o.backend().get(id);
  }

  /** The job holding a slot path in whatever state it is, or null. */
  jobBySlot(slotPath: string): Promise<Job | null> {
    return this.#o.backend().getBySlot(slotPath);
  }

  /** Jobs for operators (default: queued and running, in line order; limit 100). */
  async listJobs(options?: ListJobsOptions): Promise<Job[]> {
    const backend = this.#o.backend();
    if (!canListJobs(backend)) throw new Error('this queue backend cannot list jobs');
    return backend.listJobs(options);
  }

  /**
   * A queued job waiting for its retry backoff runs as soon as a worker is free (attempts and
   * history kept). False when the id is unknown or the job is not queued.
   */
  async retryJob(id: string): Promise<boolean> {
    const backend = this.#o.backend();
    if (!canRetryNow(backend)) throw new Error('this queue backend cannot reschedule jobs');
    const ok = await backend.retryNow(id, this.#o.clock.now());
    if (ok) this.#o.poke();
    return ok;
  }

  listDeadLetters(options?: ListDeadOptions): Promise<DeadLetter[]> {
    return this.#o.deadLetters.list(options);
  }

  replayDeadLetters(target: DeadLetterTarget): Promise<number> {
    return this.#o.deadLetters.replay(target);
  }

  purgeDeadLetters(target: DeadLetterTarget): Promise<number> {
    return this.#o.deadLetters.purge(target);
  }
}
