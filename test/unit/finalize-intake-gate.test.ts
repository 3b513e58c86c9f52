/** Intake backpressure and download waits on a fake clock. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { IntakeGate } from '../../src/finalize/intake-gate.js';
import { PublishWaiters } from '../../src/finalize/publish-waiters.js';
import { createLogger } from '../../src/observability/index.js';
import type { PriorityTier } from '../../src/queue/index.js';
import { FakeClock, settle } from './finalize-fake-clock.js';

const MB = 1_000_000;

function capture() {
  const lines: { msg: string; level: number }[] = [];
  const log = createLogger(
    { level: 'info', format: 'json' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    }),
  );
  return { log, msgs: () => lines.map((l) => l.msg) };
}

function gate(pending: Record<PriorityTier, number>) {
  const clock = new FakeClock(10_000);
  const { log, msgs } = capture();
  const g = new IntakeGate({
    capacity: 100,
    delay: { backpressure: 0.8, emergency: 0.95, minDelayMs: 100, maxDelayMs: 1000, rampMs: 10_000 },
    largeTierLimit: 3,
    clock,
    log,
    pending: () => pending,
    retryAfterS: (jobs) => jobs,
  });
  return { g, clock, msgs };
}

describe('IntakeGate', () => {
  it('lets everything through at once below the threshold', async () => {
    const { g, msgs } = gate({ high: 50, medium: 0, low: 0 });
    assert.deepEqual(await g.pass({ kind: 'put', sizeBytes: 5 * MB }), { ok: true, delayedMs: 0 });
    assert.deepEqual(g.pressure(), { level: 'normal', fill: 0.5 });
    assert.deepEqual(msgs(), []);
  });

  it('delays new uploads under backpressure, logs the episode once, and clears by itself', async () => {
    const pending = { high: 80, medium: 0, low: 0 };
    const { g, clock, msgs } = gate(pending);
    let first: unknown;
    void g.pass({ kind: 'create', sizeBytes: 1 }).then((d) => (first = d));
    await settle();
    assert.equal(first, undefined, 'still waiting');
    assert.deepEqual(msgs(), ['Queue backpressure activated (queue 80% full)']);
    await clock.advance(100);
    assert.deepEqual(first, { ok: true, delayedMs: 100 });
    // Later in the episode the delay has grown (time ramp), bounded by maxDelayMs.
    await clock.advance(5_000);
    let second: unknown;
    void g.pass({ kind: 'put', sizeBytes: 1 }).then((d) => (second = d));
    // 5.1 s into a 10 s ramp at the threshold: 100 + 900 * 0.51 = 559 ms.
    await clock.advance(558);
    assert.equal(second, undefined);
    await clock.advance(1);
    assert.deepEqual(second, { ok: true, delayedMs: 559 });
    assert.equal(msgs().filter((m) => m.startsWith('Queue backpressure activated')).length, 1, 'once per episode');
    // The queue drains: waiting intakes are let go at once, and the episode ends.
    let third: unknown;
    void g.pass({ kind: 'put', sizeBytes: 1 }).then((d) => (third = d));
    await settle();
    pending.high = 10;
    g.update();
    await settle();
    assert.deepEqual(third, { ok: true, delayedMs: 0 });
    assert.deepEqual(msgs(), ['Queue backpressure activated (queue 80% full)', 'Queue backpressure cleared']);
  });

  it('emergency: refuses non-small and unknown sizes with Retry-After, still admits small files', async () => {
    const pending = { high: 90, medium: 7, low: 0 };
    const { g, clock, msgs } = gate(pending);
    const big = await g.pass({ kind: 'create', sizeBytes: 50 * MB });
    assert.deepEqual(big, { ok: false, reason: 'emergency', retryAfterS: 3 }); // 97 - 95 + 1 jobs to drain
    assert.equal((await g.pass({ kind: 'create' })).ok, false, 'deferred length counts as not small');
    let small: unknown;
    void g.pass({ kind: 'put', sizeBytes: 9 * MB }).then((d) => (small = d));
    await clock.advance(1000);
    assert.deepEqual(small, { ok: true, delayedMs: 1000 });
    assert.deepEqual(msgs(), ['Queue emergency mode activated (queue 97% full)', 'Queue backpressure activated (queue 97% full)']);
    pending.high = 80;
    g.update();
    assert.equal(g.pressure().level, 'backpressure');
    pending.high = 0;
    g.update();
    assert.deepEqual(msgs().slice(2), ['Queue emergency mode cleared', 'Queue backpressure cleared']);
  });

  it('refuses large files while the large tier is full, whatever the fill', async () => {
    const pending = { high: 0, medium: 0, low: 3 };
    const { g } = gate(pending);
    assert.deepEqual(await g.pass({ kind: 'create', sizeBytes: 100 * MB }), { ok: false, reason: 'large_tier_full', retryAfterS: 1 });
    assert.deepEqual(await g.pass({ kind: 'create', sizeBytes: 99 * MB }), { ok: true, delayedMs: 0 });
    pending.low = 2;
    assert.deepEqual(await g.pass({ kind: 'create', sizeBytes: 5000 * MB }), { ok: true, delayedMs: 0 });
  });

  it('a client that goes away stops waiting with its abort reason', async () => {
    const { g } = gate({ high: 85, medium: 0, low: 0 });
    const ac = new AbortController();
    const waiting = g.pass({ kind: 'put', sizeBytes: 1, signal: ac.signal });
    ac.abort(new Error('client gone'));
    await assert.rejects(waiting, /client gone/);
  });
});

describe('PublishWaiters', () => {
  it('wakes waiters of one slot on notify, times out the others, and honours abort and the bound', async () => {
    const clock = new FakeClock();
    const w = new PublishWaiters(clock, 3);
    const results: Partial<Record<'a1' | 'a2' | 'b' | 'd', boolean>> = {};
    void w.wait('a', 1000).then((r) => (results.a1 = r));
    void w.wait('a', 1000).then((r) => (results.a2 = r));
    const ac = new AbortController();
    void w.wait('b', 1000, ac.signal).then((r) => (results.b = r));
    assert.equal(await w.wait('c', 1000), false, 'over the bound: answered at once');
    w.notify('a');
    ac.abort();
    await settle();
    assert.deepEqual({ ...results }, { a1: true, a2: true, b: false });
    assert.equal(w.size, 0);
    void w.wait('d', 1000).then((r) => (results.d = r));
    await clock.advance(999);
    assert.equal(results.d, undefined);
    await clock.advance(1);
    assert.equal(results.d, false);
    assert.equal(clock.pendingTimers, 0, 'no timer left behind');
  });
});
