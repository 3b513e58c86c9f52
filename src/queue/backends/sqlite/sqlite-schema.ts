/**
 * SQLite schema of the finalization queue, versioned with PRAGMA user_version.
 */
import type Database from 'better-sqlite3';

export const SCHEMA_VERSION = 2;

// `seq` is the rowid: every index ends in it implicitly, which gives FIFO among equal times.
const SCHEMA_V1 = `
CREATE TABLE jobs (
  seq                 INTEGER PRIMARY KEY,
  id                  TEXT    NOT NULL UNIQUE,
  slot_path           TEXT    NOT NULL,
  size                INTEGER NOT NULL CHECK (size >= 0),
  priority            TEXT    NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
  payload             TEXT    NOT NULL,
  attempts            INTEGER NOT NULL DEFAULT 0,
  errors              TEXT    NOT NULL DEFAULT '[]',
  enqueued_at_ms      INTEGER NOT NULL,
  available_at_ms     INTEGER NOT NULL,
  state               TEXT    NOT NULL CHECK (state IN ('queued', 'leased', 'done', 'dead')),
  lease_owner         TEXT,
  lease_expires_at_ms INTEGER,
  finished_at_ms      INTEGER
) STRICT;
-- claimNext reads one head per tier: state = 'queued' AND priority = ? ORDER BY available_at_ms, seq.
-- counts() groups by (state, priority) from the same index without touching the table.
-- Lease sweeps find state = 'leased' through either index; leases are few (one per worker).
CREATE INDEX jobs_claim ON jobs (state, priority, available_at_ms);
-- listDead (state = 'dead' ORDER BY finished_at_ms, seq) and pruneDone (state = 'done').
CREATE INDEX jobs_finished ON jobs (state, finished_at_ms);
`;

// v2: one job per slot path, in every state (QueueBackend.enqueue), so a PUT and a tus upload
// of the same slot can never both be admitted. Also serves getBySlot.
const SCHEMA_V2 = `
CREATE UNIQUE INDEX jobs_slot ON jobs (slot_path);
`;

/** Each step takes the file from version i to i + 1. */
const STEPS: readonly string[] = [SCHEMA_V1, SCHEMA_V2];

/** Creates or upgrades the schema step by step; refuses a file written by a newer version. */
export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === SCHEMA_VERSION) return;
  if (version > SCHEMA_VERSION) {
    throw new Error(`queue database schema v${version} is newer than this server's v${SCHEMA_VERSION}`);
  }
  db.transaction(() => {
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(STEPS[v]!);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
