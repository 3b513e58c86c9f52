/**
 * ioredis clients for cluster mode, one kind per use, built from the parsed `[redis] url`:
 *   commands  locks, notifications, heartbeats: a call fails after one reconnect attempt and
 *             after `commandTimeoutMs`, so no request waits on a Redis that is gone
 *   queue     BullMQ: it requires maxRetriesPerRequest = null (its workers block); calls may
 *             wait for a reconnect, so the cluster queue bounds each call with its own timeout
 *   probe     the health check's PING: no offline queue, fails at once while disconnected
 * Every client reports its errors to `onError` (ioredis prints unhandled error events otherwise).
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from '../config/index.js';

export type ClientRole = 'commands' | 'queue' | 'probe';

export interface ClientOptions {
  readonly commandTimeoutMs: number;
  /** Shown in CLIENT LIST, e.g. "hfs:node-a:commands". */
  readonly name: string;
  readonly onError: (err: unknown) => void;
}

/** Reconnect quickly at first, then every second: Redis coming back is noticed within about a second. */
const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1_000);

function roleOptions(role: ClientRole, o: ClientOptions): RedisOptions {
  const common: RedisOptions = { connectionName: o.name, retryStrategy };
  switch (role) {
    case 'commands':
      return { ...common, maxRetriesPerRequest: 1, commandTimeout: o.commandTimeoutMs };
    case 'queue':
      return { ...common, maxRetriesPerRequest: null };
    case 'probe':
      return { ...common, maxRetriesPerRequest: 0, enableOfflineQueue: false, commandTimeout: o.commandTimeoutMs, connectTimeout: o.commandTimeoutMs };
  }
}

/**
 * A client of `role` for `target`; it starts connecting at once (build clients in start()). Redis Cluster clients are typed as Redis: every command this program sends has the
 * same signature on both, and keys of one script share a hash tag.
 */
export function createClient(target: RedisTarget, role: ClientRole, o: ClientOptions): Redis {
  const options = roleOptions(role, o);
  const auth = { ...(target.username !== undefined && { username: target.username }), ...(target.password !== undefined && { password: target.password }) };
  const tls = target.tls ? { tls: {} } : {};
  let client: Redis;
  switch (target.kind) {
    case 'standalone':
      client = new Redis(target.url, options);
      break;
    case 'sentinel':
      client = new Redis({ ...options, ...auth, ...tls, sentinels: target.sentinels.map((n) => ({ ...n })), name: target.masterName, db: target.db });
      break;
    case 'cluster': {
      const { retryStrategy: _r, ...redisOptions } = options;
      client = new Cluster(target.nodes.map((n) => ({ ...n })), {
        clusterRetryStrategy: retryStrategy,
        enableOfflineQueue: options.enableOfflineQueue ?? true,
        redisOptions: { ...redisOptions, ...auth, ...tls },
      }) as unknown as Redis;
      break;
    }
  }
  client.on('error', o.onError);
  return client;
}

/** Closes a client without waiting for a Redis that may be gone. */
export async function closeClient(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  await Promise.race([client.quit().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
  client.disconnect();
}
