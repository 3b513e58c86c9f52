/**
 * QueueBackend on one SQLite file (better-sqlite3): the embedded, single-node persistent queue.
 *
 * One process owns the file: opening it requeues every lease, because leases held by a
 * previous process died with it. Calls are synchronous inside better-sqlite3, so claims within a
 * process cannot interleave; claims also run in BEGIN IMMEDIATE transactions with a guarded
 * UPDATE, so even a second connection could not lease the same job twice.
 */
import type Database from 'better-sqlite3';
import { emptyCounts } from './counts.js';
import { QueueClosedError } from './errors.js';
import { copyError, createJob } from './job.js';
import { DEFAULT_AGING_THRESHOLD_MS, PRIORITY_TIERS, pickNext, type AgingOptions, type PriorityTier, type QueueHead } from './priority.js';
import { insertParams, listJobsQuery, openQueueDatabase, rowToJob, type JobRow } from './sqlite-db.js';
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
} from './types.js';

export interface SqliteQueueBackendOptions extends QueueBackendOptions {
  /** The database file; its directory is created if missing. */
  readonly path: string;
}

/** What opening found, for "Queue recovery completed: N items restored from persistence". */
export interface QueueRecovery {
  /** Jobs waiting for finalization after recovery (queued, leases included). */
  readonly restoredJobs: number;
  /** Of those, how many were leased by the previous process. */
  readonly releasedLeases: number;
}


const UNLEASE = 'lease_owner = NULL, lease_expires_at_ms = NULL';
const HELD = "id = @id AND state = 'leased' AND lease_owner = @owner";
const APPEND_ERROR = "errors = json_insert(errors, '$[#]', json(@error))";

function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare(
      `INSERT INTO jobs (id, slot_path, size, priority, payload, enqueued_at_ms, available_at_ms, state)
       VALUES (@id, @slotPath, @size, @priority, @payload, @enqueuedAtMs, @availableAtMs, 'queued')
       ON CONFLICT DO NOTHING`, // a taken id or a taken slot path: admit nothing
    ),
    get: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE id = ?'),
    getBySlot: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE slot_path = ?'),
    head: db.prepare<[PriorityTier, number], { seq: number; available_at_ms: number }>(
      `SELECT seq, available_at_ms FROM jobs
       WHERE state = 'queued' AND priority = ? AND available_at_ms <= ?
       ORDER BY available_at_ms, seq LIMIT 1`,
    ),
    lease: db.prepare<[string, number, number], JobRow>(
      `UPDATE jobs SET state = 'leased', lease_owner = ?, lease_expires_at_ms = ?
       WHERE seq = ? AND state = 'queued' RETURNING *`,
    ),
    extend: db.prepare(`UPDATE jobs SET lease_expires_at_ms = @expiresAtMs WHERE ${HELD}`),
    complete: db.prepare(`UPDATE jobs SET state = 'done', finished_at_ms = @nowMs, ${UNLEASE} WHERE ${HELD}`),
    fail: db.prepare(
      `UPDATE jobs SET state = 'queued', attempts = attempts + 1, ${APPEND_ERROR},
         available_at_ms = @retryAtMs, ${UNLEASE} WHERE ${HELD}`,
    ),
    postpone: db.prepare(`UPDATE jobs SET state = 'queued', available_at_ms = @availableAtMs, ${UNLEASE} WHERE ${HELD}`),
    bury: db.prepare(
      `UPDATE jobs SET state = 'dead', attempts = attempts + 1, ${APPEND_ERROR},
         finished_at_ms = @atMs, ${UNLEASE} WHERE ${HELD}`,
    ),
    releaseExpired: db.prepare<[number]>(
      `UPDATE jobs SET state = 'queued', ${UNLEASE} WHERE state = 'leased' AND lease_expires_at_ms <= ?`,
    ),
    counts: db.prepare<[], { state: JobState; priority: PriorityTier; n: number }>(
      'SELECT state, priority, COUNT(*) AS n FROM jobs GROUP BY state, priority',
    ),
    listDead: db.prepare<[number, number], JobRow>(
      "SELECT * FROM jobs WHERE state = 'dead' ORDER BY finished_at_ms, seq LIMIT ? OFFSET ?",
    ),
    replayOne: db.prepare<[number, string]>(
      `UPDATE jobs SET state = 'queued', attempts = 0, available_at_ms = ?, finished_at_ms = NULL
       WHERE state = 'dead' AND id = ?`,
    ),
    replayAll: db.prepare<[number]>(
      "UPDATE jobs SET state = 'queued', attempts = 0, available_at_ms = ?, finished_at_ms = NULL WHERE state = 'dead'",
    ),
    retryNow: db.prepare<[number, string]>(
      "UPDATE jobs SET available_at_ms = MIN(available_at_ms, ?) WHERE id = ? AND state = 'queued'",
    ),
    purgeOne: db.prepare<[string]>("DELETE FROM jobs WHERE state = 'dead' AND id = ?"),
    purgeAll: db.prepare("DELETE FROM jobs WHERE state = 'dead'"),
    pruneDone: db.prepare<[number]>("DELETE FROM jobs WHERE state = 'done' AND finished_at_ms < ?"),
  };
}

