import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveConfig } from '../../src/config/index.js';
import { BodyMeter, ConcurrencyPermits, judgeBody, pickNextWaiter, transferLimits } from '../../src/transfer/index.js';

describe('transferLimits', () => {
  const { config } = resolveConfig({}, {});
  const cases: Array<[number | undefined, string, number, number]> = [
    [1, 'small', 30_000, 60_000],
    [9_999_999, 'small', 30_000, 60_000],
    [10_000_000, 'medium', 60_000, 600_000],
    [99_999_999, 'medium', 60_000, 600_000],
    [100_000_000, 'large', 90_000, 3_600_000],
    [1_000_000_000, 'huge', 120_000, 7_200_000],
    [undefined, 'huge', 120_000, 7_200_000],
  ];
  for (const [size, sizeClass, stallMs, deadlineMs] of cases) {
    it(`${size} bytes -> ${sizeClass}`, () => {
      const floor = { bytesPerSec: 8192, windowMs: 60_000, judgeAfterMs: deadlineMs };
      assert.deepEqual(transferLimits(size, config.server, config.timeouts), { sizeClass, stallMs, deadlineMs, floor });
    });
  }
  it('per-class stall keys override the derived values; request_timeout caps deadlines', () => {
    const { config: c } = resolveConfig({ server: { request_timeout: '10m' }, timeouts: { large_file_stall_timeout: '5m' } }, {});
    assert.deepEqual(transferLimits(500_000_000, c.server, c.timeouts), {
      sizeClass: 'large',
      stallMs: 300_000,
      deadlineMs: 600_000,
      floor: { bytesPerSec: 8192, windowMs: 60_000, judgeAfterMs: 600_000 },
    });
  });
});

describe('judgeBody', () => {
  const limits = { stallMs: 1000, floor: { bytesPerSec: 1, windowMs: 5000, judgeAfterMs: 5000 } };
  it('moving bytes are never a stall, however slow', () => {
    const meter = new BodyMeter(0, 0, 5000);
    for (let t = 500; t < 5000; t += 500) assert.equal(judgeBody(meter, t / 500, t, limits).verdict, 'ok', `at ${t}`);
  });
  it('no byte for stallMs is a stall', () => {
    assert.equal(judgeBody(new BodyMeter(0, 0, 5000), 0, 999, limits).verdict, 'ok');
    assert.equal(judgeBody(new BodyMeter(0, 0, 5000), 0, 1000, limits).verdict, 'stall');
  });
  it('past the deadline a body above the floor goes on; one below it is ended with verdict floor', () => {
    const fast = new BodyMeter(0, 0, 5000);
    const slow = new BodyMeter(0, 0, 5000);
    let last = { fast: 'ok', slow: 'ok' };
    for (let t = 100; t <= 8000; t += 100) {
      last = { fast: judgeBody(fast, t, t, limits).verdict, slow: last.slow === 'ok' ? judgeBody(slow, Math.floor(t / 2000), t, { stallMs: 3000, floor: { ...limits.floor, bytesPerSec: 100 } }).verdict : last.slow };
    }
    assert.equal(last.fast, 'ok');
    assert.equal(last.slow, 'floor');
  });
});

describe('admission order', () => {
  const w = (seq: number, remainingBytes: number, enqueuedAtMs: number) => ({ seq, remainingBytes, enqueuedAtMs });
  it('smallest remaining first, FIFO on ties', () => {
    assert.equal(pickNextWaiter([w(0, 500, 0), w(1, 100, 1), w(2, 100, 2)], 10, 1000), 1);
  });
  it('a waiter past the aging threshold goes first; the oldest aged one first', () => {
    assert.equal(pickNextWaiter([w(0, 900, 0), w(1, 10, 500), w(2, 800, 100)], 1000, 1000), 0);
    assert.equal(pickNextWaiter([w(0, 900, 100), w(1, 10, 200), w(2, 5, 1100)], 1200, 1000), 0);
  });
  it('empty queue: -1', () => assert.equal(pickNextWaiter([], 0, 1), -1));
  it('the client holding the fewest permits first, whatever it sends; then smallest first; aged ones still go first', () => {
    const held = (c: string) => ({ heavy: 30, light: 1 })[c] ?? 0;
    const c = (seq: number, remainingBytes: number, client: string, enqueuedAtMs = 0) => ({ seq, remainingBytes, enqueuedAtMs, client });
    assert.equal(pickNextWaiter([c(0, 10, 'heavy'), c(1, 5000, 'light')], 10, 1000, held), 1);
    assert.equal(pickNextWaiter([c(0, 10, 'heavy'), c(1, 5000, 'light'), c(2, 9000, 'new')], 10, 1000, held), 2);
    assert.equal(pickNextWaiter([c(0, 500, 'light'), c(1, 100, 'light')], 10, 1000, held), 1);
    assert.equal(pickNextWaiter([c(0, 10, 'heavy', 0), c(1, 5000, 'light', 900)], 1000, 1000, held), 0, 'waited past agingMs');
  });
});

