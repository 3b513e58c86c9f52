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
        const locker = new ClusterLocker({ local: new MemoryLocker(acquireTimeoutMs), shared: () => redisLocker, onSharedFailure: noop });
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
    const locker = new ClusterLocker({ local: new MemoryLocker(5_000), shared: () => null, onSharedFailure: (_e, during) => failures.push(during) });
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

  it('a Redis call that fails while locking leaves the in-process lock and reports the failure', async () => {
    const failures: string[] = [];
    const broken = new RedisLocker({ redis: redis.clients.open(), keyPrefix: uniquePrefix('broken'), acquireTimeoutMs: 1_000 });
    await broken.start();
    broken.options.redis.disconnect(); // every command of this connection fails now
    const locker = new ClusterLocker({ local: new MemoryLocker(1_000), shared: () => broken, onSharedFailure: (_e, during) => failures.push(during) });
    const lock = locker.newLock('u');
    await lock.lock(signal(), noop);
    assert.deepEqual(failures, ['lock']);
    const second = locker.newLock('u');
    await assert.rejects(second.lock(signal(), noop), /busy/, 'still exclusive on this instance');
    await lock.unlock();
    await broken.close();
  });
});
