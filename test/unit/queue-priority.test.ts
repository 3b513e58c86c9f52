import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MB } from '../../src/transfer/index.js';
import {
  effectiveRank,
  pickNext,
  tierForSize,
  tiersInUse,
  type PriorityLevels,
  type PriorityTier,
  type QueueHead,
} from '../../src/queue/index.js';

const SIZES = { small: 1 * MB, medium: 50 * MB, large: 500 * MB, huge: 5000 * MB } as const;

describe('tierForSize', () => {
  const table: [levels: PriorityLevels, small: PriorityTier, medium: PriorityTier, large: PriorityTier, huge: PriorityTier][] = [
    [3, 'high', 'medium', 'low', 'low'],
    [2, 'high', 'low', 'low', 'low'],
    [1, 'medium', 'medium', 'medium', 'medium'],
  ];
  for (const [levels, ...expected] of table) {
    it(`priority_levels = ${levels}`, () => {
      const got = [SIZES.small, SIZES.medium, SIZES.large, SIZES.huge].map((s) => tierForSize(s, levels));
      assert.deepEqual(got, expected);
    });
  }

  it('defaults to 3 levels', () => assert.equal(tierForSize(SIZES.medium), 'medium'));

  it('lists the tiers each level count uses, best first', () => {
    assert.deepEqual(tiersInUse(3), ['high', 'medium', 'low']);
    assert.deepEqual(tiersInUse(2), ['high', 'low']);
    assert.deepEqual(tiersInUse(1), ['medium']);
  });

  it('rejects other level counts', () => assert.throws(() => tierForSize(1, 4 as PriorityLevels), RangeError));
});

describe('effectiveRank (aging)', () => {
  const T = 1000;
  const cases: [tier: PriorityTier, waitedMs: number, thresholdMs: number | null, rank: number][] = [
    ['low', 0, T, 2],
    ['low', T - 1, T, 2],
    ['low', T, T, 1],
    ['low', 2 * T - 1, T, 1],
    ['low', 2 * T, T, 0],
    ['low', 50 * T, T, 0], // never above high
    ['medium', T, T, 0],
    ['high', 10 * T, T, 0],
    ['low', 50 * T, null, 2], // aging disabled
    ['low', 50 * T, 0, 2], // a zero threshold would promote everything at once: treated as off
    ['low', -5 * T, T, 2], // not yet available
  ];
  for (const [tier, waited, threshold, rank] of cases) {
    it(`${tier} after ${waited} ms with threshold ${threshold} ranks ${rank}`, () => {
      assert.equal(effectiveRank(tier, 10_000, 10_000 + waited, { agingThresholdMs: threshold }), rank);
    });
  }
});

describe('pickNext', () => {
  const T = 1000;
  const aging = { agingThresholdMs: T };
  const h = (tier: PriorityTier, availableAtMs: number, seq: number): QueueHead => ({ tier, availableAtMs, seq });
  const cases: { name: string; heads: QueueHead[]; nowMs: number; pick: number | null; agingOff?: boolean }[] = [
    { name: 'nothing to pick', heads: [], nowMs: 0, pick: null },
    { name: 'higher tier first', heads: [h('low', 0, 1), h('high', 5, 2), h('medium', 0, 3)], nowMs: 10, pick: 1 },
    { name: 'medium before low', heads: [h('low', 0, 1), h('medium', 5, 2)], nowMs: 10, pick: 1 },
    { name: 'older first within equal rank', heads: [h('high', 7, 1), h('high', 3, 2)], nowMs: 10, pick: 1 },
    { name: 'seq breaks equal times', heads: [h('high', 3, 9), h('high', 3, 4)], nowMs: 10, pick: 1 },
    { name: 'aged low beats fresh medium', heads: [h('medium', T, 1), h('low', 0, 2)], nowMs: T, pick: 1 },
    { name: 'aged low still loses to fresh high after one threshold', heads: [h('high', T, 1), h('low', 0, 2)], nowMs: T, pick: 0 },
    { name: 'twice-aged low beats fresh high by age', heads: [h('high', 2 * T, 1), h('low', 0, 2)], nowMs: 2 * T, pick: 1 },
    { name: 'aging off keeps strict tiers', heads: [h('high', 2 * T, 1), h('low', 0, 2)], nowMs: 2 * T, pick: 0, agingOff: true },
    { name: 'skips heads not yet available', heads: [h('high', 11, 1), h('low', 10, 2)], nowMs: 10, pick: 1 },
    { name: 'none available', heads: [h('high', 11, 1)], nowMs: 10, pick: null },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const picked = pickNext(c.heads, c.nowMs, c.agingOff ? { agingThresholdMs: null } : aging);
      assert.equal(picked, c.pick === null ? null : c.heads[c.pick]);
    });
  }
});
