import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  intakeDelayMs,
  pressureLevel,
  queueFill,
  retryAfterSeconds,
  type IntakeDelayOptions,
  type PressureLevel,
} from '../../src/finalize/index.js';

const T = { backpressure: 0.8, emergency: 0.95 } as const;

describe('pressureLevel', () => {
  const table: [fill: number, previous: PressureLevel, expected: PressureLevel][] = [
    [0, 'normal', 'normal'],
    [0.79, 'normal', 'normal'],
    [0.8, 'normal', 'backpressure'],
    [0.94, 'normal', 'backpressure'],
    [0.95, 'normal', 'emergency'],
    [1.7, 'normal', 'emergency'], // spillover lets fill pass 1
    // The clear band (0.05) keeps a level until fill drops well below its threshold.
    [0.76, 'backpressure', 'backpressure'],
    [0.75, 'backpressure', 'backpressure'],
    [0.749, 'backpressure', 'normal'],
    [0.91, 'emergency', 'emergency'],
    [0.899, 'emergency', 'backpressure'],
    [0.5, 'emergency', 'normal'],
    [0.76, 'normal', 'normal'], // the band only holds, it never enters
  ];
  for (const [fill, previous, expected] of table) {
    it(`${previous} at ${fill} -> ${expected}`, () => assert.equal(pressureLevel(fill, T, previous), expected));
  }

  it('clearBand 0 clears right at the threshold', () => {
    assert.equal(pressureLevel(0.7999, { ...T, clearBand: 0 }, 'backpressure'), 'normal');
  });

  it('queueFill is pending / capacity and refuses a zero capacity', () => {
    assert.equal(queueFill(800, 1000), 0.8);
    assert.equal(queueFill(-3, 10), 0);
    assert.throws(() => queueFill(1, 0), RangeError);
  });
});

describe('intakeDelayMs', () => {
  const o: IntakeDelayOptions = { ...T, minDelayMs: 200, maxDelayMs: 5000, rampMs: 60_000 };
  const start = 1_000_000;

  it('is 0 below the backpressure threshold', () => assert.equal(intakeDelayMs(0.79, o, start, start), 0));

  it('starts at the minimum at the threshold, at the start of an episode', () => {
    assert.equal(intakeDelayMs(0.8, o, start, start), 200);
  });

  it('grows with the fill and with the episode age, and never passes the maximum', () => {
    const byFill = [0.8, 0.85, 0.9, 0.95, 2].map((f) => intakeDelayMs(f, o, start, start));
    assert.deepEqual(byFill, [200, 1800, 3400, 5000, 5000]);
    const byAge = [0, 15_000, 30_000, 60_000, 600_000].map((dt) => intakeDelayMs(0.8, o, start, start + dt));
    assert.deepEqual(byAge, [200, 1400, 2600, 5000, 5000]);
    for (let f = 0.8; f <= 1.2; f += 0.01) {
      for (let dt = 0; dt <= 120_000; dt += 7_000) {
        const d = intakeDelayMs(f, o, start, start + dt);
        assert.ok(d >= 200 && d <= 5000, `${f} ${dt}: ${d}`);
        assert.ok(intakeDelayMs(f + 0.01, o, start, start + dt) >= d, 'monotonic in fill');
        assert.ok(intakeDelayMs(f, o, start, start + dt + 1000) >= d, 'monotonic in time');
      }
    }
  });

  it('equal thresholds go straight to the maximum', () => {
    assert.equal(intakeDelayMs(0.9, { ...o, backpressure: 0.9, emergency: 0.9 }, start, start), 5000);
  });
});

describe('retryAfterSeconds', () => {
  it('estimates drain time from the average job time and worker count, clamped', () => {
    assert.equal(retryAfterSeconds(10, 1000, 4), 3); // 2.5 s -> 3
    assert.equal(retryAfterSeconds(1, 10, 4), 1);
    assert.equal(retryAfterSeconds(10_000, 5000, 1), 60);
    assert.equal(retryAfterSeconds(10_000, 5000, 1, { maxS: 30 }), 30);
    assert.equal(retryAfterSeconds(10, null, 4), 5, 'no data yet: the fallback');
  });
});
