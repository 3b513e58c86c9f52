import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextRetry, retryDelayMs } from '../../src/queue/index.js';

const opts = { baseMs: 1000, maxMs: 60_000 };
const fixed = (r: number) => () => r;

describe('retryDelayMs (exponential, full jitter)', () => {
  const cases: [attempt: number, random: number, delayMs: number][] = [
    [1, 0, 0],
    [1, 0.5, 500],
    [1, 0.999, 999],
    [2, 0.5, 1000],
    [3, 0.5, 2000],
    [6, 0.5, 16_000],
    [7, 0.999, 59_940], // ceiling 64 s is capped to maxMs
    [7, 0.5, 30_000],
    [2000, 0.999, 59_940], // 2^1999 overflows to Infinity and is still capped
  ];
  for (const [attempt, random, delay] of cases) {
    it(`attempt ${attempt}, random ${random} -> ${delay} ms`, () => {
      assert.equal(retryDelayMs(attempt, opts, fixed(random)), delay);
    });
  }

  it('never exceeds maxMs, and differs with the random source', () => {
    const seen = new Set<number>();
    let seed = 42;
    const lcg = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (let attempt = 1; attempt <= 40; attempt++) {
      const d = retryDelayMs(attempt, opts, lcg);
      assert.ok(d >= 0 && d <= opts.maxMs && Number.isInteger(d), `attempt ${attempt}: ${d}`);
      seen.add(d);
    }
    assert.ok(seen.size > 30, 'jitter spreads retries');
  });

  const bad: [string, () => number][] = [
    ['attempt 0', () => retryDelayMs(0, opts, fixed(0.5))],
    ['fractional attempt', () => retryDelayMs(1.5, opts, fixed(0.5))],
    ['negative base', () => retryDelayMs(1, { baseMs: -1, maxMs: 10 }, fixed(0.5))],
    ['random() = 1', () => retryDelayMs(1, opts, fixed(1))],
  ];
  for (const [name, call] of bad) it(`rejects ${name}`, () => assert.throws(call, RangeError));
});

describe('nextRetry', () => {
  const policy = { ...opts, maxRetries: 5 };
  const cases: [failures: number, expected: ReturnType<typeof nextRetry>][] = [
    [1, { kind: 'retry', delayMs: 500 }],
    [5, { kind: 'retry', delayMs: 8000 }],
    [6, { kind: 'give_up' }],
    [60, { kind: 'give_up' }],
  ];
  for (const [failures, expected] of cases) {
    it(`after ${failures} failures: ${expected.kind}`, () => {
      assert.deepEqual(nextRetry(failures, policy, fixed(0.5)), expected);
    });
  }

  it('gives up at once with maxRetries = 0', () => {
    assert.deepEqual(nextRetry(1, { ...opts, maxRetries: 0 }, fixed(0.5)), { kind: 'give_up' });
  });
});
