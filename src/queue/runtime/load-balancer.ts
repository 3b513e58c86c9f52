/**
 * load_balancing_strategy: which idle worker takes the next job. Pure; randomness is injected.
 * Failed workers are passed over while a healthy or slow one is idle, and slow ones while a
 * healthy one is, whatever the strategy.
 */
import type { RandomSource } from './backoff.js';
import type { WorkerStatus } from './worker-health.js';

export type LoadBalancingStrategy = 'round_robin' | 'least_loaded' | 'random';

export interface WorkerCandidate {
  readonly id: number;
  readonly status: WorkerStatus;
  /** Sum of recent job durations. */
  readonly recentBusyMs: number;
  readonly processed: number;
}

const STATUS_RANK: Readonly<Record<WorkerStatus, number>> = { healthy: 0, slow: 1, failed: 2 };

/**
 * round_robin: the first idle worker after `lastChosenId` in id order, wrapping.
 * least_loaded: the idle worker with the least recent busy time, then fewest processed, then lowest id.
 * random: uniform among the idle ones.
 */
export function chooseWorker<T extends WorkerCandidate>(
  idle: readonly T[],
  strategy: LoadBalancingStrategy,
  lastChosenId: number,
  random: RandomSource,
): T | null {
  if (idle.length === 0) return null;
  const bestRank = Math.min(...idle.map((w) => STATUS_RANK[w.status]));
  const pool = idle.filter((w) => STATUS_RANK[w.status] === bestRank);
  switch (strategy) {
    case 'round_robin': {
      const byId = [...pool].sort((a, b) => a.id - b.id);
      return byId.find((w) => w.id > lastChosenId) ?? byId[0]!;
    }
    case 'least_loaded':
      return [...pool].sort((a, b) => a.recentBusyMs - b.recentBusyMs || a.processed - b.processed || a.id - b.id)[0]!;
    case 'random': {
      const r = random();
      if (!(r >= 0 && r < 1)) throw new RangeError(`random() must return [0, 1), got ${r}`);
      return pool[Math.floor(r * pool.length)]!;
    }
  }
}
