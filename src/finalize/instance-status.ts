/**
 * One instance of a cluster as its heartbeat shows it: written by cluster/instance-registry.ts,
 * shown by the admin API and CLI (ops/types.ts names it InstanceStatusView). Defined here, below
 * both, because `cluster` and `ops` do not import each other.
 */
import type { WorkerView } from '../queue/index.js';
import type { BreakerStatus } from './queue-admin.js';

export interface InstanceStatus {
  readonly id: string;
  /** 'clustered': on Redis; 'degraded': Redis was unreachable from it when it last reported. */
  readonly mode: 'clustered' | 'degraded';
  readonly host: string;
  readonly pid: number;
  readonly baseUrl: string | null;
  readonly startedAtMs: number;
  readonly seenAtMs: number;
  readonly workers: readonly WorkerView[];
  readonly breakers: readonly BreakerStatus[];
  /** Jobs in its local journal (admitted while Redis was unreachable): waiting to move to Redis, or running there. */
  readonly journal: { readonly queued: number; readonly leased: number; readonly dead: number };
}
