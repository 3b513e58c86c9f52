/** What every upload locker must do; run against each implementation by test/integration/lockers.test.ts. */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { Lock } from '@tus/utils';
import { AppError } from '../../src/errors.js';
import type { ReleaseRequest, TakeoverLocker } from '../../src/storage/index.js';

/** Lockers carry who asks to the holder (issue 18.2): see src/storage/takeover-locker.ts. */
type Locker = TakeoverLocker;

/** The lockers of one test: they share their locks, as instances behind one load balancer do. */
export interface LockSpace {
  /**
   * A locker whose acquire timeout is about `acquireTimeoutMs`, standing for one more instance
   * (its own connections for a distributed locker; the same process's locks for the memory one).
   */
  open(acquireTimeoutMs: number): Promise<Locker>;
  /**
   * Capability: the instance of `locker` vanishes without unlocking anything (a crash); the locks
   * it held must free themselves. Absent where an instance cannot outlive its locks.
   */
  crash?(locker: Locker): Promise<void>;
  close(): Promise<void>;
}

export interface LockerFixture {
  /** A fresh lock space for one test (a distributed locker: a new key prefix). */
  space(): Promise<LockSpace>;
}

const noop = () => {};
const signal = () => new AbortController().signal;

/** A promise with its resolver, for callbacks the test waits on. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Holds `id` on `locker`; `asked` resolves on the first release request (the holder does not let go by itself). */
async function holdIgnoringRequests(locker: Locker, id: string): Promise<{ lock: Lock; asked: Promise<void> }> {
  const lock = locker.newLock(id);
  const asked = deferred();
  await lock.lock(signal(), () => asked.resolve());
  return { lock, asked: asked.promise };
}

