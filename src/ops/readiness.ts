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
