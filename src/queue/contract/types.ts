/**
 * The finalization queue's job record and the `QueueBackend` contract that every backend
 * (memory, SQLite, later Redis) implements and `test/conformance/queue-backend.suite.ts` checks.
 */
import type { PriorityTier } from './priority.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export type JobState = 'queued' | 'leased' | 'done' | 'dead';
export const JOB_STATES: readonly JobState[] = ['queued', 'leased', 'done', 'dead'];

export interface JobError {
  readonly atMs: number;
  readonly message: string;
  /** Stable error code (ERR_…), for counting and for deciding whether to retry. */
  readonly code: string;
}

/** A snapshot: mutating it changes nothing in the backend. */
export interface Job {
  /** Unique across every state, done and dead included (the upload id). */
  readonly id: string;
  readonly slotPath: string;
  readonly size: number;
  readonly priority: PriorityTier;
  readonly payload: JsonObject;
  /** Failed attempts so far (fail and bury add one; replayDead resets to 0). */
  readonly attempts: number;
  /** Every failure in order, kept across replays. */
  readonly errors: readonly JobError[];
  readonly enqueuedAtMs: number;
  /** Not claimable before this (retry backoff); aging counts from here. */
  readonly availableAtMs: number;
  readonly state: JobState;
  /** Present only while leased. */
  readonly leaseOwner?: string;
  readonly leaseExpiresAtMs?: number;
  /** Present once done or dead; `pruneDone` uses it. */
  readonly finishedAtMs?: number;
}

export interface EnqueueInput {
  readonly id: string;
  readonly slotPath: string;
  readonly size: number;
  readonly priority: PriorityTier;
  /** Stored as JSON: anything JSON.stringify drops (undefined, functions) is gone on read. */
  readonly payload: JsonObject;
  readonly enqueuedAtMs: number;
  /** Defaults to enqueuedAtMs. */
  readonly availableAtMs?: number;
}

/** Jobs per state and tier, e.g. for hmac_queue_length{priority} and the large-tier bound. */
export type QueueCounts = Record<JobState, Record<PriorityTier, number>>;

/** Dead letters are addressed one at a time or all together (an id 'all' stays addressable). */
export type DeadLetterTarget = { readonly id: string } | 'all';

export interface ListDeadOptions {
  /** Default 100. */
  readonly limit?: number;
  readonly offset?: number;
}

/**
 * Durable priority queue of finalization jobs, leased to workers.
 *
 * Ownership: mutating a leased job needs the owner that claimed it. A lease that has expired but
 * was not yet released still belongs to its owner; once `releaseExpiredLeases` (or a restart)
 * has requeued it, the old owner's calls return false and change nothing.
 * Unknown ids and wrong owners are answers (`false`, `null`, `0`), not errors. Invalid input
 * (empty id, bad tier, negative size) rejects with a TypeError or RangeError; any call after
 * `close()` rejects with QueueClosedError.
 */
export interface QueueBackend {
  /**
   * Admits a job as 'queued'. Resolves true only once it is persisted. Idempotent by id: if the
   * id exists in any state (done and dead included) nothing changes and it resolves false.
   * One job per slot path: if another job (any state) holds `input.slotPath`, nothing changes and
   * it resolves false too; the check and the insert are one atomic step, so of two concurrent
   * enqueues for one slot exactly one wins. A slot is freed only by purgeDead / pruneDone.
   */
  enqueue(input: EnqueueInput): Promise<boolean>;

  /** The job in whatever state it is, or null for an unknown (or purged/pruned) id. */
  get(id: string): Promise<Job | null>;

  /** The job holding `slotPath` in whatever state it is, or null when no job holds it. */
  getBySlot(slotPath: string): Promise<Job | null>;

  /**
   * Leases the best job available at `nowMs` (availableAtMs <= nowMs) to `owner` until
   * nowMs + leaseMs: highest effective tier (with aging), FIFO within it. Concurrent calls never
   * hand out the same job. Null when nothing is available.
   */
  claimNext(owner: string, nowMs: number, leaseMs: number): Promise<Job | null>;

  /** Pushes the lease to nowMs + leaseMs. False if `owner` does not hold the lease. */
  extendLease(id: string, owner: string, nowMs: number, leaseMs: number): Promise<boolean>;

  /** Leased -> done. False if `owner` does not hold the lease. */
  complete(id: string, owner: string, nowMs: number): Promise<boolean>;

