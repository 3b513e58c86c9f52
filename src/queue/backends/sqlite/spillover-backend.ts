/**
 * QueueBackend of the embedded mode: every job is a row of a SQLite journal, and at most
 * `memoryLimit` (queue_size) queued jobs are also held in memory, in a window workers claim
 * from without reading the disk. Jobs that do not fit wait on disk only ("spilled") and are
 * pulled back in line order as the window drains.
 *
 * The window (spill-window.ts) holds each tier's line from its head, so claims compare the tiers'
 * heads (with aging) exactly as the other backends do; this file keeps the journal, the leases
 * and the QueueBackend contract.
 *
 * Leases live in memory only: a job being worked on stays 'queued' on disk, which costs no
 * write per claim and is what a restart needs anyway (every lease died with its process).
 * Disk reads skip leased rows, so their cost grows with the number of leases, which the
 * dispatcher keeps to one per worker.
 * durable (persistent_queue): every commit is fsynced and a restart restores every job.
 * Admissions are group-committed (group-commit.ts): those asked for in the same turn of the
 * event loop share one transaction, the WAL is synced off the event loop, and each caller is
 * answered (and the job becomes claimable) only once synced. Completions join the same groups but
 * are not waited for; other writes commit at once. Neither waits for a sync of its own
 * (synchronous = NORMAL): a completion or retry time lost to power loss runs an idempotent job
 * once more. Calls that read the journal wait until every admission is settled.
 * Not durable: the journal is a scratch file; a restart keeps only its dead letters.
 */
import { emptyCounts } from '../../contract/counts.js';
import { QueueClosedError } from '../../contract/errors.js';
import { copyError, createJob } from '../job.js';
import { DEFAULT_AGING_THRESHOLD_MS, PRIORITY_TIERS, pickNext, type AgingOptions, type PriorityTier } from '../../contract/priority.js';
import { listJobsQuery, openQueueDatabase, rowToJob, type QueueFileModes } from './sqlite-db.js';
import { GroupCommit, type GroupCommitStats } from './group-commit.js';
import { SpillWindow, toEntry, type Entry, type SpillEvent } from './spill-window.js';
import { SqliteJournal } from './sqlite-journal.js';
import type {
  BatchEnqueuer,
  DeadLetterTarget,
  EnqueueInput,
  Job,
  JobError,
  JobLister,
  JobRetrier,
  JobState,
  ListDeadOptions,
  ListJobsOptions,
  QueueBackend,
  QueueBackendOptions,
  QueueCounts,
  QueueRecovery,
} from '../../contract/types.js';

export interface SpilloverQueueBackendOptions extends QueueBackendOptions {
  readonly path: string;
  /** queue_size: queued jobs held in memory at most. Infinity holds every one (no spillover). */
  readonly memoryLimit: number;
  /** persistent_queue: fsync every commit and restore every job on open. */
  readonly durable: boolean;
  /** Reports jobs moving out of memory (spilled) and the end of a spill episode (drained). */
  readonly onSpill?: (event: SpillEvent) => void;
  /** Modes of the queue directory and files (default 0750 / 0640). */
  readonly modes?: QueueFileModes;
}

export type { SpillEvent } from './spill-window.js';

export async function openSpilloverQueueBackend(options: SpilloverQueueBackendOptions): Promise<SpilloverQueueBackend> {
  if (!(options.memoryLimit >= 1)) throw new RangeError('memoryLimit must be >= 1');
  const db = await openQueueDatabase(options.path, options.durable, options.modes);
  try {
    const journal = new SqliteJournal(db, options.durable);
    const releasedLeases = options.durable ? journal.requeueLeases() : (journal.dropAllButDead(), 0);
    const restoredJobs = journal.counts().reduce((n, c) => (c.state === 'queued' ? n + c.n : n), 0);
    const backend = new SpilloverQueueBackend(journal, options, { restoredJobs, releasedLeases });
    backend.reloadWindow();
    return backend;
  } catch (err) {
    db.close();
    throw err;
  }
}

