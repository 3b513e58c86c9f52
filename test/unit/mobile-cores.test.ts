/** Pure cores of issue 18 and 9.1: rate floor, takeover decision, one body per slot, per-client caps. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BodyHolder, BodyMeter, BodySlots, ClientLimits, MOVING_WINDOW_MS, decideRelease, type TakeoverReport, type Timers } from '../../src/transfer/index.js';

const KiB = 1024;

/** A fake clock with timers that fire only when the test advances time. */
class FakeTimers implements Timers {
  t = 0;
  private queue: Array<{ at: number; fn: () => void; live: boolean }> = [];
  private soonQueue: Array<() => void> = [];
  now = () => this.t;
  after = (ms: number, fn: () => void) => {
    const entry = { at: this.t + ms, fn, live: true };
    this.queue.push(entry);
    return () => void (entry.live = false);
  };
  soon = (fn: () => void) => void this.soonQueue.push(fn);
  /** Runs deferred work, then timers due up to now + ms, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      while (this.soonQueue.length) this.soonQueue.shift()!();
      this.queue.sort((a, b) => a.at - b.at);
      const next = this.queue.find((e) => e.live && e.at <= end);
      if (!next) break;
      this.queue.splice(this.queue.indexOf(next), 1);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }
}

/** Feeds a meter a byte curve: rate(tMs) bytes/s, sampled every 250 ms; returns the judgement at the end. */
function simulate(durationMs: number, rate: (tMs: number) => number, floor = { bytesPerSec: 8 * KiB, windowMs: 60_000, judgeAfterMs: 60_000 }) {
  const meter = new BodyMeter(0, 1000, floor.windowMs);
  let bytes = 1000;
  let tooSlowAt: number | null = null;
  for (let t = 250; t <= durationMs; t += 250) {
    bytes += (rate(t) * 250) / 1000;
    meter.observe(Math.floor(bytes), t);
    if (tooSlowAt === null && meter.judgeFloor(t, floor).tooSlow) tooSlowAt = t;
  }
  return { tooSlowAt, last: meter.judgeFloor(durationMs, floor) };
}

describe('rate floor (min_upload_rate over a window, longest silence left out)', () => {
  const cases: Array<[string, number, (t: number) => number, boolean]> = [
    ['3G: 4 MiB at 40 KiB/s', 102_000, () => 40 * KiB, false],
    ['EDGE: 1 MiB at 12 KiB/s', 85_000, () => 12 * KiB, false],
    ['tunnel: 40 KiB/s with a 20 s silence midway', 90_000, (t) => (t > 30_000 && t <= 50_000 ? 0 : 40 * KiB), false],
    ['EDGE with a 20 s silence', 120_000, (t) => (t > 40_000 && t <= 60_000 ? 0 : 12 * KiB), false],
    ['bursty radio: 2 s at 30 KiB/s, 2 s silent', 180_000, (t) => (Math.floor(t / 2000) % 2 === 0 ? 30 * KiB : 0), false],
    ['trickle attack: one byte every 2 s', 120_000, (t) => (t % 2000 === 0 ? 4 : 0), true],
    ['GPRS-slow: 4 KiB/s steady', 120_000, () => 4 * KiB, true],
  ];
  for (const [name, ms, rate, tooSlow] of cases) {
    it(`${name}: ${tooSlow ? 'too slow' : 'passes'}`, () => {
      const r = simulate(ms, rate);
      assert.equal(r.tooSlowAt !== null, tooSlow, JSON.stringify(r));
      if (tooSlow) assert.ok(r.tooSlowAt! >= 60_000, 'never judged before the first window (or deadline)');
    });
  }
  it('a short deadline lets the floor judge earlier, over the time elapsed', () => {
    const r = simulate(3000, () => 100, { bytesPerSec: 8 * KiB, windowMs: 60_000, judgeAfterMs: 1000 });
    assert.equal(r.tooSlowAt, 1000);
  });
  it('floor 0 is off', () => {
    assert.equal(simulate(120_000, () => 1, { bytesPerSec: 0, windowMs: 60_000, judgeAfterMs: 0 }).tooSlowAt, null);
  });
  it('reports the rate seen over the window', () => {
    const { last } = simulate(120_000, () => 10 * KiB);
    assert.ok(Math.abs(last.rateBytesPerSec - 10 * KiB) < 200, String(last.rateBytesPerSec));
    assert.equal(last.windowMs, 60_000);
  });
});

describe('takeover decision', () => {
  const rules = { takeoverIdleMs: 200, drainMs: 3000 };
  const table: Array<[number, number, ReturnType<typeof decideRelease>]> = [
    [250, 0, 'end_idle'],
    [200, 0, 'end_idle'],
    [199, 0, 'wait'],
    [0, 2999, 'wait'],
    [0, 3000, 'end_drain_timeout'],
    [5000, 5000, 'end_idle'],
  ];
  for (const [idle, elapsed, expected] of table) it(`idle ${idle} ms, drain ${elapsed} ms -> ${expected}`, () => assert.equal(decideRelease(idle, elapsed, rules), expected));
});

/** A holder whose idle clock the test drives: `bytes` moves when the test says so. */
function holderOn(timers: FakeTimers, reports: TakeoverReport[], drainMs = 30_000) {
  const state = { lastByteAt: 0, ended: 0 };
  const holder: BodyHolder = new BodyHolder({
    clientAddress: '127.0.0.2',
    takeoverIdleMs: 200,
    drainMs,
    idleMs: () => timers.t - state.lastByteAt,
    end: () => {
      state.ended++;
      timers.soon(() => holder.finished()); // the request winds down asynchronously
    },
    onTakeover: (r) => reports.push(r),
    timers,
  });
  return { holder, state };
}

describe('BodyHolder', () => {
  it('a holder silent for takeover_idle is ended at once (idle_ended), even with a 30 s drain', async () => {
    const timers = new FakeTimers();
    const reports: TakeoverReport[] = [];
    const { holder, state } = holderOn(timers, reports);
    timers.advance(400);
    let left = false;
    void holder.requestRelease({ clientAddress: '127.0.0.3' }).then(() => (left = true));
    timers.advance(0);
    await Promise.resolve();
    assert.equal(state.ended, 1);
    assert.equal(left, true);
    assert.deepEqual(reports.map((r) => [r.outcome, r.oldClient, r.newClient, r.waitedMs]), [['idle_ended', '127.0.0.2', '127.0.0.3', 0]]);
  });
  it('a receiving holder drains; it is ended once it goes silent (idle_ended)', async () => {
    const timers = new FakeTimers();
    const reports: TakeoverReport[] = [];
    const { holder, state } = holderOn(timers, reports);
    void holder.requestRelease({ clientAddress: 'b' });
    for (let i = 0; i < 10; i++) {
      timers.advance(100);
      state.lastByteAt = timers.t; // still receiving
    }
    assert.equal(state.ended, 0, 'not ended while bytes move');
    timers.advance(250); // silence from here
    await Promise.resolve();
    assert.equal(state.ended, 1);
    assert.equal(reports[0]!.outcome, 'idle_ended');
    assert.equal(reports[0]!.waitedMs, 1200);
  });
  it('a holder that keeps receiving is ended at the drain timeout (drain_timeout); one that finishes first drained', () => {
    const timers = new FakeTimers();
    const reports: TakeoverReport[] = [];
    const a = holderOn(timers, reports, 1000);
    void a.holder.requestRelease({ clientAddress: 'b' });
    for (let i = 0; i < 15; i++) {
      timers.advance(100);
      a.state.lastByteAt = timers.t;
    }
    assert.equal(a.state.ended, 1);
    const b = holderOn(timers, reports, 1000);
    b.state.lastByteAt = timers.t;
    void b.holder.requestRelease({ clientAddress: 'c' });
    timers.advance(50);
    b.holder.finished();
    assert.deepEqual(reports.map((r) => r.outcome), ['drain_timeout', 'drained']);
  });
  it('bytes that arrive before the deferred confirmation keep the holder alive', () => {
    const timers = new FakeTimers();
    const { holder, state } = holderOn(timers, []);
    timers.advance(300);
    void holder.requestRelease({ clientAddress: 'b' });
    state.lastByteAt = timers.t; // delivered by the pending socket read
    timers.advance(0);
    assert.equal(state.ended, 0);
  });
  it('no takeover, no report', () => {
    const timers = new FakeTimers();
    const reports: TakeoverReport[] = [];
    holderOn(timers, reports).holder.finished();
    assert.equal(reports.length, 0);
  });
});

describe('BodySlots: one body per slot', () => {
  const flush = async () => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  const never = new AbortController().signal;
  it('PUT policy: a moving holder refuses the second body (busy); a silent one is taken over', async () => {
    const timers = new FakeTimers();
    const slots = new BodySlots(timers);
    const first = holderOn(timers, []);
    const claim1 = await slots.claim('s', first.holder, { clientAddress: 'a' }, 'refuse_moving', 5000, never);
    assert.ok(claim1.ok);
    const second = holderOn(timers, []);
    // Still receiving through the whole moving window (MOVING_WINDOW_MS): busy.
    let settled = false;
    const refused = slots.claim('s', second.holder, { clientAddress: 'b' }, 'refuse_moving', 5000, never).finally(() => (settled = true));
    for (let i = 0; i < MOVING_WINDOW_MS / 50 - 1; i++) {
      first.state.lastByteAt = timers.t;
      await flush();
      timers.advance(50);
      await flush();
      assert.equal(settled, false, `still watching a receiving holder at ${(i + 1) * 50} ms`);
    }
    first.state.lastByteAt = timers.t;
    await flush();
    timers.advance(50);
    assert.deepEqual(await refused, { ok: false, reason: 'busy' });
    // Arrives 100 ms after the last byte, the holder stays silent: taken over once silent.
    first.state.lastByteAt = timers.t;
    timers.advance(100);
    const claiming = slots.claim('s', second.holder, { clientAddress: 'b' }, 'refuse_moving', 5000, never);
    for (let i = 0; i < 5; i++) {
      await Promise.resolve();
      timers.advance(50);
    }
    const claim2 = await claiming;
    assert.ok(claim2.ok);
    assert.equal(first.state.ended, 1);
    assert.equal(slots.holderOf('s'), second.holder);
    claim1.release(); // a stale release does not free the new holder's slot
    assert.equal(slots.holderOf('s'), second.holder);
    claim2.release();
    assert.equal(slots.size, 0);
  });
  it('a holder that never lets go: the waiter gives up (timeout); an asker that leaves stops waiting', async () => {
    const timers = new FakeTimers();
    const slots = new BodySlots(timers);
    const stuck = new BodyHolder({ clientAddress: 'a', takeoverIdleMs: 200, drainMs: 100, idleMs: () => 0, end: () => {}, timers });
    assert.ok((await slots.claim('s', stuck, { clientAddress: 'a' }, 'drain', 1, never)).ok);
    const waiting = slots.claim('s', holderOn(timers, []).holder, { clientAddress: 'b' }, 'drain', 1000, never);
    timers.advance(1000);
    assert.deepEqual(await waiting, { ok: false, reason: 'timeout' });
    const ac = new AbortController();
    const leaving = slots.claim('s', holderOn(timers, []).holder, { clientAddress: 'c' }, 'drain', 1000, ac.signal);
    ac.abort();
    assert.deepEqual(await leaving, { ok: false, reason: 'aborted' });
  });
});

describe('ClientLimits', () => {
  it('caps concurrent bodies per client; others are unaffected', () => {
    const limits = new ClientLimits({ maxBodies: 2, creationsPerMinute: 0 });
    const a1 = limits.enterBody('a')!;
    const a2 = limits.enterBody('a')!;
    assert.equal(limits.enterBody('a'), null);
    assert.ok(limits.enterBody('b'));
    a1();
    a1(); // idempotent
    assert.equal(limits.bodiesOf('a'), 1);
    assert.ok(limits.enterBody('a'));
    a2();
  });
  it('creations: a burst of the per-minute count, then one per 60/n s, with Retry-After', () => {
    const limits = new ClientLimits({ maxBodies: 0, creationsPerMinute: 3 });
    for (let i = 0; i < 3; i++) assert.deepEqual(limits.allowCreation('a', 0), { ok: true });
    assert.deepEqual(limits.allowCreation('a', 0), { ok: false, retryAfterS: 20 });
    assert.deepEqual(limits.allowCreation('b', 0), { ok: true });
    assert.deepEqual(limits.allowCreation('a', 20_000), { ok: true });
    assert.equal(limits.allowCreation('a', 20_001).ok, false);
    assert.deepEqual(limits.allowCreation('a', 200_000), { ok: true }, 'refilled (and swept) after a quiet minute');
  });
  it('0 = no cap', () => {
    const limits = new ClientLimits({ maxBodies: 0, creationsPerMinute: 0 });
    for (let i = 0; i < 1000; i++) assert.ok(limits.enterBody('a') && limits.allowCreation('a', 0).ok);
  });
});
