import { PRIORITY_TIERS, type PriorityTier } from './priority.js';
import { JOB_STATES, type JobState, type QueueCounts } from './types.js';

export function emptyCounts(): QueueCounts {
  const counts = {} as QueueCounts;
  for (const state of JOB_STATES) {
    counts[state] = Object.fromEntries(PRIORITY_TIERS.map((t) => [t, 0])) as Record<PriorityTier, number>;
  }
  return counts;
}

/** All jobs in `state` across tiers, e.g. queued + leased for backpressure. */
export function totalInState(counts: QueueCounts, state: JobState): number {
  return PRIORITY_TIERS.reduce((sum, tier) => sum + counts[state][tier], 0);
}
