/**
 * What the SQLite-based backends share: opening a queue file (WAL, durability, schema) and
 * reading its rows back as Job records.
 */
import { chmod, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { PriorityTier } from '../../contract/priority.js';
import { migrate } from './sqlite-schema.js';
import { JOB_STATES, type Job, type JobError, type JobState, type JsonObject, type ListJobsOptions } from '../../contract/types.js';

export interface JobRow {
  seq: number;
  id: string;
  slot_path: string;
  size: number;
  priority: PriorityTier;
  payload: string;
  attempts: number;
  errors: string;
  enqueued_at_ms: number;
  available_at_ms: number;
  state: JobState;
  lease_owner: string | null;
  lease_expires_at_ms: number | null;
  finished_at_ms: number | null;
}

/** Modes of the queue directory and files ([storage] file_mode and its directory mode). */
export interface QueueFileModes {
  readonly fileMode: number;
  readonly dirMode: number;
}
const DEFAULT_MODES: QueueFileModes = { fileMode: 0o640, dirMode: 0o750 };

/**
 * Opens (creating its directory) and migrates a queue file in WAL mode.
 * durable: synchronous = NORMAL, and the journal syncs the WAL itself (SqliteJournal.syncWal,
 * off the event loop) before it answers anyone whose write must survive power loss: a job is
 * admitted only once synced (group-commit.ts). NORMAL alone may lose the last commits on power
 * loss (never on a process crash); what is not synced that way is only a completion or a retry
 * time, and losing it runs an idempotent job once more. Checkpoints sync as before.
 * Not durable (a scratch file): synchronous = OFF, the OS writes when it likes.
 */
export async function openQueueDatabase(path: string, durable: boolean, modes: QueueFileModes = DEFAULT_MODES): Promise<Database.Database> {
  await mkdir(dirname(path), { recursive: true, mode: modes.dirMode });
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    // SQLite makes its files 0644 less the umask; they hold slot paths and upload ids.
    for (const file of [path, `${path}-wal`, `${path}-shm`]) await chmod(file, modes.fileMode).catch(() => {});
    db.pragma(durable ? 'synchronous = NORMAL' : 'synchronous = OFF');
    migrate(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

export function rowToJob(row: JobRow): Job {
  return {
    id: row.id,
    slotPath: row.slot_path,
    size: row.size,
    priority: row.priority,
    payload: JSON.parse(row.payload) as JsonObject,
    attempts: row.attempts,
    errors: JSON.parse(row.errors) as JobError[],
    enqueuedAtMs: row.enqueued_at_ms,
    availableAtMs: row.available_at_ms,
    state: row.state,
    ...(row.lease_owner !== null && { leaseOwner: row.lease_owner }),
    ...(row.lease_expires_at_ms !== null && { leaseExpiresAtMs: row.lease_expires_at_ms }),
    ...(row.finished_at_ms !== null && { finishedAtMs: row.finished_at_ms }),
  };
}

/**
 * SELECT for JobLister.listJobs. `stateClause` renders the state filter, so a backend that keeps
 * leases in memory can map 'queued' and 'leased' onto its rows. Rejects unknown states.
 */
export function listJobsQuery(
  options: ListJobsOptions,
  stateFilter?: (states: readonly JobState[]) => { clause: string; args: unknown[] },
): { sql: string; args: unknown[] } {
  const { states = ['queued', 'leased'], priority, limit = 100, offset = 0 } = options;
  for (const s of states) if (!JOB_STATES.includes(s)) throw new RangeError(`unknown job state ${String(s)}`);
  const filter = stateFilter?.(states) ?? { clause: `state IN (${states.map(() => '?').join(', ')})`, args: [...states] };
  const where = [`(${filter.clause})`];
  const args: unknown[] = [...filter.args];
  if (priority !== undefined) {
    where.push('priority = ?');
    args.push(priority);
  }
  const finished = states.every((s) => s === 'done' || s === 'dead');
  const order = finished ? 'finished_at_ms, seq' : 'available_at_ms, seq';
  return { sql: `SELECT * FROM jobs WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ? OFFSET ?`, args: [...args, limit, offset] };
}

/** Named parameters of the jobs-table insert, shared by every SQLite-backed queue. */
export function insertParams(job: Job) {
  return {
    id: job.id,
    slotPath: job.slotPath,
    size: job.size,
    priority: job.priority,
    payload: JSON.stringify(job.payload),
    enqueuedAtMs: job.enqueuedAtMs,
    availableAtMs: job.availableAtMs,
  };
}
