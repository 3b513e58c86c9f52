/**
 * The running server's record, `<data_dir>/server.json`: written once the server listens,
 * removed when it stops. Online commands read it to find the admin API without flags. Who owns
 * the data directory is decided by the lock in data-dir-lock.ts, not by this file.
 *
 * A kill -9 leaves the file behind; the data-directory lock (data-dir-lock.ts) is what tells
 * whether its server still runs.
 */
import { existsSync } from 'node:fs';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dataDirLockHeld, dataDirLockPath, lockHolderPid } from './data-dir-lock.js';

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

/**
 * The record of a server that is still running, or null. Running means: some process holds the
 * data-directory lock (data-dir-lock.ts, which the kernel drops when its holder dies), and the
 * record names that process when the platform tells the holder.
 */
export async function liveServerLock(dataDir: string): Promise<ServerLock | null> {
  const lock = await readServerLock(dataDir);
  if (lock === null) return null;
  const lockFile = dataDirLockPath(dataDir);
  if (!existsSync(lockFile) || !dataDirLockHeld(lockFile)) return null;
  const holder = lockHolderPid(lockFile);
  return holder === null || holder === lock.pid ? lock : null;
}
