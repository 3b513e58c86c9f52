/**
 * One owner per data directory (issue 9.7): the server takes this lock before it opens anything
 * there (secret, stores, queue), and offline commands take it for their whole run, so neither can
 * run beside the other or beside a second server.
 *
 * The lock is an exclusive POSIX record lock (fcntl) on `<data_dir>/server.lock`, taken through
 * SQLite (better-sqlite3, already a dependency): an empty database held in EXCLUSIVE locking mode.
 * The kernel drops it when the process ends, however it ends (kill -9 included), so there is no
 * stale state to judge. Rejected alternatives: a pid file created with O_EXCL needs a liveness
 * guess after a crash, and pids are reused (a container's server is often pid 1 on every start);
 * proper-lockfile is a directory whose mtime the holder must keep refreshing, so a blocked event
 * loop loses the lock and a killed server blocks restarts until the staleness period passed.
 *
 * The holder's pid comes from the kernel's lock table (/proc/locks, Linux); elsewhere it is
 * reported as unknown. The lock file path is a parameter: one instance, one path.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export const DATA_DIR_LOCK_FILE = 'server.lock';

export function dataDirLockPath(dataDir: string): string {
  return join(dataDir, DATA_DIR_LOCK_FILE);
}

export interface DataDirLock {
  readonly file: string;
  /** Gives the lock up; idempotent. */
  release(): void;
}

/** The lock is held by another process (or another connection of this one). */
export class DataDirLockedError extends Error {
  constructor(
    readonly file: string,
    /** Pid of the holder, null when the platform does not tell. */
    readonly holderPid: number | null,
  ) {
    super(`the data directory is in use by ${holderPid === null ? 'another process' : `pid ${holderPid}`} (a server or an offline command holds ${file})`);
    this.name = 'DataDirLockedError';
  }
}

/**
 * Takes the lock without waiting: throws DataDirLockedError when it is held. The directory must
 * exist; the lock file is created when missing.
 */
export function acquireDataDirLock(file: string): DataDirLock {
  const db = new Database(file, { timeout: 0 }); // timeout 0: a held lock answers SQLITE_BUSY at once
  try {
    db.pragma('journal_mode = OFF'); // nothing is ever written: no journal file beside it
    db.pragma('locking_mode = EXCLUSIVE');
    // In EXCLUSIVE locking mode the connection keeps the exclusive lock after the transaction ends.
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new DataDirLockedError(file, lockHolderPid(file));
    if ((err as { code?: string }).code === 'SQLITE_NOTADB') {
      throw new Error(`${file} is not a lock file this program wrote; remove it if no server runs on this data directory`, { cause: err });
    }
    throw err;
  }
  let held = true;
  return {
    file,
    release() {
      if (!held) return;
      held = false;
      db.close(); // closing the descriptor drops the record lock
    },
  };
}

/** Pid holding a POSIX lock on `file` according to /proc/locks, or null (no holder seen, not Linux). */
export function lockHolderPid(file: string): number | null {
  let table: string;
  let st;
  try {
    st = statSync(file);
    table = readFileSync('/proc/locks', 'utf8');
  } catch {
    return null;
  }
  // st_dev as glibc encodes it; /proc/locks prints major:minor in hex.
  const major = (st.dev >>> 8) & 0xfff;
  const minor = (st.dev & 0xff) | ((st.dev >>> 12) & 0xfff00);
  // "3: POSIX  ADVISORY  WRITE 1234 fe:00:2148318 1073741824 1073742335"; waiters are "3: -> POSIX …".
  for (const line of table.split('\n')) {
    const m = /^\d+:\s+(?:POSIX|OFDLCK|FLOCK)\s+\S+\s+\S+\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (!m || Number(m[4]) !== st.ino || parseInt(m[2]!, 16) !== major || parseInt(m[3]!, 16) !== minor) continue;
    if (Number(m[1]) > 0) return Number(m[1]); // -1: an open-file-description lock, which has no pid
  }
  return null;
}

/** True when some process holds the lock on `file` (a probe that takes and gives it back at once). */
export function dataDirLockHeld(file: string): boolean {
  try {
    acquireDataDirLock(file).release();
    return false;
  } catch (err) {
    if (err instanceof DataDirLockedError) return true;
    throw err;
  }
}