export async function openSqliteQueueBackend(options: SqliteQueueBackendOptions): Promise<SqliteQueueBackend> {
  const db = await openQueueDatabase(options.path, true);
  try {
    const recovery = db.transaction(recoverLeases).immediate(db);
    const { agingThresholdMs = DEFAULT_AGING_THRESHOLD_MS } = options;
    return new SqliteQueueBackend(db, { agingThresholdMs }, recovery);
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Every lease is a previous process's: requeue it, keeping attempts and place in line. */
function recoverLeases(db: Database.Database): QueueRecovery {
  const releasedLeases = db.prepare(`UPDATE jobs SET state = 'queued', ${UNLEASE} WHERE state = 'leased'`).run().changes;
  const { n } = db.prepare("SELECT COUNT(*) AS n FROM jobs WHERE state = 'queued'").get() as { n: number };
  return { restoredJobs: n, releasedLeases };
}

export class SqliteQueueBackend implements QueueBackend, BatchEnqueuer, JobLister, JobRetrier {
  readonly #db: Database.Database;
  readonly #st: ReturnType<typeof prepareStatements>;
  readonly #aging: AgingOptions;
  readonly #claim: (owner: string, nowMs: number, leaseMs: number) => JobRow | null;
  readonly #insertMany: (inputs: readonly EnqueueInput[]) => number;
  /** Found when this file was opened. */
  readonly recovery: QueueRecovery;

  /** Use openSqliteQueueBackend, which opens, migrates and recovers the file first. */
  constructor(db: Database.Database, aging: AgingOptions, recovery: QueueRecovery) {
    this.#db = db;
    this.#st = prepareStatements(db);
    this.#aging = aging;
    this.recovery = recovery;
    const claim = db.transaction((owner: string, nowMs: number, leaseMs: number): JobRow | null => {
      const heads: QueueHead[] = [];
      for (const tier of PRIORITY_TIERS) {
        const row = this.#st.head.get(tier, nowMs);
        if (row !== undefined) heads.push({ tier, availableAtMs: row.available_at_ms, seq: row.seq });
      }
      const chosen = pickNext(heads, nowMs, this.#aging);
      return chosen === null ? null : (this.#st.lease.get(owner, nowMs + leaseMs, chosen.seq) ?? null);
    });
    // IMMEDIATE takes the write lock before reading the heads, so no other connection can
    // lease a head between our SELECT and UPDATE.
    this.#claim = (owner, nowMs, leaseMs) => claim.immediate(owner, nowMs, leaseMs);
    const insertMany = db.transaction((inputs: readonly EnqueueInput[]): number => {
      let added = 0;
      for (const input of inputs) added += this.#insert(input);
      return added;
    });
    this.#insertMany = (inputs) => insertMany.immediate(inputs);
  }

  async enqueue(input: EnqueueInput): Promise<boolean> {
    this.#open();
    return this.#insert(input) === 1;
  }

  async enqueueMany(inputs: readonly EnqueueInput[]): Promise<number> {
    this.#open();
    return this.#insertMany(inputs);
  }

  async get(id: string): Promise<Job | null> {
    this.#open();
    const row = this.#st.get.get(id);
    return row === undefined ? null : rowToJob(row);
  }

  async getBySlot(slotPath: string): Promise<Job | null> {
    this.#open();
    const row = this.#st.getBySlot.get(slotPath);
    return row === undefined ? null : rowToJob(row);
  }

  async claimNext(owner: string, nowMs: number, leaseMs: number): Promise<Job | null> {
    this.#open();
    const row = this.#claim(owner, nowMs, leaseMs);
    return row === null ? null : rowToJob(row);
  }

  async extendLease(id: string, owner: string, nowMs: number, leaseMs: number): Promise<boolean> {
    this.#open();
    return this.#st.extend.run({ id, owner, expiresAtMs: nowMs + leaseMs }).changes === 1;
  }

  async complete(id: string, owner: string, nowMs: number): Promise<boolean> {
    this.#open();
    return this.#st.complete.run({ id, owner, nowMs }).changes === 1;
  }

  async fail(id: string, owner: string, error: JobError, retryAtMs: number): Promise<boolean> {
    this.#open();
    const e = copyError(error);
    return this.#st.fail.run({ id, owner, error: JSON.stringify(e), retryAtMs }).changes === 1;
  }

  async postpone(id: string, owner: string, availableAtMs: number): Promise<boolean> {
    this.#open();
    return this.#st.postpone.run({ id, owner, availableAtMs }).changes === 1;
  }

  async bury(id: string, owner: string, error: JobError): Promise<boolean> {
    this.#open();
    const e = copyError(error);
    return this.#st.bury.run({ id, owner, error: JSON.stringify(e), atMs: e.atMs }).changes === 1;
  }

  async releaseExpiredLeases(nowMs: number): Promise<number> {
    this.#open();
    return this.#st.releaseExpired.run(nowMs).changes;
  }

  async counts(): Promise<QueueCounts> {
    this.#open();
    const counts = emptyCounts();
    for (const { state, priority, n } of this.#st.counts.all()) counts[state][priority] = n;
    return counts;
  }

  async listDead(options: ListDeadOptions = {}): Promise<Job[]> {
    this.#open();
    const { limit = 100, offset = 0 } = options;
    return this.#st.listDead.all(limit, offset).map(rowToJob);
  }

  async listJobs(options: ListJobsOptions = {}): Promise<Job[]> {
    this.#open();
    const { sql, args } = listJobsQuery(options);
    return this.#db.prepare<unknown[], JobRow>(sql).all(...args).map(rowToJob);
  }

  async retryNow(id: string, nowMs: number): Promise<boolean> {
    this.#open();
    return this.#st.retryNow.run(nowMs, id).changes === 1;
  }

  async replayDead(target: DeadLetterTarget, nowMs: number): Promise<number> {
    this.#open();
    const result = target === 'all' ? this.#st.replayAll.run(nowMs) : this.#st.replayOne.run(nowMs, target.id);
    return result.changes;
  }

  async purgeDead(target: DeadLetterTarget): Promise<number> {
    this.#open();
    return (target === 'all' ? this.#st.purgeAll.run() : this.#st.purgeOne.run(target.id)).changes;
  }

  async pruneDone(finishedBeforeMs: number): Promise<number> {
    this.#open();
    return this.#st.pruneDone.run(finishedBeforeMs).changes;
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }

  #open(): void {
    if (!this.#db.open) throw new QueueClosedError();
  }

  /** 1 if admitted, 0 if the id already existed. Validates like the memory backend. */
  #insert(input: EnqueueInput): number {
    const job = createJob(input);
    return this.#st.insert.run(insertParams(job)).changes;
  }
}
