/**
 * The disk side of SpilloverQueueBackend: every job as a row of the queue schema, written on
 * each state change that must survive a crash (admitted, done, failed, postponed, dead,
 * replayed, purged). Leases are not written: a lease dies with its process, and a restart
 * requeues it anyway, so a job being worked on stays 'queued' on disk.
 */
import { closeSync, fdatasync, openSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { copyError } from '../job.js';
import type { PriorityTier } from '../../contract/priority.js';
import { insertParams, type JobRow } from './sqlite-db.js';
import type { DeadLetterTarget, Job, JobError, JobState } from '../../contract/types.js';

const APPEND_ERROR = "errors = json_insert(errors, '$[#]', json(@error))";
const QUEUED = "id = @id AND state = 'queued'";

/** Position in a tier's line: (availableAtMs, seq), compared in that order. */
export interface LineKey {
  readonly availableAtMs: number;
  readonly seq: number;
}

export class SqliteJournal {
  readonly #db: Database.Database;
  readonly #st: ReturnType<typeof prepare>;
  readonly #insertMany: (jobs: readonly Job[]) => (number | null)[];
  /** One wrapper for every group: db.transaction() builds a new function each time it is called. */
  readonly #runInTransaction: Database.Transaction<(fn: () => unknown) => unknown>;

  /** The write-ahead log, held open to sync it (durable journals only). */
  readonly #wal: number | undefined;

  /** durable: the journal syncs its WAL (syncWal) because the file is opened with synchronous = NORMAL. */
  constructor(db: Database.Database, durable = false) {
    this.#db = db;
    // Open in WAL mode: the -wal file exists and keeps its inode while this connection is open
    // (SQLite truncates or rewrites it in place, and deletes it only when the last one closes).
    this.#wal = durable ? openSync(`${db.name}-wal`, 'r') : undefined;
    const st = (this.#st = prepare(db));
    const insertMany = db.transaction((jobs: readonly Job[]) => jobs.map((job) => insertRow(st, job)));
    this.#insertMany = (jobs) => insertMany.immediate(jobs);
    this.#runInTransaction = db.transaction((fn: () => unknown) => fn());
  }

  get open(): boolean {
    return this.#db.open;
  }

  /** Makes every committed transaction durable: fdatasync of the WAL on the libuv pool. */
  syncWal(): Promise<void> {
    const fd = this.#wal;
    if (fd === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  }

  /** Runs fn in one transaction (BEGIN IMMEDIATE … COMMIT; nested: a savepoint); rolled back if it throws. */
  transaction<T>(fn: () => T): T {
    return this.#runInTransaction.immediate(fn) as T;
  }

  /** The new row's seq, or null when the id or the slot path is taken. */
  insert(job: Job): number | null {
    return insertRow(this.#st, job);
  }

  /** One transaction; per job the seq or null, in input order. */
  insertMany(jobs: readonly Job[]): (number | null)[] {
    return this.#insertMany(jobs);
  }

  markDone(id: string, nowMs: number): boolean {
    return this.#st.done.run({ id, nowMs }).changes === 1;
  }

  markFailed(id: string, error: JobError, retryAtMs: number): boolean {
    return this.#st.fail.run({ id, error: JSON.stringify(copyError(error)), retryAtMs }).changes === 1;
  }

  markPostponed(id: string, availableAtMs: number): boolean {
    return this.#st.postpone.run({ id, availableAtMs }).changes === 1;
  }

  markDead(id: string, error: JobError): boolean {
    const e = copyError(error);
    return this.#st.bury.run({ id, error: JSON.stringify(e), atMs: e.atMs }).changes === 1;
  }

  get(id: string): JobRow | undefined {
    return this.#st.get.get(id);
  }

  getBySlot(slotPath: string): JobRow | undefined {
    return this.#st.getBySlot.get(slotPath);
  }

  /** Queued rows of `tier` after `after` (all when null), in line order. */
  queuedAfter(tier: PriorityTier, after: LineKey | null, limit: number): JobRow[] {
    return after === null
      ? this.#st.queuedFirst.all(tier, limit)
      : this.#st.queuedAfter.all(tier, after.availableAtMs, after.availableAtMs, after.seq, limit);
  }

  counts(): { state: JobState; priority: PriorityTier; n: number }[] {
    return this.#st.counts.all();
  }

  listDead(limit: number, offset: number): JobRow[] {
    return this.#st.listDead.all(limit, offset);
  }

  replayDead(target: DeadLetterTarget, nowMs: number): number {
    return (target === 'all' ? this.#st.replayAll.run(nowMs) : this.#st.replayOne.run(nowMs, target.id)).changes;
  }

  purgeDead(target: DeadLetterTarget): number {
    return (target === 'all' ? this.#st.purgeAll.run() : this.#st.purgeOne.run(target.id)).changes;
  }

  pruneDone(finishedBeforeMs: number): number {
    return this.#st.pruneDone.run(finishedBeforeMs).changes;
  }

  /** Rows of a read-only SELECT built by the backend (listJobsQuery). */
  select(sql: string, args: readonly unknown[]): JobRow[] {
    return this.#db.prepare<unknown[], JobRow>(sql).all(...args);
  }

  /** A file last written by SqliteQueueBackend may hold leases: they died with their process. */
  requeueLeases(): number {
    return this.#db.prepare("UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires_at_ms = NULL WHERE state = 'leased'").run().changes;
  }

  /** Scratch mode (not persistent): forget the previous run's jobs but keep its dead letters. */
  dropAllButDead(): number {
    return this.#db.prepare("DELETE FROM jobs WHERE state <> 'dead'").run().changes;
  }

  close(): void {
    if (!this.#db.open) return;
    if (this.#wal !== undefined) closeSync(this.#wal);
    this.#db.close();
  }
}

function insertRow(st: ReturnType<typeof prepare>, job: Job): number | null {
  // all(), not get(): get() stops after the RETURNING row and resets the statement, and a commit
  // that fails then (SQLITE_FULL on a full disk) is lost: the caller would believe the job
  // written while it is not. all() runs the statement to its end, so the failure is thrown.
  const [row] = st.insert.all(insertParams(job));
  return row === undefined ? null : row.seq;
}

function prepare(db: Database.Database) {
  return {
    insert: db.prepare<Record<string, unknown>, { seq: number }>(
      `INSERT INTO jobs (id, slot_path, size, priority, payload, enqueued_at_ms, available_at_ms, state)
       VALUES (@id, @slotPath, @size, @priority, @payload, @enqueuedAtMs, @availableAtMs, 'queued')
       ON CONFLICT DO NOTHING RETURNING seq`,
    ),
    get: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE id = ?'),
    getBySlot: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE slot_path = ?'),
    done: db.prepare(`UPDATE jobs SET state = 'done', finished_at_ms = @nowMs WHERE ${QUEUED}`),
    fail: db.prepare(`UPDATE jobs SET attempts = attempts + 1, ${APPEND_ERROR}, available_at_ms = @retryAtMs WHERE ${QUEUED}`),
    postpone: db.prepare(`UPDATE jobs SET available_at_ms = @availableAtMs WHERE ${QUEUED}`),
    bury: db.prepare(`UPDATE jobs SET state = 'dead', attempts = attempts + 1, ${APPEND_ERROR}, finished_at_ms = @atMs WHERE ${QUEUED}`),
    // Both use the jobs_claim index (state, priority, available_at_ms) and its implicit seq.
    queuedFirst: db.prepare<[PriorityTier, number], JobRow>(
      "SELECT * FROM jobs WHERE state = 'queued' AND priority = ? ORDER BY available_at_ms, seq LIMIT ?",
    ),
    queuedAfter: db.prepare<[PriorityTier, number, number, number, number], JobRow>(
      `SELECT * FROM jobs WHERE state = 'queued' AND priority = ?
         AND (available_at_ms > ? OR (available_at_ms = ? AND seq > ?))
       ORDER BY available_at_ms, seq LIMIT ?`,
    ),
    counts: db.prepare<[], { state: JobState; priority: PriorityTier; n: number }>(
      'SELECT state, priority, COUNT(*) AS n FROM jobs GROUP BY state, priority',
    ),
    listDead: db.prepare<[number, number], JobRow>("SELECT * FROM jobs WHERE state = 'dead' ORDER BY finished_at_ms, seq LIMIT ? OFFSET ?"),
    replayOne: db.prepare<[number, string]>(
      "UPDATE jobs SET state = 'queued', attempts = 0, available_at_ms = ?, finished_at_ms = NULL WHERE state = 'dead' AND id = ?",
    ),
    replayAll: db.prepare<[number]>("UPDATE jobs SET state = 'queued', attempts = 0, available_at_ms = ?, finished_at_ms = NULL WHERE state = 'dead'"),
    purgeOne: db.prepare<[string]>("DELETE FROM jobs WHERE state = 'dead' AND id = ?"),
    purgeAll: db.prepare("DELETE FROM jobs WHERE state = 'dead'"),
    pruneDone: db.prepare<[number]>("DELETE FROM jobs WHERE state = 'done' AND finished_at_ms < ?"),
  };
}
