/**
 * Queue priority: tiers from size classes, `priority_levels`, and aging.
 * Pure: time comes in as `nowMs`.
 */
import { sizeClassOf, type SizeClass } from '../../transfer/index.js';

export type PriorityTier = 'high' | 'medium' | 'low';
export type PriorityLevels = 1 | 2 | 3;

/** Best first; a lower rank is served earlier. */
export const PRIORITY_TIERS: readonly PriorityTier[] = ['high', 'medium', 'low'];
const RANK: Readonly<Record<PriorityTier, number>> = { high: 0, medium: 1, low: 2 };

export function tierRank(tier: PriorityTier): number {
  return RANK[tier];
}

export function isPriorityTier(value: unknown): value is PriorityTier {
  return value === 'high' || value === 'medium' || value === 'low';
}

/**
 * With 3 levels: small=high, medium=medium, large and huge=low.
 * With 2 (high+low) only small files keep the fast lane: a medium file is bulk work too.
 * With 1 every job is 'medium', the neutral tier, so no metric label claims a preference.
 */
const TIER_BY_LEVELS: Readonly<Record<PriorityLevels, Readonly<Record<SizeClass, PriorityTier>>>> = {
  3: { small: 'high', medium: 'medium', large: 'low', huge: 'low' },
  2: { small: 'high', medium: 'low', large: 'low', huge: 'low' },
  1: { small: 'medium', medium: 'medium', large: 'medium', huge: 'medium' },
};

export function tiersInUse(levels: PriorityLevels): readonly PriorityTier[] {
  return PRIORITY_TIERS.filter((t) => Object.values(TIER_BY_LEVELS[levels]).includes(t));
}

export function tierForSize(sizeBytes: number, levels: PriorityLevels = 3): PriorityTier {
  const table = TIER_BY_LEVELS[levels];
  if (table === undefined) throw new RangeError(`priority_levels must be 1, 2 or 3, got ${levels}`);
  return table[sizeClassOf(sizeBytes)];
}

/** `null` disables aging (priority_aging_enabled = false). */
export interface AgingOptions {
  readonly agingThresholdMs: number | null;
}

export const DEFAULT_AGING_THRESHOLD_MS = 60_000;

/**
 * Rank a job is served at: one tier higher per whole aging threshold it has waited, never above
 * 'high'. Waiting counts from `availableAtMs` (when it became claimable), so a job sitting out a
 * retry backoff does not bank priority for it.
 */
export function effectiveRank(
  tier: PriorityTier,
  availableAtMs: number,
  nowMs: number,
  aging: AgingOptions,
): number {
  const base = RANK[tier];
  const threshold = aging.agingThresholdMs;
  const waitedMs = nowMs - availableAtMs;
  if (threshold === null || !(threshold > 0) || waitedMs < threshold) return base;
  return Math.max(0, base - Math.floor(waitedMs / threshold));
}

/** The oldest claimable job of one tier; `seq` breaks ties between equal times (insertion order). */
export interface QueueHead {
  readonly tier: PriorityTier;
  readonly availableAtMs: number;
  readonly seq: number;
}

/**
 * Order: effective rank, then longest waiting, then insertion order. Within one tier an older job
 * never ranks below a newer one, so comparing per-tier heads finds the global best and FIFO holds
 * within a tier. Heads not yet available at `nowMs` are skipped.
 */
export function pickNext<T extends QueueHead>(
  heads: readonly T[],
  nowMs: number,
  aging: AgingOptions,
): T | null {
  let best: T | null = null;
  let bestRank = Infinity;
  for (const head of heads) {
    if (head.availableAtMs > nowMs) continue;
    const rank = effectiveRank(head.tier, head.availableAtMs, nowMs, aging);
    if (
      best === null ||
      rank < bestRank ||
      (rank === bestRank &&
        (head.availableAtMs < best.availableAtMs ||
          (head.availableAtMs === best.availableAtMs && head.seq < best.seq)))
    ) {
      best = head;
      bestRank = rank;
    }
  }
  return best;
}