  /**
   * Leased -> queued with attempts + 1, `error` appended and availableAtMs = retryAtMs.
   * False if `owner` does not hold the lease.
   */
  fail(id: string, owner: string, error: JobError, retryAtMs: number): Promise<boolean>;

  /**
   * Leased -> queued with attempts and errors unchanged and availableAtMs = availableAtMs: a wait
   * that is not the job's failure (an open circuit breaker, a shutdown). Keeps its place in line
   * from then on like any job made available at that time. False if `owner` does not hold the lease.
   */
  postpone(id: string, owner: string, availableAtMs: number): Promise<boolean>;

  /**
   * Leased -> dead (a dead letter) with attempts + 1 and `error` appended; finishedAtMs = error.atMs.
   * False if `owner` does not hold the lease.
   */
  bury(id: string, owner: string, error: JobError): Promise<boolean>;

  /**
   * Leased jobs whose lease expired (leaseExpiresAtMs <= nowMs) go back to queued, keeping their
   * attempts and place in line: a stuck or crashed worker is not the job's failure.
   * Resolves how many were requeued. Durable backends also do this for every lease when opened,
   * because leases held by a previous process died with it.
   */
  releaseExpiredLeases(nowMs: number): Promise<number>;

  counts(): Promise<QueueCounts>;

  /** Dead letters, oldest burial first, with their full error history. */
  listDead(options?: ListDeadOptions): Promise<Job[]>;

  /**
   * Dead -> queued with attempts reset to 0 and errors kept, available at nowMs.
   * Resolves how many moved; a target that is not dead (unknown, queued, …) counts 0.
   */
  replayDead(target: DeadLetterTarget, nowMs: number): Promise<number>;

  /** Deletes dead letters for good. Resolves how many; non-dead targets are left alone (0). */
  purgeDead(target: DeadLetterTarget): Promise<number>;

  /**
   * Deletes done jobs with finishedAtMs < finishedBeforeMs; done rows are kept until then so a
   * repeated enqueue of a finished upload stays a no-op. Resolves how many.
   */
  pruneDone(finishedBeforeMs: number): Promise<number>;

  /** Releases resources. Idempotent; leased jobs stay leased and are requeued on the next open. */
  close(): Promise<void>;
}

/**
 * Optional capability: admit many jobs in one durable write (spillover to disk, bulk recovery).
 * Same per-job rules as `enqueue`; resolves how many were new. Callers pass bounded batches.
 */
export interface BatchEnqueuer {
  enqueueMany(inputs: readonly EnqueueInput[]): Promise<number>;
}

export function canEnqueueMany(backend: QueueBackend): backend is QueueBackend & BatchEnqueuer {
  return typeof (backend as Partial<BatchEnqueuer>).enqueueMany === 'function';
}

export interface ListJobsOptions {
  /** Default ['queued', 'leased']. */
  readonly states?: readonly JobState[];
  readonly priority?: PriorityTier;
  /** Default 100. */
  readonly limit?: number;
  readonly offset?: number;
}

/**
 * Optional capability: list jobs for operators. Order: by finishedAtMs when every requested
 * state is done or dead, else line order (availableAtMs, then admission). Leased jobs show as
 * 'leased' with their owner, whatever the backend stores.
 */
export interface JobLister {
  listJobs(options?: ListJobsOptions): Promise<Job[]>;
}

/**
 * Optional capability: a queued job waiting for its backoff becomes available at nowMs
 * (attempts and errors kept; one already available keeps its time). False when the id is
 * unknown or the job is not queued (leased, done, dead).
 */
export interface JobRetrier {
  retryNow(id: string, nowMs: number): Promise<boolean>;
}

export function canListJobs(backend: QueueBackend): backend is QueueBackend & JobLister {
  return typeof (backend as Partial<JobLister>).listJobs === 'function';
}

export function canRetryNow(backend: QueueBackend): backend is QueueBackend & JobRetrier {
  return typeof (backend as Partial<JobRetrier>).retryNow === 'function';
}

/** Options every backend accepts. */
export interface QueueBackendOptions {
  /** Aging threshold for claimNext; null disables aging. Default DEFAULT_AGING_THRESHOLD_MS. */
  readonly agingThresholdMs?: number | null;
}

/**
 * What opening a durable backend found, for "Queue recovery completed: N items restored from
 * persistence". A backend that recovers exposes it as `recovery`.
 */
export interface QueueRecovery {
  /** Jobs waiting for finalization after recovery (queued, leases included). */
  readonly restoredJobs: number;
  /** Of those, how many were leased by the previous process. */
  readonly releasedLeases: number;
}
