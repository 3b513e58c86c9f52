/**
 * In-memory QueueBackend: for unit tests of callers and for persistent_queue = false.
 * Queued jobs also stand in one line per tier (tier-line.ts), so claimNext compares three heads
 * instead of scanning every job; listing, counting and lease expiry still walk all jobs, done
 * ones included until pruneDone (the dispatcher's queue_size bound and done retention keep
 * that small).
 */
import { emptyCounts } from '../contract/counts.js';
import { QueueClosedError } from '../contract/errors.js';
import { copyError, createJob } from './job.js';
import { DEFAULT_AGING_THRESHOLD_MS, PRIORITY_TIERS, pickNext, type AgingOptions, type PriorityTier } from '../contract/priority.js';
import { insertInLine, removeFromLine } from './tier-line.js';
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
  /** The queued jobs of each tier in line order; a job is here exactly while its state is 'queued'. */
  readonly #lines: Record<PriorityTier, Entry[]> = { high: [], medium: [], low: [] };
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
    const heads: { tier: PriorityTier; availableAtMs: number; seq: number; entry: Entry }[] = [];
    for (const tier of PRIORITY_TIERS) {
      const entry = this.#lines[tier][0]; // the tier's oldest: if it is not available yet, none is
      if (entry !== undefined && entry.job.availableAtMs <= nowMs) heads.push({ tier, availableAtMs: entry.job.availableAtMs, seq: entry.seq, entry });
    }
    const chosen = pickNext(heads, nowMs, this.#aging);
    if (chosen === null) return null;
    this.#lines[chosen.tier].shift();
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
    job.attempts += 1;
    job.errors = [...job.errors, copyError(error)];
    job.availableAtMs = retryAtMs;
    this.#queue(id);
    return true;
  }

  async postpone(id: string, owner: string, availableAtMs: number): Promise<boolean> {
    const job = this.#held(id, owner);
    if (job === null) return false;
    clearLease(job);
    job.availableAtMs = availableAtMs;
    this.#queue(id);
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
        this.#queue(job.id);
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
    const entry = this.#jobs.get(id);
    if (entry === undefined || entry.job.state !== 'queued') return false;
    if (entry.job.availableAtMs <= nowMs) return true;
    // Its place in line moves up with its time.
    removeFromLine(this.#lines[entry.job.priority], entry);
    entry.job.availableAtMs = nowMs;
    insertInLine(this.#lines[entry.job.priority], entry);
    return true;
  }

  async replayDead(target: DeadLetterTarget, nowMs: number): Promise<number> {
    let moved = 0;
    for (const job of this.#dead(target)) {
      job.attempts = 0;
      job.availableAtMs = nowMs;
      delete job.finishedAtMs;
      this.#queue(job.id);
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
    const entry: Entry = { job: { ...job }, seq: this.#nextSeq++ };
    this.#jobs.set(job.id, entry);
    this.#slots.set(job.slotPath, job.id);
    insertInLine(this.#lines[job.priority], entry); // createJob makes it 'queued'
    return true;
  }

  /** Makes a job that is not in line (leased, dead) 'queued' and puts it at its place. */
  #queue(id: string): void {
    const entry = this.#jobs.get(id)!;
    entry.job.state = 'queued';
    insertInLine(this.#lines[entry.job.priority], entry);
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