export function describeLocker(name: string, fixture: LockerFixture): void {
  const withSpace = (fn: (space: LockSpace, t: TestContext) => Promise<void>) => async (t: TestContext) => {
    const space = await fixture.space();
    try {
      await fn(space, t);
    } finally {
      await space.close();
    }
  };

  describe(`${name} conforms to Locker`, () => {
    it('is exclusive per id and independent across ids', withSpace(async (space) => {
      const locker = await space.open(5_000);
      const a = locker.newLock('u1');
      await a.lock(signal(), noop);
      const other = locker.newLock('u2');
      await other.lock(signal(), noop);
      let second = false;
      const b = locker.newLock('u1');
      const waiting = b.lock(signal(), noop).then(() => (second = true));
      await new Promise((r) => setImmediate(r));
      assert.equal(second, false, 'second holder must wait');
      await a.unlock();
      await waiting;
      assert.equal(second, true);
      await b.unlock();
      await other.unlock();
    }));

    it('asks the holder to release, and the waiter gets the lock once it does', withSpace(async (space) => {
      const locker = await space.open(5_000);
      const holder = locker.newLock('u');
      let asked = 0;
      await holder.lock(signal(), () => {
        asked++;
        void holder.unlock();
      });
      const waiter = locker.newLock('u');
      await waiter.lock(signal(), noop);
      assert.ok(asked >= 1);
      await waiter.unlock();
    }));

    it('a waiter that cannot get the lock in time fails with ERR_UPLOAD_LOCKED (423)', withSpace(async (space) => {
      const locker = await space.open(100);
      const holder = locker.newLock('u');
      await holder.lock(signal(), noop); // never releases
      await assert.rejects(locker.newLock('u').lock(signal(), noop), (e: unknown) => AppError.is(e, 'ERR_UPLOAD_LOCKED') && e.status === 423);
      await holder.unlock();
    }));

    // The acquire timeout is far beyond the test's own deadline: only the abort can end the wait.
    it('a waiter whose request is aborted stops waiting', { timeout: 20_000 }, withSpace(async (space) => {
      const locker = await space.open(600_000);
      const holder = locker.newLock('u');
      await holder.lock(signal(), noop);
      const ac = new AbortController();
      const waiting = locker.newLock('u').lock(ac.signal, noop);
      ac.abort();
      await assert.rejects(waiting);
      await holder.unlock();
      const next = locker.newLock('u');
      await next.lock(signal(), noop);
      await next.unlock();
    }));

    it('unlocking a lock not held is an error', withSpace(async (space) => {
      const locker = await space.open(1_000);
      await assert.rejects(locker.newLock('never').unlock());
    }));

    it('a release request from another instance reaches the holder, which hands over by unlocking', withSpace(async (space) => {
      const [a, b] = [await space.open(5_000), await space.open(5_000)];
      const { lock: held, asked } = await holdIgnoringRequests(a, 'u');
      let got = false;
      const waiter = b.newLock('u');
      const waiting = waiter.lock(signal(), noop).then(() => (got = true));
      await asked; // the waiter at B has tried and is waiting now
      assert.equal(got, false, 'the holder has not let go yet');
      await held.unlock();
      await waiting;
      await waiter.unlock();
    }));

    it('instances take turns: at most one holder at a time among many waiters', withSpace(async (space) => {
      const lockers = [await space.open(20_000), await space.open(20_000)];
      let inside = 0;
      let turns = 0;
      await Promise.all(Array.from({ length: 6 }, async (_, i) => {
        const lock = lockers[i % 2]!.newLock('shared');
        await lock.lock(signal(), noop);
        inside++;
        assert.equal(inside, 1, 'two holders at once');
        await new Promise((r) => setImmediate(r));
        inside--;
        turns++;
        await lock.unlock();
      }));
      assert.equal(turns, 6);
    }));

    it('an aborted waiter at another instance stops at once with ERR_UPLOAD_LOCKED and takes nothing', withSpace(async (space) => {
      const [a, b] = [await space.open(5_000), await space.open(30_000)];
      const { lock: held, asked } = await holdIgnoringRequests(a, 'u');
      const ac = new AbortController();
      const waiting = b.newLock('u').lock(ac.signal, noop);
      await asked;
      ac.abort(new Error('client went away'));
      await assert.rejects(waiting, (e: unknown) => AppError.is(e, 'ERR_UPLOAD_LOCKED'));
      await held.unlock();
      const again = b.newLock('u');
      await again.lock(signal(), noop);
      await again.unlock();
    }));

    it('a lock can be taken again after it was unlocked, by either instance', withSpace(async (space) => {
      const [a, b] = [await space.open(5_000), await space.open(5_000)];
      for (const locker of [a, b, a]) {
        const lock = locker.newLock('again');
        await lock.lock(signal(), noop);
        await lock.unlock();
      }
    }));

    // Takeover (issue 18.2): the locker carries the release request, with who asks, to the
    // holder's handler, at its own instance; the holder decides by its own idle clock; the locker
    // adds no delay of its own and never takes the lock from a holder that has not let go.
    it('a release request reaches the holder, at its instance, with the requester named', withSpace(async (space) => {
      const [a, b] = [await space.open(60_000), await space.open(60_000)];
      const holder = a.newLock('t1', { clientAddress: '127.0.0.2' });
      const seen: ReleaseRequest[] = [];
      await holder.lock(signal(), (request: ReleaseRequest) => {
        seen.push(request);
        void holder.unlock();
      });
      const waiter = b.newLock('t1', { clientAddress: '127.0.0.3' });
      await waiter.lock(signal(), noop);
      assert.equal(seen[0]?.requester?.clientAddress, '127.0.0.3');
      await waiter.unlock();
    }));

    // A locker that waited for a drain of its own would run into the test's timeout.
    it('a silent holder that ends at once hands the lock over at once, whatever the acquire timeout', { timeout: 10_000 }, withSpace(async (space) => {
      const [a, b] = [await space.open(60_000), await space.open(60_000)];
      const holder = a.newLock('t2', { clientAddress: 'a' });
      let released = false;
      await holder.lock(signal(), () => {
        released = true;
        void holder.unlock();
      });
      const waiter = b.newLock('t2', { clientAddress: 'b' });
      await waiter.lock(signal(), noop);
      assert.equal(released, true);
      await waiter.unlock();
    }));

    it('a holder still receiving keeps the lock until it unlocks itself (the drain is its decision)', withSpace(async (space) => {
      const locker = await space.open(60_000);
      const { lock: held, asked } = await holdIgnoringRequests(locker, 't3');
      let acquired = false;
      const waiter = locker.newLock('t3', { clientAddress: 'b' });
      const waiting = waiter.lock(signal(), noop).then(() => (acquired = true));
      await asked;
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      assert.equal(acquired, false, 'the waiter must not get a lock the holder still holds');
      await held.unlock(); // drained
      await waiting;
      await waiter.unlock();
    }));

    it('a crashed holder\'s lock frees itself and a waiter elsewhere gets it (capability)', withSpace(async (space, t) => {
      if (!space.crash) return t.skip('instances cannot crash apart from their locks');
      const [a, b] = [await space.open(5_000), await space.open(30_000)];
      const { asked } = await holdIgnoringRequests(a, 'u');
      const waiter = b.newLock('u');
      const waiting = waiter.lock(signal(), noop);
      await asked;
      await space.crash(a);
      await waiting;
      await waiter.unlock();
    }));
  });
}
