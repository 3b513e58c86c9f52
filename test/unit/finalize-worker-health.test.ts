import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_HEALTH_THRESHOLDS,
  WorkerWindow,
  assessWorker,
  chooseWorker,
  type WorkerCandidate,
  type WorkerSample,
} from '../../src/queue/index.js';

const ok = (durationMs: number): WorkerSample => ({ durationMs, ok: true });
const bad = (durationMs: number): WorkerSample => ({ durationMs, ok: false });
const TIMEOUT = 300_000;

describe('assessWorker', () => {
  const cases: { name: string; samples: WorkerSample[]; pool: number | null; running: number | null; now: number; status: string; reason: string }[] = [
    { name: 'no history is healthy', samples: [], pool: null, running: null, now: 0, status: 'healthy', reason: 'ok' },
    { name: 'errors below the minimum sample count judge nothing', samples: [bad(10), bad(10), bad(10), bad(10)], pool: 10, running: null, now: 0, status: 'healthy', reason: 'ok' },
    { name: 'error rate at 50% over 6 is failed', samples: [bad(10), ok(10), bad(10), ok(10), bad(10), ok(10)], pool: 10, running: null, now: 0, status: 'failed', reason: 'error_rate' },
    { name: 'error rate 40% is not', samples: [bad(10), ok(10), bad(10), ok(10), ok(10)], pool: 10, running: null, now: 0, status: 'healthy', reason: 'ok' },
    { name: 'a job past the timeout is stuck, whatever the history', samples: [ok(5), ok(5), ok(5), ok(5), ok(5)], pool: 5, running: 0, now: TIMEOUT, status: 'failed', reason: 'stuck' },
    { name: 'average above 3x the pool and the floor is slow', samples: Array(5).fill(ok(4000)), pool: 1000, running: null, now: 0, status: 'slow', reason: 'slow_average' },
    { name: 'slow average under the floor is healthy', samples: Array(5).fill(ok(900)), pool: 10, running: null, now: 0, status: 'healthy', reason: 'ok' },
    { name: 'a long-running job makes it slow before the timeout', samples: [], pool: 1000, running: 0, now: 3500, status: 'slow', reason: 'slow_running' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const a = assessWorker(c.samples, c.pool, c.running === null ? null : { startedAtMs: c.running }, c.now, TIMEOUT, DEFAULT_HEALTH_THRESHOLDS);
      assert.deepEqual([a.status, a.reason], [c.status, c.reason]);
    });
  }

  it('reports error rate and average', () => {
    const a = assessWorker([bad(30), ok(10), bad(20), ok(10), bad(30), ok(20)], null, null, 0, TIMEOUT);
    assert.equal(a.errorRate, 0.5);
    assert.equal(a.avgMs, 20);
  });
});

describe('WorkerWindow', () => {
  it('keeps the last N samples and lifetime totals', () => {
    const w = new WorkerWindow(3);
    for (const s of [ok(1), bad(2), ok(3), ok(4)]) w.record(s);
    assert.deepEqual(w.samples(), [bad(2), ok(3), ok(4)]);
    assert.deepEqual([w.processed, w.errors, w.recentBusyMs(), w.avgMs()], [4, 1, 9, 3]);
  });
});

describe('chooseWorker', () => {
  const w = (id: number, status: WorkerCandidate['status'] = 'healthy', recentBusyMs = 0, processed = 0): WorkerCandidate => ({ id, status, recentBusyMs, processed });
  const never = () => {
    throw new Error('random not expected');
  };

  it('round_robin takes the next id after the last one, wrapping', () => {
    const idle = [w(1), w(2), w(3)];
    assert.equal(chooseWorker(idle, 'round_robin', 0, never)?.id, 1);
    assert.equal(chooseWorker(idle, 'round_robin', 1, never)?.id, 2);
    assert.equal(chooseWorker(idle, 'round_robin', 3, never)?.id, 1);
    assert.equal(chooseWorker([w(3), w(1)], 'round_robin', 1, never)?.id, 3, 'skips busy ones');
  });

  it('least_loaded takes the least recent busy time, then fewest processed, then lowest id', () => {
    assert.equal(chooseWorker([w(1, 'healthy', 500), w(2, 'healthy', 100), w(3, 'healthy', 300)], 'least_loaded', 0, never)?.id, 2);
    assert.equal(chooseWorker([w(1, 'healthy', 100, 9), w(2, 'healthy', 100, 3)], 'least_loaded', 0, never)?.id, 2);
    assert.equal(chooseWorker([w(2, 'healthy', 100, 3), w(1, 'healthy', 100, 3)], 'least_loaded', 0, never)?.id, 1);
  });

  it('random picks uniformly from the injected source', () => {
    const idle = [w(1), w(2), w(3), w(4)];
    assert.deepEqual([0, 0.26, 0.5, 0.99].map((r) => chooseWorker(idle, 'random', 0, () => r)?.id), [1, 2, 3, 4]);
  });

  it('passes over failed workers, then slow ones, while better ones are idle', () => {
    const idle = [w(1, 'failed'), w(2, 'slow', 0), w(3, 'healthy', 9999)];
    for (const s of ['round_robin', 'least_loaded', 'random'] as const) assert.equal(chooseWorker(idle, s, 0, () => 0)?.id, 3, s);
    assert.equal(chooseWorker([w(1, 'failed'), w(2, 'slow')], 'least_loaded', 0, never)?.id, 2);
    assert.equal(chooseWorker([w(1, 'failed')], 'least_loaded', 0, never)?.id, 1, 'a failed worker still works when it is the only one');
    assert.equal(chooseWorker([], 'round_robin', 0, never), null);
  });
});
