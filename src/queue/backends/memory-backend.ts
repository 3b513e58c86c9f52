/**
 * In-memory QueueBackend: for unit tests of callers and for persistent_queue = false.
 * claimNext scans every job, done ones included until pruneDone (O(n)); the dispatcher's
 * queue_size bound and done retention keep n small.
 */
import { emptyCounts } from '../contract/counts.js';
import { QueueClosedError } from '../contract/errors.js';
import { copyError, createJob } from './job.js';
import { DEFAULT_AGING_THRESHOLD_MS, pickNext, type AgingOptions, type PriorityTier } from '../contract/priority.js';
import { JOB_STATES } from '../contract/types.js';
import type {
  BatchEnqueuer,
  DeadLetterTarget,
  EnqueueInput,
  Job,
  JobError,
  JobLister,
  JobRetrier,
  ListDeadOptions,
  ListJobsOptions,
  QueueBackend,
  QueueBackendOptions,
  QueueCounts,
} from '../contract/types.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
interface Entry {
  job: Mutable<Job>;
  /** Insertion order: the FIFO tie-break for equal times. */
  readonly seq: number;
}

export class MemoryQueueBackend implements QueueBackend, BatchEnqueuer, JobLister, JobRetrier {
  readonly #jobs = new Map<string, Entry>();
  /** slot path -> id of the job holding it (every state, until purged or pruned). */
  readonly #slots = new Map<string, string>();
  readonly #aging: AgingOptions;
  #nextSeq = 1;
  #closed = false;

  constructor(options: QueueBackendOptions = {}) {
    const { agingThresholdMs = DEFAULT_AGING_THRESHOLD_MS } = options;
    this.#aging = { agingThresholdMs };
  }

  async enqueue(input: EnqueueInput): Promise<boolean> {
    this.#open();
    return this.#admit(createJob(input));
  }

