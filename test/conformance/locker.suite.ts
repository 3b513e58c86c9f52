/** What every upload locker must do; run against each implementation by test/integration/lockers.test.ts. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../src/errors.js';
import type { ReleaseRequest, TakeoverLocker } from '../../src/storage/index.js';

export interface LockerFixture {
  /** A locker whose acquire timeout is about `acquireTimeoutMs`. */
  open(acquireTimeoutMs: number): Promise<TakeoverLocker>;
  close?(): Promise<void>;
}

export function describeLocker(name: string, fixture: LockerFixture): void {
  describe(`${name} conforms to Locker`, () => {
    const noop = () => {};

    it('is exclusive per id and independent across ids', async () => {
      const locker = await fixture.open(5_000);
      const a = locker.newLock('u1');
      await a.lock(new AbortController().signal, noop);
      const other = locker.newLock('u2');
      await other.lock(new AbortController().signal, noop);
      let second = false;
      const b = locker.newLock('u1');
      const waiting = b.lock(new AbortController().signal, noop).then(() => (second = true));
      await new Promise((r) => setImmediate(r));
      assert.equal(second, false, 'second holder must wait');
      await a.unlock();
      await waiting;
      assert.equal(second, true);
      await b.unlock();
      await other.unlock();
    });

    it('asks the holder to release, and the waiter gets the lock once it does', async () => {
      const locker = await fixture.open(5_000);
      const holder = locker.newLock('u');
      let asked = 0;
      await holder.lock(new AbortController().signal, () => {
        asked++;
        void holder.unlock();
      });
      const waiter = locker.newLock('u');
      await waiter.lock(new AbortController().signal, noop);
      assert.ok(asked >= 1);
      await waiter.unlock();
    });

    it('a waiter that cannot get the lock in time fails with ERR_UPLOAD_LOCKED (423)', async () => {
      const locker = await fixture.open(100);
      const holder = locker.newLock('u');
      await holder.lock(new AbortController().signal, noop); // never releases
      await assert.rejects(locker.newLock('u').lock(new AbortController().signal, noop), (e: unknown) => AppError.is(e, 'ERR_UPLOAD_LOCKED') && e.status === 423);
      await holder.unlock();
    });

    it('a waiter whose request is aborted stops waiting', async () => {
      const locker = await fixture.open(5_000);
      const holder = locker.newLock('u');
      await holder.lock(new AbortController().signal, noop);
      const ac = new AbortController();
      const waiting = locker.newLock('u').lock(ac.signal, noop);
      ac.abort();
      await assert.rejects(waiting);
      await holder.unlock();
      const next = locker.newLock('u');
      await next.lock(new AbortController().signal, noop);
      await next.unlock();
    });

    // Takeover (issue 18.2): the locker carries the release request, with who asks, to the
    // holder's handler; the holder decides by its own idle clock; the locker adds no delay of its
    // own and never takes the lock from a holder that has not let go.
    it('a release request reaches the holder with the requester named', async () => {
      const locker = await fixture.open(60_000);
      const holder = locker.newLock('t1', { clientAddress: '127.0.0.2' });
      const seen: ReleaseRequest[] = [];
      await holder.lock(new AbortController().signal, (request) => {
        seen.push(request);
        void holder.unlock();
      });
      const waiter = locker.newLock('t1', { clientAddress: '127.0.0.3' });
      await waiter.lock(new AbortController().signal, noop);
      assert.equal(seen[0]?.requester?.clientAddress, '127.0.0.3');
      await waiter.unlock();
    });

    it('a silent holder that ends at once hands the lock over at once, whatever the acquire timeout', { timeout: 10_000 }, async () => {
      const locker = await fixture.open(60_000); // a drain-bound locker would run into the test timeout
      const holder = locker.newLock('t2', { clientAddress: 'a' });
      let released = false;
      await holder.lock(new AbortController().signal, () => {
        released = true;
        void holder.unlock();
      });
      const waiter = locker.newLock('t2', { clientAddress: 'b' });
      await waiter.lock(new AbortController().signal, noop);
      assert.equal(released, true);
      await waiter.unlock();
    });

    it('a holder still receiving keeps the lock until it unlocks itself (the drain is its decision)', async () => {
      const locker = await fixture.open(60_000);
      const holder = locker.newLock('t3', { clientAddress: 'a' });
      let asked!: () => void;
      const wasAsked = new Promise<void>((r) => (asked = r));
      await holder.lock(new AbortController().signal, () => asked()); // decides to drain: does not unlock now
      let acquired = false;
      const waiter = locker.newLock('t3', { clientAddress: 'b' });
      const waiting = waiter.lock(new AbortController().signal, noop).then(() => (acquired = true));
      await wasAsked;
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      assert.equal(acquired, false, 'the waiter must not get a lock the holder still holds');
      await holder.unlock(); // drained
      await waiting;
      assert.equal(acquired, true);
      await waiter.unlock();
    });

    it('unlocking a lock not held is an error', async () => {
      const locker = await fixture.open(1_000);
      await assert.rejects(locker.newLock('never').unlock());
    });
  });
}
