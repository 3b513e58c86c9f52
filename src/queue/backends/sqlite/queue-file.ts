/**
 * Read-only access to a queue journal file (the jobs table of sqlite-schema.ts) for
 * the offline commands: jobs and counts without opening a backend, so a look changes nothing,
 * not even lease recovery. Changes go through the queue backend; a running server is asked
 * through its admin API.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { emptyCounts } from '../../contract/counts.js';
import { PRIORITY_TIERS, type PriorityTier } from '../../contract/priority.js';
import { JOB_STATES, type Job, type JobState, type ListJobsOptions, type QueueCounts } from '../../contract/types.js';
import { rowToJob, type JobRow } from './sqlite-db.js'; // one row mapping for the server and offline tools

/** The schema version these statements are written for (sqlite-schema.ts). */
const KNOWN_SCHEMA = 2;


export class QueueFile {
  readonly #db: Database.Database;

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Opens `path` read-only, or null when there is no queue file. Throws when its schema is unknown. */
  static open(path: string): QueueFile | null {
    if (!existsSync(path)) return null;
    const db = new Database(path, { readonly: true, fileMustExist: true });
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version !== KNOWN_SCHEMA) {
      db.close();
      throw new Error(`queue database schema v${version} is not the v${KNOWN_SCHEMA} this tool reads`);
    }
    return new QueueFile(db);
  }

  listJobs(query: ListJobsOptions): Job[] {
    const states = query.states?.length ? query.states : (['queued', 'leased'] as const);
    for (const s of states) if (!JOB_STATES.includes(s)) throw new RangeError(`unknown state ${s}`);
    const where = [`state IN (${states.map(() => '?').join(', ')})`];
    const args: Array<string | number> = [...states];
    if (query.priority !== undefined) {
      where.push('priority = ?');
      args.push(query.priority);
    }
    // Live jobs in claim order; finished ones newest last, like listDead.
    const order = states.every((s) => s === 'done' || s === 'dead') ? 'finished_at_ms, seq' : 'available_at_ms, seq';
    const sql = `SELECT * FROM jobs WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ? OFFSET ?`;
    const rows = this.#db.prepare<Array<string | number>, JobRow>(sql).all(...args, query.limit ?? 100, query.offset ?? 0);
    return rows.map(rowToJob);
  }

  get(id: string): Job | null {
    const row = this.#db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE id = ?').get(id);
    return row === undefined ? null : rowToJob(row);
  }

  getBySlot(slotPath: string): Job | null {
    const row = this.#db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE slot_path = ?').get(slotPath);
    return row === undefined ? null : rowToJob(row);
  }

  counts(): QueueCounts {
    const counts = emptyCounts();
    const rows = this.#db.prepare<[], { state: JobState; priority: PriorityTier; n: number }>('SELECT state, priority, COUNT(*) AS n FROM jobs GROUP BY state, priority').all();
    for (const { state, priority, n } of rows) if (PRIORITY_TIERS.includes(priority)) counts[state][priority] = n;
    return counts;
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
