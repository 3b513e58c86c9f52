/**
 * Chooses how an operator command reaches its data:
 *   --url URL      online, through that admin API
 *   --offline      offline on the data directory; refused while a server runs on it
 *   neither        online when <data_dir>/server.json names a running server (its admin API),
 *                  offline when none runs
 * The token is --token, else HFS_ADMIN_TOKEN / [admin] token from the config.
 * Cluster mode (`[redis] url`): the server lock file is in this instance's state directory, and
 * there is no offline mode: the shared queue is in Redis and other instances may be running, so
 * commands go through the admin API of a running instance (any one shows the whole cluster).
 */
import { isClusterMode, stateDirOf, type Config } from '../../config/index.js';
import { AdminClient } from './admin-client.js';
import { liveServerLock } from '../server-lock.js';
import { EXIT, OpsFailure, type OpsApi } from '../types.js';

export interface ConnectOptions {
  readonly url?: string;
  readonly token?: string;
  readonly offline?: boolean;
}

export async function connectOps(config: Config, options: ConnectOptions): Promise<OpsApi> {
  if (options.url !== undefined && options.offline) throw new OpsFailure('--url and --offline exclude each other', EXIT.usage);
  const dataDir = stateDirOf(config);
  if (options.offline && isClusterMode(config)) throw clusterOffline();
  if (options.offline) {
    const lock = await liveServerLock(dataDir);
    if (lock !== null) {
      throw new OpsFailure(`a server (pid ${lock.pid}) is running on ${dataDir}: stop it before using --offline, or leave --offline out to go through its admin API`);
    }
    return offline(config);
  }
  const token = options.token ?? config.admin.token;
  if (options.url !== undefined) return new AdminClient(checkedUrl(options.url), requireToken(token));
  const lock = await liveServerLock(dataDir);
  if (lock === null && isClusterMode(config)) throw clusterOffline();
  if (lock === null) return offline(config);
  if (lock.adminUrl === null) {
    throw new OpsFailure(`a server (pid ${lock.pid}) is running on ${dataDir} without an admin API: set [admin] token (HFS_ADMIN_TOKEN) and restart it, or stop it to work offline`);
  }
  return new AdminClient(lock.adminUrl, requireToken(token));
}

/** The data-directory implementation loads the stores and the queue: only when needed. */
async function offline(config: Config): Promise<OpsApi> {
  const { OfflineOps } = await import('./offline.js');
  return new OfflineOps(config);
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

function checkedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.protocol === 'http:' || u.protocol === 'https:') return url;
  } catch {
    // below
  }
  throw new OpsFailure(`--url: "${url}" is not an http(s) URL`, EXIT.usage);
}