export class SpilloverQueueBackend implements QueueBackend, BatchEnqueuer, JobLister, JobRetrier {
  readonly #journal: SqliteJournal;
  readonly #group: GroupCommit;
  readonly #aging: AgingOptions;
  /** Queued jobs in memory, per tier, and the count of those on disk only. */
  readonly #window: SpillWindow;
  readonly #leased = new Map<string, Entry>();
  /** Admitted jobs committed but not yet synced: rows on disk not yet in memory, skipped by disk reads. */
  readonly #admitting = new Set<string>();
  /** Completed, 'done' not committed yet: still 'queued' on disk, so disk reads skip them too. */
  readonly #completing = new Set<string>();
  /** What opening found: jobs waiting after lease recovery (none for a scratch journal). */
  readonly recovery: QueueRecovery;

  /** Use openSpilloverQueueBackend. */
  constructor(journal: SqliteJournal, options: SpilloverQueueBackendOptions, recovery: QueueRecovery) {
    this.#journal = journal;
    this.#group = new GroupCommit((fn) => journal.transaction(fn), options.durable ? () => journal.syncWal() : undefined);
    this.#aging = { agingThresholdMs: options.agingThresholdMs === undefined ? DEFAULT_AGING_THRESHOLD_MS : options.agingThresholdMs };
    this.#window = new SpillWindow({
      limit: options.memoryLimit,
      journal,
      skipped: (id) => this.#leased.has(id) || this.#admitting.has(id) || this.#completing.has(id),
      skipCount: () => this.#leased.size + this.#admitting.size + this.#completing.size,
      onSpill: options.onSpill,
    });
    this.recovery = recovery;
  }

  /** Queued jobs held in memory / waiting on disk only. */
  get residency(): { inMemory: number; diskOnly: number } {
    return { inMemory: this.#window.size, diskOnly: this.#window.diskOnly };
  }

  /** Commits so far: how many transactions carried how many grouped writes. */
  get groupCommits(): Readonly<GroupCommitStats> {
    return { ...this.#group.stats };
  }

  async enqueue(input: EnqueueInput): Promise<boolean> {
    this.#open();
    const job = createJob(input);
    // Into memory (claimable) only once committed: a worker never runs a job a crash could lose.
    const seq = await this.#group.submit({
      write: () => this.#journal.insert(job),
      committed: (seq) => {
        if (seq !== null) this.#admitting.add(job.id);
      },
      applied: (seq) => {
        if (seq === null) return;
        this.#admitting.delete(job.id);
        this.#window.admit({ job: { ...job }, seq });
      },
    });
    return seq !== null;
  }

  async enqueueMany(inputs: readonly EnqueueInput[]): Promise<number> {
    this.#open();
    const jobs = inputs.map(createJob); // all valid, or nothing is written
    const seqs = await this.#group.submit({
      write: () => this.#journal.insertMany(jobs),
      committed: (seqs) => seqs.forEach((seq, i) => seq !== null && this.#admitting.add(jobs[i]!.id)),
      applied: (seqs) => {
        let moved = 0;
        seqs.forEach((seq, i) => {
          if (seq === null) return;
          this.#admitting.delete(jobs[i]!.id);
          moved += this.#window.insert({ job: { ...jobs[i]! }, seq });
        });
        this.#window.report(moved);
      },
    });
    return seqs.filter((seq) => seq !== null).length;
  }

  // get and getBySlot do not wait for admissions in flight: a job not yet answered may or may
  // not be seen (as 'queued', from disk), as if asked a moment earlier or later.
  async get(id: string): Promise<Job | null> {
    this.#open();
    this.#group.flush(); // completions on disk
    const mem = this.#leased.get(id) ?? this.#window.get(id);
    if (mem !== undefined) return snapshot(mem.job);
    const row = this.#journal.get(id);
    return row === undefined ? null : rowToJob(row);
  }

  async getBySlot(slotPath: string): Promise<Job | null> {
    this.#open();
    this.#group.flush();
    const row = this.#journal.getBySlot(slotPath);
    if (row === undefined) return null;
    const mem = this.#leased.get(row.id) ?? this.#window.get(row.id);
    return mem !== undefined ? snapshot(mem.job) : rowToJob(row);
  }

  async claimNext(owner: string, nowMs: number, leaseMs: number): Promise<Job | null> {
    this.#open(); // no waiting: admissions in flight are not claimable yet, and disk reads skip them
    this.#window.topUp();
    const heads: { tier: PriorityTier; availableAtMs: number; seq: number; entry: Entry; fromDisk: boolean }[] = [];
    for (const tier of PRIORITY_TIERS) {
      const head = this.#window.head(tier);
      if (head !== undefined) heads.push({ tier, availableAtMs: head.entry.job.availableAtMs, seq: head.entry.seq, ...head });
    }
    const chosen = pickNext(heads, nowMs, this.#aging);
    if (chosen === null) return null;
    const { entry } = chosen;
    this.#window.takeHead(chosen.tier, chosen.fromDisk);
    entry.job.state = 'leased';
    entry.job.leaseOwner = owner;
    entry.job.leaseExpiresAtMs = nowMs + leaseMs;
    this.#leased.set(entry.job.id, entry);
    this.#window.checkDrained();
    return snapshot(entry.job);
  }

  async extendLease(id: string, owner: string, nowMs: number, leaseMs: number): Promise<boolean> {
    const entry = this.#held(id, owner);
    if (entry === null) return false;
    entry.job.leaseExpiresAtMs = nowMs + leaseMs;
    return true;
  }

  async complete(id: string, owner: string, nowMs: number): Promise<boolean> {
    const entry = this.#held(id, owner);
    if (entry === null) return false;
    // Out of memory now; 'done' is written with the next group and not waited for: lost to a
    // crash or power loss, it runs an idempotent job once more. If the disk refuses it, the job
    // is leased again, so its lease expires and it runs again, as when a completion failed before.
    this.#leased.delete(id);
    this.#completing.add(id);
    this.#group.submit({ write: () => this.#journal.markDone(id, nowMs), lazy: true }).then(
      () => this.#completing.delete(id),
      () => {
        this.#completing.delete(id);
        if (this.#journal.open) this.#leased.set(id, entry);
      },
    );
    return true;
  }

  async fail(id: string, owner: string, error: JobError, retryAtMs: number): Promise<boolean> {
    await this.#settled();
    const entry = this.#held(id, owner);
    if (entry === null) return false;
    this.#journal.markFailed(id, error, retryAtMs);
    entry.job.attempts += 1;
    entry.job.errors = [...entry.job.errors, copyError(error)];
    entry.job.availableAtMs = retryAtMs;
    this.#requeue(entry);
    return true;
  }

  async postpone(id: string, owner: string, availableAtMs: number): Promise<boolean> {
    await this.#settled();
    const entry = this.#held(id, owner);
    if (entry === null) return false;
    try {
      this.#journal.markPostponed(id, availableAtMs);
    } catch (err) {
      // A postponement is only a time: on a full disk (SQLITE_FULL) it is kept in memory, and
      // lost at worst by a restart, which runs the job earlier. The job itself stays written.
      if ((err as { code?: unknown }).code !== 'SQLITE_FULL') throw err;
    }
    entry.job.availableAtMs = availableAtMs;
    this.#requeue(entry);
    return true;
  }

  async bury(id: string, owner: string, error: JobError): Promise<boolean> {
    await this.#settled();
    const entry = this.#held(id, owner);
    if (entry === null) return false;
    this.#journal.markDead(id, error);
    this.#leased.delete(id);
    return true;
  }

  async releaseExpiredLeases(nowMs: number): Promise<number> {
    await this.#settled();
    let released = 0;
    for (const entry of [...this.#leased.values()]) {
      if ((entry.job.leaseExpiresAtMs ?? -Infinity) > nowMs) continue;
      this.#requeue(entry);
      released += 1;
    }
    return released;
  }

  async counts(): Promise<QueueCounts> {
    await this.#settled();
    const counts = emptyCounts();
    for (const { state, priority, n } of this.#journal.counts()) counts[state][priority] = n;
    for (const { job } of this.#leased.values()) {
      counts.queued[job.priority] -= 1; // leased in memory, 'queued' on disk
      counts.leased[job.priority] += 1;
    }
    return counts;
  }

  async listDead(options: ListDeadOptions = {}): Promise<Job[]> {
    await this.#settled();
    const { limit = 100, offset = 0 } = options;
    return this.#journal.listDead(limit, offset).map(rowToJob);
  }

  async listJobs(options: ListJobsOptions = {}): Promise<Job[]> {
    await this.#settled();
    // Leased jobs are 'queued' rows on disk: tell them apart by the ids leased in memory.
    const leased = [...this.#leased.keys()];
    const ids = leased.length === 0 ? "''" : leased.map(() => '?').join(', ');
    const { sql, args } = listJobsQuery(options, (states: readonly JobState[]) => {
      const parts: string[] = [];
      const args: unknown[] = [];
      for (const state of states) {
        if (state === 'queued') parts.push(`(state = 'queued' AND id NOT IN (${ids}))`), args.push(...leased);
        else if (state === 'leased') parts.push(`(state = 'queued' AND id IN (${ids}))`), args.push(...leased);
        else parts.push('state = ?'), args.push(state);
      }
      return { clause: parts.join(' OR '), args };
    });
    return this.#journal.select(sql, args).map((row) => {
      const mem = this.#leased.get(row.id);
      return mem !== undefined ? snapshot(mem.job) : rowToJob(row);
    });
  }

  async retryNow(id: string, nowMs: number): Promise<boolean> {
    await this.#settled();
    if (this.#leased.has(id)) return false;
    const mem = this.#window.get(id);
    if (mem !== undefined) {
      if (mem.job.availableAtMs <= nowMs) return true;
      this.#journal.markPostponed(id, nowMs);
      this.#window.remove(mem);
      mem.job.availableAtMs = nowMs;
      this.#window.admit(mem);
      return true;
    }
    const row = this.#journal.get(id);
    if (row === undefined || row.state !== 'queued') return false;
    if (row.available_at_ms <= nowMs) return true;
    this.#journal.markPostponed(id, nowMs);
    // A disk-only job: it moves up its tier's line, possibly into the window.
    this.#window.moveUp(toEntry({ ...row, available_at_ms: nowMs }));
    return true;
  }

  async replayDead(target: DeadLetterTarget, nowMs: number): Promise<number> {
    await this.#settled();
    const moved = this.#journal.replayDead(target, nowMs);
    // Replayed jobs re-enter their tiers at nowMs, possibly ahead of jobs in the window: rebuild it.
    if (moved > 0) this.reloadWindow();
    return moved;
  }

  async purgeDead(target: DeadLetterTarget): Promise<number> {
    await this.#settled();
    return this.#journal.purgeDead(target);
  }

  async pruneDone(finishedBeforeMs: number): Promise<number> {
    await this.#settled();
    return this.#journal.pruneDone(finishedBeforeMs);
  }

  async close(): Promise<void> {
    if (this.#journal.open) await this.#group.settle();
    this.#journal.close();
  }

  /** Rebuilds the window from the journal (open, replay): every queued job not leased is disk-only, then the best are pulled in. */
  reloadWindow(): void {
    const leasedByTier: Record<PriorityTier, number> = { high: 0, medium: 0, low: 0 };
    for (const { job } of this.#leased.values()) leasedByTier[job.priority] += 1;
    this.#window.reload(leasedByTier);
  }

  #requeue(entry: Entry): void {
    delete entry.job.leaseOwner;
    delete entry.job.leaseExpiresAtMs;
    entry.job.state = 'queued';
    this.#leased.delete(entry.job.id);
    this.#window.admit(entry);
  }

  #open(): void {
    if (!this.#journal.open) throw new QueueClosedError();
  }

  /** Open, and every admission asked for so far committed, synced and in memory. */
  async #settled(): Promise<void> {
    this.#open();
    await this.#group.settle();
    this.#open();
  }

  #held(id: string, owner: string): Entry | null {
    this.#open();
    const entry = this.#leased.get(id);
    return entry !== undefined && entry.job.leaseOwner === owner ? entry : null;
  }
}

function snapshot(job: Job): Job {
  return structuredClone(job);
}
