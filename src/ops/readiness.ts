/**
 * /ready checks beyond the data directory (http/side-services.ts): the finalization queue
 * answers, intake is not in emergency mode, and Redis answers PING when `[redis] url` is set.
 * Reasons are safe to show: no paths, no URLs, no internals.
 */
import type { ReadinessCheck } from '../http/index.js';
import type { QueueOps } from './queue-ops.js';

export interface OpsReadinessOptions {
  readonly queue: Pick<QueueOps, 'counts' | 'pressure'>;
  /** `[redis] url`; '' when not configured (no check then). */
  readonly redisUrl: string;
  /** Default 2 s. */
  readonly redisTimeoutMs?: number;
}

export function opsReadinessChecks(options: OpsReadinessOptions): ReadinessCheck[] {
  const checks: ReadinessCheck[] = [
    {
      name: 'queue_usable',
      run: async () => {
        try {
          await options.queue.counts();
          return null;
        } catch {
          return 'the finalization queue does not answer';
        }
      },
    },
    {
      name: 'not_emergency',
      run: async () => (options.queue.pressure().level === 'emergency' ? 'the finalization queue is in emergency mode' : null),
    },
  ];
  if (options.redisUrl !== '') {
    checks.push({ name: 'redis_reachable', run: () => pingRedis(options.redisUrl, options.redisTimeoutMs ?? 2_000) });
  }
  return checks;
}

/** One connection per check: readiness probes are seconds apart, and a stale client cannot lie. */
async function pingRedis(url: string, timeoutMs: number): Promise<string | null> {
  const { Redis } = await import('ioredis'); // loaded only when Redis is configured: keeps every start fast
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => {}); // reported through the rejected connect/ping below
  try {
    await client.connect();
    const pong = await client.ping();
    return pong === 'PONG' ? null : 'Redis did not answer PING';
  } catch {
    return 'Redis is not reachable';
  } finally {
    client.disconnect();
  }
}