  async enqueueMany(inputs: readonly EnqueueInput[]): Promise<number> {
    this.#open();
    // Validate all first so a bad input admits nothing, like the SQLite transaction.
    const jobs = inputs.map(createJob);
    let added = 0;
    for (const job of jobs) if (this.#admit(job)) added += 1;
    return added;
  }

  async get(id: string): Promise<Job | null> {
    this.#open();
    const entry = this.#jobs.get(id);
    return entry === undefined ? null : snapshot(entry.job);
  }

  async getBySlot(slotPath: string): Promise<Job | null> {
    this.#open();
    const id = this.#slots.get(slotPath);
    const entry = id === undefined ? undefined : this.#jobs.get(id);
    return entry === undefined ? null : snapshot(entry.job);
  }

  async claimNext(owner: string, nowMs: number, leaseMs: number): Promise<Job | null> {
    this.#open();
    const heads = new Map<PriorityTier, { tier: PriorityTier; availableAtMs: number; seq: number; entry: Entry }>();
    for (const entry of this.#jobs.values()) {
      const { job } = entry;
      if (job.state !== 'queued' || job.availableAtMs > nowMs) continue;
      const head = heads.get(job.priority);
      if (
        head === undefined ||
        job.availableAtMs < head.availableAtMs ||
        (job.availableAtMs === head.availableAtMs && entry.seq < head.seq)
      ) {
        heads.set(job.priority, { tier: job.priority, availableAtMs: job.availableAtMs, seq: entry.seq, entry });
      }
    }
    const chosen = pickNext([...heads.values()], nowMs, this.#aging);
    if (chosen === null) return null;
    const job = chosen.entry.job;
    job.state = 'leased';
    job.leaseOwner = owner;
    job.leaseExpiresAtMs = nowMs + leaseMs;
    return snapshot(job);
  }

  async extendLease(id: string, owner: string, nowMs: number, leaseMs: number): Promise<boolean> {
    const job = this.#held(id, owner);
    if (job === null) return false;
    job.leaseExpiresAtMs = nowMs + leaseMs;
    return true;
  }

  async complete(id: string, owner: string, nowMs: number): Promise<boolean> {
    const job = this.#held(id, owner);
    if (job === null) return false;
    clearLease(job);
    job.state = 'done';
    job.finishedAtMs = nowMs;
    return true;
  }

  async fail(id: string, owner: string, error: JobError, retryAtMs: number): Promise<boolean> {
    const job = this.#held(id, owner);
    if (job === null) return false;
    clearLease(job);
    job.state = 'queued';
    job.attempts += 1;
    job.errors = [...job.errors, copyError(error)];
    job.availableAtMs = retryAtMs;
    return true;
  }

  async postpone(id: string, owner: string, availableAtMs: number): Promise<boolean> {
    const job = this.#held(id, owner);
    if (job === null) return false;
    clearLease(job);
    job.state = 'queued';
    job.availableAtMs = availableAtMs;
    return true;
  }

  async bury(id: string, owner: string, error: JobError): Promise<boolean> {
    const job = this.#held(id, owner);
    if (job === null) return false;
    clearLease(job);
    job.state = 'dead';
    job.attempts += 1;
    job.errors = [...job.errors, copyError(error)];
    job.finishedAtMs = error.atMs;
    return true;
  }

  async releaseExpiredLeases(nowMs: number): Promise<number> {
    this.#open();
    let released = 0;
    for (const { job } of this.#jobs.values()) {
      if (job.state === 'leased' && (job.leaseExpiresAtMs ?? -Infinity) <= nowMs) {
        clearLease(job);
        job.state = 'queued';
        released += 1;
      }
    }
    return released;
  }

  async counts(): Promise<QueueCounts> {
    this.#open();
    const counts = emptyCounts();
    for (const { job } of this.#jobs.values()) counts[job.state][job.priority] += 1;
    return counts;
  }

  async listDead(options: ListDeadOptions = {}): Promise<Job[]> {
    this.#open();
    const { limit = 100, offset = 0 } = options;
    return [...this.#jobs.values()]
      .filter((e) => e.job.state === 'dead')
      .sort((a, b) => (a.job.finishedAtMs ?? 0) - (b.job.finishedAtMs ?? 0) || a.seq - b.seq)
      .slice(offset, offset + limit)
      .map((e) => snapshot(e.job));
  }

  async listJobs(options: ListJobsOptions = {}): Promise<Job[]> {
    this.#open();
    const { states = ['queued', 'leased'], priority, limit = 100, offset = 0 } = options;
    for (const s of states) if (!JOB_STATES.includes(s)) throw new RangeError(`unknown job state ${String(s)}`);
    const finished = states.every((s) => s === 'done' || s === 'dead');
    return [...this.#jobs.values()]
      .filter((e) => states.includes(e.job.state) && (priority === undefined || e.job.priority === priority))
      .sort((a, b) => (finished ? (a.job.finishedAtMs ?? 0) - (b.job.finishedAtMs ?? 0) : a.job.availableAtMs - b.job.availableAtMs) || a.seq - b.seq)
      .slice(offset, offset + limit)
      .map((e) => snapshot(e.job));
  }

  async retryNow(id: string, nowMs: number): Promise<boolean> {
    this.#open();
    const job = this.#jobs.get(id)?.job;
    if (job === undefined || job.state !== 'queued') return false;
    job.availableAtMs = Math.min(job.availableAtMs, nowMs);
    return true;
  }

  async replayDead(target: DeadLetterTarget, nowMs: number): Promise<number> {
    let moved = 0;
    for (const job of this.#dead(target)) {
      job.state = 'queued';
      job.attempts = 0;
      job.availableAtMs = nowMs;
      delete job.finishedAtMs;
      moved += 1;
    }
    return moved;
  }

  async purgeDead(target: DeadLetterTarget): Promise<number> {
    const doomed = this.#dead(target);
    for (const job of doomed) this.#forget(job);
    return doomed.length;
  }

  async pruneDone(finishedBeforeMs: number): Promise<number> {
    this.#open();
    let pruned = 0;
    for (const { job } of this.#jobs.values()) {
      if (job.state === 'done' && (job.finishedAtMs ?? 0) < finishedBeforeMs) {
        this.#forget(job);
        pruned += 1;
      }
    }
    return pruned;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #open(): void {
    if (this.#closed) throw new QueueClosedError();
  }

  #admit(job: Job): boolean {
    if (this.#jobs.has(job.id) || this.#slots.has(job.slotPath)) return false;
    this.#jobs.set(job.id, { job: { ...job }, seq: this.#nextSeq++ });
    this.#slots.set(job.slotPath, job.id);
    return true;
  }

  #forget(job: Job): void {
    this.#jobs.delete(job.id);
    if (this.#slots.get(job.slotPath) === job.id) this.#slots.delete(job.slotPath);
  }

  #held(id: string, owner: string): Mutable<Job> | null {
    this.#open();
    const job = this.#jobs.get(id)?.job;
    return job !== undefined && job.state === 'leased' && job.leaseOwner === owner ? job : null;
  }

  #dead(target: DeadLetterTarget): Mutable<Job>[] {
    this.#open();
    if (target === 'all') return [...this.#jobs.values()].map((e) => e.job).filter((j) => j.state === 'dead');
    const job = this.#jobs.get(target.id)?.job;
    return job !== undefined && job.state === 'dead' ? [job] : [];
  }
}

function clearLease(job: Mutable<Job>): void {
  delete job.leaseOwner;
  delete job.leaseExpiresAtMs;
}

function snapshot(job: Job): Job {
  return structuredClone(job);
}
