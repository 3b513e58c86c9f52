import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CircuitBreaker,
  type BreakerState,
  type BreakerTransition,
  type CircuitBreakerOptions,
} from '../../src/finalize/index.js';

type Step =
  | readonly ['ok' | 'fail', atMs: number]
  | readonly ['can', atMs: number, expected: boolean]
  | readonly ['state', atMs: number, expected: BreakerState];

/** Consecutive-failure rule only: the rate rule needs more samples than these scripts make. */
const CONSECUTIVE: CircuitBreakerOptions = { failureThreshold: 3, minimumSamples: 100, coolDownMs: 1000 };

const scenarios: { name: string; options: CircuitBreakerOptions; steps: Step[]; transitions: string[] }[] = [
  {
    name: 'opens after N consecutive failures',
    options: CONSECUTIVE,
    steps: [['fail', 0], ['fail', 1], ['state', 1, 'closed'], ['can', 1, true], ['fail', 2], ['state', 2, 'open'], ['can', 3, false]],
    transitions: ['closed->open:consecutive_failures'],
  },
  {
    name: 'a success resets the consecutive count',
    options: CONSECUTIVE,
    steps: [['fail', 0], ['fail', 1], ['ok', 2], ['fail', 3], ['fail', 4], ['state', 4, 'closed']],
    transitions: [],
  },
  {
    name: 'opens on the failure rate once the minimum sample count is reached',
    options: { failureThreshold: 100, failureRateThreshold: 0.5, minimumSamples: 4 },
    steps: [['ok', 0], ['fail', 1], ['ok', 2], ['state', 2, 'closed'], ['fail', 3], ['state', 3, 'open']],
    transitions: ['closed->open:failure_rate'],
  },
  {
    name: 'stays closed below the failure rate',
    options: { failureThreshold: 100, failureRateThreshold: 0.5, minimumSamples: 4 },
    steps: [['ok', 0], ['fail', 1], ['ok', 2], ['ok', 3], ['fail', 4], ['state', 4, 'closed']],
    transitions: [],
  },
  {
    name: 'outcomes older than the window no longer count',
    options: { failureThreshold: 100, failureRateThreshold: 0.6, minimumSamples: 3, rateWindowMs: 1000 },
    // Without forgetting t=0 and t=1 this is 3 failures in 5 (0.6) and would open.
    steps: [['fail', 0], ['fail', 1], ['ok', 1500], ['ok', 1600], ['fail', 1700], ['state', 1700, 'closed']],
    transitions: [],
  },
  {
    name: 'half_open after the cool-down hands out one probe; success closes',
    options: { ...CONSECUTIVE, failureThreshold: 1 },
    steps: [
      ['fail', 0], ['can', 999, false], ['state', 999, 'open'],
      ['can', 1000, true], ['state', 1000, 'half_open'], ['can', 1000, false], ['can', 1050, false],
      ['ok', 1100], ['state', 1100, 'closed'], ['can', 1100, true],
    ],
    transitions: ['closed->open:consecutive_failures', 'open->half_open:cool_down_elapsed', 'half_open->closed:probe_succeeded'],
  },
  {
    name: 'a failed probe reopens and restarts the cool-down',
    options: { ...CONSECUTIVE, failureThreshold: 1 },
    steps: [['fail', 0], ['can', 1000, true], ['fail', 1200], ['state', 1200, 'open'], ['can', 2199, false], ['can', 2200, true]],
    transitions: [
      'closed->open:consecutive_failures', 'open->half_open:cool_down_elapsed',
      'half_open->open:probe_failed', 'open->half_open:cool_down_elapsed',
    ],
  },
  {
    name: 'a probe that never reports frees its slot after probeTimeoutMs',
    options: { ...CONSECUTIVE, failureThreshold: 1, probeTimeoutMs: 500 },
    steps: [['fail', 0], ['can', 1000, true], ['can', 1499, false], ['can', 1500, true], ['can', 1501, false]],
    transitions: ['closed->open:consecutive_failures', 'open->half_open:cool_down_elapsed'],
  },
  {
    name: 'late results while open change nothing',
    options: { ...CONSECUTIVE, failureThreshold: 1 },
    steps: [['fail', 0], ['ok', 10], ['fail', 20], ['state', 999, 'open'], ['can', 1000, true]],
    transitions: ['closed->open:consecutive_failures', 'open->half_open:cool_down_elapsed'],
  },
  {
    name: 'closing forgets earlier failures',
    options: { ...CONSECUTIVE, failureThreshold: 2 },
    steps: [
      ['fail', 0], ['fail', 1], ['can', 1001, true], ['ok', 1001],
      ['fail', 1002], ['state', 1002, 'closed'], ['fail', 1003], ['state', 1003, 'open'],
    ],
    transitions: [
      'closed->open:consecutive_failures', 'open->half_open:cool_down_elapsed',
      'half_open->closed:probe_succeeded', 'closed->open:consecutive_failures',
    ],
  },
];

describe('CircuitBreaker', () => {
  for (const s of scenarios) {
    it(s.name, () => {
      const seen: BreakerTransition[] = [];
      const breaker = new CircuitBreaker({ ...s.options, onTransition: (t) => seen.push(t) });
      s.steps.forEach((step, i) => {
        const at = `step ${i} ${JSON.stringify(step)}`;
        if (step[0] === 'ok') breaker.onSuccess(step[1]);
        else if (step[0] === 'fail') breaker.onFailure(step[1]);
        else if (step[0] === 'can') assert.equal(breaker.canAttempt(step[1]), step[2], at);
        else assert.equal(breaker.state(step[1]), step[2], at);
      });
      assert.deepEqual(seen.map((t) => `${t.from}->${t.to}:${t.reason}`), s.transitions);
    });
  }

  it('reports what an operator log line needs when it opens', () => {
    const seen: BreakerTransition[] = [];
    const breaker = new CircuitBreaker({ failureThreshold: 10, minimumSamples: 100, onTransition: (t) => seen.push(t) });
    for (let t = 0; t < 10; t++) breaker.onFailure(t);
    assert.deepEqual(seen, [
      { from: 'closed', to: 'open', atMs: 9, reason: 'consecutive_failures', consecutiveFailures: 10, failureRate: null },
    ]);
  });

  it('reports the failure rate that opened it', () => {
    const seen: BreakerTransition[] = [];
    const breaker = new CircuitBreaker({ failureThreshold: 100, failureRateThreshold: 0.5, minimumSamples: 4, onTransition: (t) => seen.push(t) });
    for (const [t, ok] of [[0, true], [1, false], [2, true], [3, false]] as const) {
      if (ok) breaker.onSuccess(t);
      else breaker.onFailure(t);
    }
    assert.equal(seen[0]?.failureRate, 0.5);
    assert.equal(seen[0]?.consecutiveFailures, 1);
  });

  const invalid: [string, CircuitBreakerOptions][] = [
    ['failureThreshold 0', { failureThreshold: 0 }],
    ['failureRateThreshold 0', { failureRateThreshold: 0 }],
    ['failureRateThreshold above 1', { failureRateThreshold: 1.5 }],
    ['minimumSamples 0', { minimumSamples: 0 }],
    ['maxSamples below minimumSamples', { minimumSamples: 10, maxSamples: 5 }],
  ];
  for (const [name, options] of invalid) {
    it(`rejects ${name}`, () => assert.throws(() => new CircuitBreaker(options), RangeError));
  }
});
