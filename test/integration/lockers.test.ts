/** Runs the Locker conformance suite against the memory locker and the Redis locker (real redis-server). */
import type { Locker } from '@tus/utils';
import { MemoryLocker, RedisLocker } from '../../src/storage/index.js';
import { describeLocker } from '../conformance/locker.suite.js';
import { uniquePrefix, useRedis } from '../helpers/redis.js';

describeLocker('MemoryLocker', {
  space: async () => {
    const held = new MemoryLocker(1).held; // one process: every locker shares its locks
    return { open: async (ms) => new MemoryLocker(ms, held), close: async () => {} };
  },
});

/** Short enough that the crash case waits about a second, long enough to renew on a busy machine. */
const TEST_LOCK_TTL_MS = 1_000;

const redis = useRedis();

describeLocker('RedisLocker', {
  space: async () => {
    const keyPrefix = uniquePrefix('locker');
    const lockers: RedisLocker[] = [];
    return {
      // Each locker has its own connection (and subscriber): one instance each.
      open: async (acquireTimeoutMs) => {
        const locker = new RedisLocker({ redis: redis.clients.open(), keyPrefix, acquireTimeoutMs, lockTtlMs: TEST_LOCK_TTL_MS });
        await locker.start();
        lockers.push(locker);
        return locker;
      },
      // The instance stops renewing and vanishes from Redis without deleting its keys.
      crash: async (locker: Locker) => {
        const redisLocker = locker as RedisLocker;
        await redisLocker.close();
        redisLocker.options.redis.disconnect();
      },
      close: async () => {
        for (const locker of lockers) await locker.close();
      },
    };
  },
});
