/**
 * The running server's lock file, `<data_dir>/server.json`: written once the server listens,
 * removed when it stops. Offline commands read it to refuse touching a data directory (above
 * all the SQLite queue, whose open requeues every lease) while a server owns it, and online
 * commands read it to find the admin API without flags.
 *
 * A kill -9 leaves the file behind; it then names a dead process and counts as absent.
 */
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const SERVER_LOCK_FILE = 'server.json';

export interface ServerLock {
  readonly pid: number;
  readonly startedAtMs: number;
  /** The main listener, e.g. http://127.0.0.1:8080. */
  readonly baseUrl: string;
  /** Base URL of the admin API (".../admin" on the main listener), or null when the API is off. */
  readonly adminUrl: string | null;
}

export function serverLockPath(dataDir: string): string {
  return join(dataDir, SERVER_LOCK_FILE);
}

/** Writes the lock atomically (temp file + rename). */
export async function writeServerLock(dataDir: string, lock: ServerLock): Promise<void> {
  const file = serverLockPath(dataDir);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(lock)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

/** Removes the lock if it is this process's. */
export async function removeServerLock(dataDir: string, pid = process.pid): Promise<void> {
  const lock = await readServerLock(dataDir);
  if (lock?.pid === pid) await unlink(serverLockPath(dataDir)).catch(() => {});
}

/** The lock as written, or null when there is none or it is unreadable. */
export async function readServerLock(dataDir: string): Promise<ServerLock | null> {
  let text: string;
  try {
    text = await readFile(serverLockPath(dataDir), 'utf8');
  } catch {
    return null;
  }
  try {
    const v = JSON.parse(text) as Partial<ServerLock>;
    if (typeof v.pid !== 'number' || typeof v.baseUrl !== 'string') return null;
    return { pid: v.pid, startedAtMs: Number(v.startedAtMs ?? 0), baseUrl: v.baseUrl, adminUrl: typeof v.adminUrl === 'string' ? v.adminUrl : null };
  } catch {
    return null;
  }
}

/** The lock of a server that is still running, or null (no lock, or its process is gone). */
export async function liveServerLock(dataDir: string): Promise<ServerLock | null> {
  const lock = await readServerLock(dataDir);
  return lock !== null && (await processAlive(lock.pid)) ? lock : null;
}

/**
 * True when `pid` is a live process that looks like this program. After a kill -9 and a reboot
 * (or in a fresh container) the pid may belong to something else: on Linux its command line is
 * checked too.
 */
async function processAlive(pid: number): Promise<boolean> {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return /cli\.js|hmac-file-server|node/.test(cmdline);
  } catch {
    return true; // no /proc: trust kill(0)
  }
}
