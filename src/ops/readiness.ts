/**
 * /ready checks beyond the data directory (http/side-services.ts): the finalization queue
 * answers and intake is not in emergency mode. Reasons are safe to show: no paths, no URLs, no
 * internals. Redis (cluster mode) is not a check: an instance that cannot reach it keeps taking
 * uploads (degraded mode), so /ready reports it in its `cluster` field instead (src/cluster).
 */
import type { ReadinessCheck } from '../http/index.js';
import type { QueueOps } from './queue-ops.js';

export interface OpsReadinessOptions {
  readonly queue: Pick<QueueOps, 'counts' | 'pressure'>;
}

export function opsReadinessChecks(options: OpsReadinessOptions): ReadinessCheck[] {
  return [
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
}

/** /ready's `storage` section: the backend, whether it answers, and its finalization breaker. */
export interface StorageReadiness {
  readonly backend: 'file' | 's3';
  /** ok; unreachable: S3 does not answer (not ready); recovering: it answers again, the breaker is not closed yet. */
  readonly state: 'ok' | 'unreachable' | 'recovering';
  /** The storage breaker of finalization; 'disabled' with circuit_breaker_enabled = false. */
  readonly breaker: 'closed' | 'open' | 'half_open' | 'disabled';
  readonly reason?: string;
  /** S3: when it was last asked (ISO 8601). */
  readonly checkedAt?: string;
}

export interface StorageReadinessOptions {
  readonly backend: 'file' | 's3';
  /** S3 only: the probe (storage/s3-health.ts). */
  readonly s3?: { check(): Promise<{ reachable: boolean; reason?: string }>; readonly last: { reachable: boolean; reason?: string; checkedAtMs: number } | null };
  readonly breakers: () => ReadonlyArray<{ dependency: string; state: 'closed' | 'open' | 'half_open' }>;
}

/**
 * An unreachable S3 makes the instance unready: no upload or download can succeed. An open
 * storage breaker alone does not: uploads are still taken (jobs wait), and every instance shares
 * the bucket, so taking this one out of rotation would help no client; the section shows it.
 */
export function storageReadiness(o: StorageReadinessOptions): { check: ReadinessCheck | null; section: () => StorageReadiness } {
  const check: ReadinessCheck | null = o.s3
    ? {
        name: 'storage_reachable',
        run: async () => {
          const p = await o.s3!.check();
          return p.reachable ? null : (p.reason ?? 'S3 cannot be reached');
        },
      }
    : null;
  const section = (): StorageReadiness => {
    const breaker = o.breakers().find((b) => b.dependency === 'storage')?.state ?? 'disabled';
    const last = o.s3?.last ?? null;
    const reachable = last === null || last.reachable;
    const state = !reachable ? 'unreachable' : breaker === 'open' || breaker === 'half_open' ? 'recovering' : 'ok';
    const reason = !reachable
      ? last?.reason
      : state === 'recovering'
        ? 'the storage circuit breaker is not closed yet: finalization jobs wait'
        : undefined;
    return {
      backend: o.backend,
      state,
      breaker,
      ...(reason !== undefined && { reason }),
      ...(last !== null && { checkedAt: new Date(last.checkedAtMs).toISOString() }),
    };
  };
  return { check, section };
}