describe('ConcurrencyPermits', () => {
  it('admits up to capacity, then grants released slots by priority', async () => {
    const a = new ConcurrencyPermits({ capacity: 1, agingMs: 60_000, timeoutMs: 10_000 });
    const signal = new AbortController().signal;
    const first = await a.acquire(100, signal);
    assert.ok(first.ok);
    const order: number[] = [];
    const big = a.acquire(1000, signal).then((r) => (order.push(1000), r));
    const small = a.acquire(10, signal).then((r) => (order.push(10), r));
    assert.equal(a.waitingCount, 2);
    first.release();
    const s = await small;
    assert.ok(s.ok);
    assert.deepEqual(order, [10]);
    s.release();
    const b = await big;
    assert.ok(b.ok);
    b.release();
    assert.equal(a.activeCount, 0);
  });
  it("a freed permit goes to the waiting client holding the fewest, not behind another client's many bodies", async () => {
    const a = new ConcurrencyPermits({ capacity: 2, agingMs: 60_000, timeoutMs: 2_000 });
    const signal = new AbortController().signal;
    const [h1, h2] = [await a.acquire(1, signal, 'heavy'), await a.acquire(1, signal, 'heavy')];
    const order: string[] = [];
    const heavy = a.acquire(1, signal, 'heavy').then((r) => (order.push('heavy'), r));
    const light = a.acquire(1_000_000, signal, 'light').then((r) => (order.push('light'), r));
    assert.ok(h1.ok && h2.ok);
    h1.release();
    const l = await light;
    assert.deepEqual(order, ['light'], 'bigger, but its client held none');
    h2.release();
    const h = await heavy;
    for (const p of [l, h]) if (p.ok) p.release();
    assert.equal(a.activeCount, 0);
  });

  it('while a body waits, the holder silent longest gives its permit up; one still sending keeps it', async () => {
    const a = new ConcurrencyPermits({ capacity: 2, agingMs: 60_000, timeoutMs: 2_000, silentUnderContentionMs: 100 });
    const signal = new AbortController().signal;
    const yielded: string[] = [];
    const holders = await Promise.all(['sending', 'silent'].map(async (name) => {
      const p = await a.acquire(1, signal);
      assert.ok(p.ok);
      p.hold({ idleMs: () => (name === 'silent' ? 10_000 : 0), yieldPermit: () => (yielded.push(name), p.release()) });
      return p;
    }));
    const waiter = await a.acquire(1, signal);
    assert.ok(waiter.ok, 'granted once the silent body gave its permit up');
    assert.deepEqual(yielded, ['silent']);
    // Nobody waits: a silent body keeps its permit.
    const silentAgain = waiter;
    silentAgain.hold({ idleMs: () => 10_000, yieldPermit: () => yielded.push('not asked') });
    assert.equal(a.waitingCount, 0);
    for (const p of [...holders, waiter]) if (p.ok) p.release();
    assert.deepEqual(yielded, ['silent']);
    assert.equal(a.activeCount, 0);
  });

  it('a holder asked to yield and not gone yet answers the waiter: no second holder is asked for the same one', async () => {
    const a = new ConcurrencyPermits({ capacity: 2, agingMs: 60_000, timeoutMs: 2_000, silentUnderContentionMs: 50 });
    const signal = new AbortController().signal;
    const asked: string[] = [];
    const permits = await Promise.all(['a', 'b'].map(async (name) => {
      const p = await a.acquire(1, signal);
      assert.ok(p.ok);
      p.hold({ idleMs: () => (name === 'a' ? 10_000 : 5_000), yieldPermit: () => asked.push(name) }); // ends later, not at once
      return p;
    }));
    const waiter = a.acquire(1, signal);
    while (asked.length === 0) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 120)); // a few more checks while a's yield is pending
    assert.deepEqual(asked, ['a'], 'b is not asked while a is on its way out');
    permits[0]!.ok && permits[0]!.release();
    const w = await waiter;
    assert.ok(w.ok);
    w.release();
    permits[1]!.ok && permits[1]!.release();
    assert.deepEqual(asked, ['a']);
  });

  it('a waiter whose client leaves is removed at once; one that waits too long is refused', async () => {
    const a = new ConcurrencyPermits({ capacity: 1, agingMs: 60_000, timeoutMs: 50 });
    const held = await a.acquire(1, new AbortController().signal);
    const gone = new AbortController();
    const leaving = a.acquire(1, gone.signal);
    gone.abort();
    assert.deepEqual(await leaving, { ok: false, reason: 'aborted' });
    assert.deepEqual(await a.acquire(1, new AbortController().signal), { ok: false, reason: 'timeout' });
    assert.equal(a.waitingCount, 0);
    assert.ok(held.ok);
    held.release();
    held.release(); // idempotent
    assert.equal(a.activeCount, 0);
  });
});
