/**
 * The cluster-mode upload locker (in-process lock + Redis lock) on a real redis-server: the Locker
 * conformance suite with one locker per "instance", and degraded mode, where the in-process lock
 * alone keeps one writer per upload on each instance and a Redis failure never fails a request.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Locker } from '@tus/utils';
import { ClusterLocker } from '../../src/cluster/index.js';
import { MemoryLocker, RedisLocker } from '../../src/storage/index.js';
import { describeLocker } from '../conformance/locker.suite.js';
import { uniquePrefix, useRedis } from '../helpers/redis.js';

const TEST_LOCK_TTL_MS = 1_000;
const noop = () => {};
const signal = () => new AbortController().signal;

const redis = useRedis();

describeLocker('ClusterLocker', {
  space: async () => {
    const keyPrefix = uniquePrefix('cluster-locker');
    const shared = new Map<Locker, RedisLocker>();
    return {
      // One instance: its own in-process locks, its own Redis connection and subscriber.
      open: async (acquireTimeoutMs) => {
        const redisLocker = new RedisLocker({ redis: redis.clients.open(), keyPrefix, acquireTimeoutMs, lockTtlMs: TEST_LOCK_TTL_MS });
        await redisLocker.start();
        const locker = new ClusterLocker({ local: new MemoryLocker(acquireTimeoutMs), shared: () => redisLocker, onSharedFailure: noop, localOnlyFrom: () => 0 });
        shared.set(locker, redisLocker);
        return locker;
      },
      crash: async (locker) => {
        const redisLocker = shared.get(locker)!;
        await redisLocker.close();
        redisLocker.options.redis.disconnect();
      },
      close: async () => {
        for (const l of shared.values()) await l.close();
      },
    };
  },
});

describe('ClusterLocker without Redis (degraded mode)', () => {
  it('keeps one holder per upload on the instance and asks it to release', async () => {
    const failures: string[] = [];
    const locker = new ClusterLocker({ local: new MemoryLocker(5_000), shared: () => null, onSharedFailure: (_e, during) => failures.push(during), localOnlyFrom: () => 0 });
    const holder = locker.newLock('u');
    let asked = 0;
    await holder.lock(signal(), () => {
      asked++;
      void holder.unlock();
    });
    const next = locker.newLock('u');
    await next.lock(signal(), noop);
    assert.equal(asked, 1, 'the holder was asked to release');
    await next.unlock();
    assert.deepEqual(failures, []);
  });

  it('a Redis lock call that fails while Redis still counts as reachable is reported and retried, then 423: never an in-process lock another instance would not see', async () => {
    const failures: string[] = [];
    const broken = new RedisLocker({ redis: redis.clients.open(), keyPrefix: uniquePrefix('broken'), acquireTimeoutMs: 1_000 });
    await broken.start();
    broken.options.redis.disconnect(); // every command of this connection fails now
    let from = Date.now() + 600; // a Redis lock taken elsewhere could live this long
    const locker = new ClusterLocker({ local: new MemoryLocker(1_000), shared: () => broken, onSharedFailure: (_e, during) => failures.push(during), localOnlyFrom: () => from });
    await assert.rejects(locker.newLock('u').lock(signal(), noop), (err: Error & { code?: string }) => err.code === 'ERR_UPLOAD_LOCKED');
    assert.ok(failures.length >= 2 && failures.every((f) => f === 'lock'), `retried: ${failures.join(', ')}`);
    from = 0;
    const next = locker.newLock('u');
    await assert.rejects(next.lock(signal(), noop), /busy|ERR_UPLOAD_LOCKED|retry/i);
    await broken.close();
  });

  it('a lock waiting out the fence is taken through Redis once it answers again', async () => {
    let shared: RedisLocker | null = null;
    const redisLocker = new RedisLocker({ redis: redis.clients.open(), keyPrefix: uniquePrefix('back'), acquireTimeoutMs: 5_000 });
    await redisLocker.start();
    const locker = new ClusterLocker({ local: new MemoryLocker(5_000), shared: () => shared, onSharedFailure: noop, localOnlyFrom: () => Date.now() + 60_000 });
    const taking = locker.newLock('u').lock(signal(), noop);
    shared = redisLocker; // Redis answers again while the lock waits
    await taking;
    assert.notEqual(await redis.clients.open().get(redisLocker.keyOf('u')), null, 'the Redis key is held');
    await redisLocker.close();
  });

  it('waits until no Redis lock taken before the outage can still be held, then holds locally; a request gone meanwhile gets 423', async () => {
    let from = Date.now() + 60_000;
    const locker = new ClusterLocker({ local: new MemoryLocker(5_000), shared: () => null, onSharedFailure: noop, localOnlyFrom: () => from });
    const gone = new AbortController();
    const waiting = locker.newLock('u').lock(gone.signal, noop);
    let settled = false;
    void waiting.then(() => (settled = true), () => (settled = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false, 'not granted while another instance may hold the Redis lock');
    gone.abort();
    await assert.rejects(waiting, (err: Error & { code?: string }) => err.code === 'ERR_UPLOAD_LOCKED');
    from = Date.now() + 50;
    const next = locker.newLock('u');
    await next.lock(signal(), noop); // the in-process lock was given back by the request that left
    await next.unlock();
  });

  it('when Redis answers again, requests holding locks taken without it are asked to stop at once', async () => {
    const locker = new ClusterLocker({ local: new MemoryLocker(5_000), shared: () => null, onSharedFailure: noop, localOnlyFrom: () => 0 });
    const asked: Array<boolean | undefined> = [];
    const a = locker.newLock('a');
    const b = locker.newLock('b');
    await a.lock(signal(), (r) => void asked.push(r.lockLost));
    await b.lock(signal(), (r) => void asked.push(r.lockLost));
    await b.unlock(); // let go before: not asked
    locker.endLocalOnly();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(asked, [true]);
    await a.unlock();
  });
});
