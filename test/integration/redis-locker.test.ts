/** What the Redis locker does beyond the Locker conformance suite, against a real redis-server. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RedisLocker, type RedisLockerOptions } from '../../src/storage/index.js';
import { RedisClients, startRedis, uniquePrefix, type RedisServer } from '../helpers/redis.js';
import { REPO_ROOT } from '../helpers/server.js';
import { startService } from '../helpers/service.js';

let redis: RedisServer;
let clients: RedisClients;
const lockers: RedisLocker[] = [];
before(async () => {
  redis = await startRedis();
  clients = new RedisClients(redis.url);
});
after(async () => {
  for (const l of lockers) await l.close();
  await clients.closeAll();
  await redis.stop();
});

async function openLocker(options: Partial<RedisLockerOptions> & { keyPrefix: string }): Promise<RedisLocker> {
  const locker = new RedisLocker({ redis: clients.open(), acquireTimeoutMs: 5_000, ...options });
  await locker.start();
  lockers.push(locker);
  return locker;
}

const signal = () => new AbortController().signal;
const TEN_MINUTES = 600_000;

describe('RedisLocker', () => {
  // Re-checks ten minutes apart and a key that lives as long: only the notifications can make
  // this test finish before its own deadline.
  it('delivers release requests and wake-ups by notification, not by polling', { timeout: 30_000 }, async () => {
    const keyPrefix = uniquePrefix('notify');
    const slow = { keyPrefix, lockTtlMs: TEN_MINUTES, firstRecheckMs: TEN_MINUTES, maxRecheckMs: TEN_MINUTES, acquireTimeoutMs: TEN_MINUTES };
    const [a, b] = [await openLocker(slow), await openLocker(slow)];
    const holder = a.newLock('u');
    await holder.lock(signal(), () => void holder.unlock());
    const waiter = b.newLock('u');
    await waiter.lock(signal(), () => {});
    await waiter.unlock();
  });

  it('a holder whose key was lost is asked to release, reported, and unlocks quietly', async () => {
    const keyPrefix = uniquePrefix('lost');
    const lost: string[] = [];
    const locker = await openLocker({ keyPrefix, lockTtlMs: 300, events: { onLockLost: (id, reason) => lost.push(`${id}:${reason}`) } });
    const lock = locker.newLock('u');
    let onAsked!: () => void;
    const asked = new Promise<void>((resolve) => (onAsked = resolve));
    await lock.lock(signal(), () => onAsked());
    await clients.open().del(locker.keyOf('u')); // as if it had expired during a long pause
    await asked; // the next renewal finds the key gone
    assert.deepEqual(lost, ['u:taken']);
    await lock.unlock();
    await assert.rejects(lock.unlock(), /does not hold/);
  });

  it('a holder cut off from Redis counts its lock as lost and stops before another instance can take the key', { timeout: 20_000 }, async () => {
    const keyPrefix = uniquePrefix('cut-off');
    const order: string[] = [];
    const cutOff = await openLocker({ keyPrefix, lockTtlMs: 600, events: { onLockLost: (id, reason) => order.push(`lost ${id} ${reason}`) } });
    const holder = cutOff.newLock('u');
    let lockLost!: () => void;
    const released = new Promise<boolean>((resolve) => (lockLost = () => resolve(true)));
    // Release requests still reach it (its subscriber is another connection): it keeps draining
    // through them; only the lost lock makes it stop.
    await holder.lock(signal(), (request) => (request.lockLost ? lockLost() : undefined));
    cutOff.options.redis.disconnect(); // its renewals fail from now on; its key lives one TTL more
    const other = await openLocker({ keyPrefix, acquireTimeoutMs: 10_000 });
    const taking = other.newLock('u');
    const taken = taking.lock(signal(), () => {}).then(() => order.push('taken elsewhere'));
    assert.equal(await released, true, 'asked to stop because the lock is lost (no draining)');
    await taken;
    assert.deepEqual(order, ['lost u unreachable', 'taken elsewhere'], 'the holder stopped before the key could expire');
    await holder.unlock(); // quietly: nothing left to delete
    await taking.unlock();
  });

  it('a killed instance\'s lock expires by TTL and a waiter at another instance gets it', async () => {
    const keyPrefix = uniquePrefix('crash');
    const child = await startService({
      cmd: process.execPath,
      pkg: 'nodejs',
      args: [join(REPO_ROOT, 'dist/test/fixtures/lock-holder.js'), redis.url, keyPrefix, 'u', '1000'],
      ready: /^locked$/,
    });
    try {
      const waiterLocker = await openLocker({ keyPrefix, acquireTimeoutMs: 30_000 });
      const waiter = waiterLocker.newLock('u');
      const waiting = waiter.lock(signal(), () => {});
      await child.waitForOutput(/^release requested$/); // the request crossed processes
      child.proc.kill('SIGKILL');
      await child.exited;
      await waiting;
      assert.equal(await clients.open().get(waiterLocker.keyOf('u')) !== null, true);
      await waiter.unlock();
      assert.equal(await clients.open().exists(waiterLocker.keyOf('u')), 0);
    } finally {
      await child.stop();
    }
  });
});
