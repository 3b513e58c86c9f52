/**
 * Chooses how an operator command reaches its data:
 *   --url URL      online, through that admin API
 *   --offline      offline on the data directory; refused while a server runs on it
 *   neither        online when a server holds the data directory (its admin API, from
 *                  <data_dir>/server.json), offline when none runs
 * Offline commands hold the data-directory lock for their whole run, so no server starts beside
 * them. The token is --token, else HFS_ADMIN_TOKEN / [admin] token from the config.
 * Cluster mode (`[redis] url`): the lock and the server lock file are in this instance's state
 * directory, and there is no offline mode: the shared queue is in Redis and other instances may
 * be running, so commands go through the admin API of a running instance (any one shows the
 * whole cluster).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isClusterMode, stateDirOf, type Config } from '../../config/index.js';
import { DATA_DIR_ENTRIES } from '../../storage/data-dir.js';
import { AdminClient } from './admin-client.js';
import { acquireDataDirLock, dataDirLockPath, DataDirLockedError, type DataDirLock } from '../data-dir-lock.js';
import { readServerLock } from '../server-lock.js';
import { EXIT, OpsFailure, type OpsApi } from '../types.js';

export interface ConnectOptions {
  readonly url?: string;
  readonly token?: string;
  readonly offline?: boolean;
}

export async function connectOps(config: Config, options: ConnectOptions): Promise<OpsApi> {
  if (options.url !== undefined && options.offline) throw new OpsFailure('--url and --offline exclude each other', EXIT.usage);
  const dataDir = stateDirOf(config);
  const token = options.token ?? config.admin.token;
  if (options.url !== undefined) return new AdminClient(checkedUrl(options.url), requireToken(token));
  if (options.offline && isClusterMode(config)) throw clusterOffline();
  if (!isClusterMode(config)) refuseForeignDir(dataDir);
  const taken = takeLock(dataDir);
  if (taken.kind === 'free' && isClusterMode(config)) {
    taken.lock?.release();
    throw clusterOffline();
  }
  if (taken.kind === 'free') return offline(config, taken.lock);
  const pid = taken.holderPid ?? '?';
  if (options.offline) {
    throw new OpsFailure(`a server (pid ${pid}) is running on ${dataDir}: stop it before using --offline, or leave --offline out to go through its admin API`);
  }
  const running = await readServerLock(dataDir);
  if (running === null || (taken.holderPid !== null && running.pid !== taken.holderPid)) {
    throw new OpsFailure(`pid ${pid} holds ${dataDir} but announced no server (starting, or an offline command): retry shortly`);
  }
  if (running.adminUrl === null) {
    throw new OpsFailure(`a server (pid ${running.pid}) is running on ${dataDir} without an admin API: set [admin] token (HFS_ADMIN_TOKEN) and restart it, or stop it to work offline`);
  }
  return new AdminClient(running.adminUrl, requireToken(token));
}

type Taken = { kind: 'free'; lock: DataDirLock | null } | { kind: 'held'; holderPid: number | null };

/** The data-directory lock, or who holds it. No data directory: nothing to lock (offline reports it). */
function takeLock(dataDir: string): Taken {
  if (!existsSync(dataDir)) return { kind: 'free', lock: null };
  try {
    return { kind: 'free', lock: acquireDataDirLock(dataDirLockPath(dataDir)) };
  } catch (err) {
    if (err instanceof DataDirLockedError) return { kind: 'held', holderPid: err.holderPid };
    throw err;
  }
}

/**
 * A directory that exists but holds none of a data directory's entries is a mistyped path, or the
 * Go server's storage directory: the commands would report it empty and healthy, and the lock
 * (server.lock) would be left in it. Refused with the setting to fix.
 */
function refuseForeignDir(dataDir: string): void {
  if (!existsSync(dataDir) || DATA_DIR_ENTRIES.some((name) => existsSync(join(dataDir, name)))) return;
  throw new OpsFailure(`${dataDir} is not a data directory of this server (no tus/, files/ or queue/ in it; no server has run on it): check storage.data_dir (HFS_DATA_DIR)`);
}

/** The data-directory implementation loads the stores and the queue: only when needed. */
async function offline(config: Config, lock: DataDirLock | null): Promise<OpsApi> {
  const { OfflineOps } = await import('./offline.js');
  try {
    return new OfflineOps(config, lock);
  } catch (err) {
    lock?.release();
    throw err;
  }
}

function clusterOffline(): OpsFailure {
  return new OpsFailure(
    'cluster mode ([redis] url): no offline commands; run this on a host with a running instance, or pass --url of any instance\'s admin API',
    EXIT.usage,
  );
}

function requireToken(token: string): string {
  if (token === '') throw new OpsFailure('online commands need the admin token: --token or HFS_ADMIN_TOKEN', EXIT.usage);
  return token;
}

/**
 * The URL is never echoed: it may hold a password or a token. Paths are appended to it, so a
 * query or fragment would end up in the middle of every request's URL.
 */
function checkedUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new OpsFailure('--url: not an http(s) URL', EXIT.usage);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new OpsFailure('--url: not an http(s) URL', EXIT.usage);
  if (u.username !== '' || u.password !== '') throw new OpsFailure('--url: credentials in the URL are not used; give the admin token with HFS_ADMIN_TOKEN or --token', EXIT.usage);
  if (/[?#]/.test(url)) throw new OpsFailure('--url: the admin API base URL takes no query or fragment (e.g. http://127.0.0.1:8080/admin); give the token with HFS_ADMIN_TOKEN or --token', EXIT.usage);
  return url;
}
