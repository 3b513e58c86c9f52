/**
 * Upload locks shared by every instance through Redis, in the @tus/utils Locker shape.
 *
 * A lock is the key `<prefix>lock:<id>` holding the holder's random token, with a TTL the holder
 * renews while it holds the lock, so the lock of a crashed instance expires by itself. A request
 * that wants a held lock publishes a release request on the locker channel; the holder's instance
 * receives it and calls the holder's `requestRelease` (the holder decides how fast to stop). The
 * unlock script deletes the key and publishes "unlocked" in one step, which wakes waiters at every
 * instance. Messages can be lost (a subscriber reconnecting), so a waiter also re-checks on a slow
 * timer with backoff, never later than the holder's key would expire.
 *
 * A holder that has not renewed for three quarters of the TTL while a renewal failed (Redis
 * unreachable) counts its lock as lost and is asked to release, before its key can expire: a
 * request elsewhere never gets the key while this one still believes it holds it. Without a
 * failure (this process paused, Redis slow) it tries once more and gives up at the key's expiry. The times are taken
 * when a script is sent, not when its answer comes, so a slow answer cannot stretch them.
 */
import { randomBytes } from 'node:crypto';
import type { LockRequester, ReleaseHandler, TakeoverLock, TakeoverLocker } from './takeover-locker.js';
import type { Redis } from 'ioredis';
import { AppError } from '../errors.js';
import { LuaScript } from './lua-script.js';

const ACQUIRE = new LuaScript(`
-- KEYS[1] lock key
-- ARGV[1] the new holder's token, ARGV[2] TTL in ms
-- Reply: 0 when the lock was taken; otherwise the ms until the current holder's key expires
--        (at least 1, so a key that vanished meanwhile is retried at once)
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 1 then return 1 end
return ttl
`);

const RENEW = new LuaScript(`
-- KEYS[1] lock key
-- ARGV[1] holder token, ARGV[2] TTL in ms
-- Reply: 1 renewed; 0 the key expired or belongs to another holder (the lock is lost)
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`);

const RELEASE = new LuaScript(`
-- KEYS[1] lock key
-- ARGV[1] holder token, ARGV[2] locker channel, ARGV[3] the "unlocked" message for this id
-- Reply: 1 deleted and waiters notified; 0 the key had expired or belongs to another holder
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
`);

/**
 * Channel messages: one letter for the kind, then the upload id; a release request may add a
 * newline and the requester as JSON (takeover-locker.ts), for the holder's decision and log.
 */
const RELEASE_REQUEST = 'R';
const UNLOCKED = 'U';

export interface RedisLockerEvents {
  /** A held lock could not be renewed (expired, taken, or Redis unreachable for 3/4 of the TTL); its holder was asked to release. */
  onLockLost?(id: string, reason: 'taken' | 'unreachable'): void;
  /** A Redis call made on a timer failed; the locker keeps going. */
  onError?(err: unknown, during: string): void;
}

export interface RedisLockerOptions {
  /** Runs the scripts and PUBLISH; may be shared. A duplicate of it subscribes (see start). */
  readonly redis: Redis;
  /** Namespace of the keys and channel, e.g. 'hfs:'. Instances that share locks share it. */
  readonly keyPrefix: string;
  /** A waiter that has not got the lock by then fails with ERR_UPLOAD_LOCKED (423). */
  readonly acquireTimeoutMs: number;
  /** Lifetime of a lock key without renewal: how long a crashed instance's lock lingers. Default 10 s. */
  readonly lockTtlMs?: number;
  /** A waiter's first re-check when no notification came; doubles up to maxRecheckMs. Default 25 ms. */
  readonly firstRecheckMs?: number;
  /** Longest pause between a waiter's re-checks when no notification came. Default 1 s. */
  readonly maxRecheckMs?: number;
  readonly events?: RedisLockerEvents;
}

type LockerState = 'created' | 'running' | 'closed';

export class RedisLocker implements TakeoverLocker {
  readonly #o: RedisLockerOptions;
  readonly ttlMs: number;
  readonly channel: string;
  #state: LockerState = 'created';
  #subscriber: Redis | undefined;
  /** @internal locks this instance holds, by upload id */
  readonly held = new Map<string, RedisLock>();
  /** @internal wake-ups of this instance's waiters, by upload id */
  readonly waiters = new Map<string, Set<() => void>>();

  constructor(options: RedisLockerOptions) {
    if (!(options.acquireTimeoutMs > 0)) throw new RangeError('acquireTimeoutMs must be > 0');
    this.#o = options;
    this.ttlMs = options.lockTtlMs ?? 10_000;
    if (!(this.ttlMs >= 30)) throw new RangeError('lockTtlMs must be >= 30');
    this.channel = `${options.keyPrefix}locks`;
  }

  get options(): RedisLockerOptions {
    return this.#o;
  }

  /** Subscribes to the locker channel on a duplicate connection; locks may be taken once it resolves. */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new Error(`redis locker cannot start from ${this.#state}`);
    this.#state = 'running';
    const subscriber = this.#o.redis.duplicate();
    this.#subscriber = subscriber;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.#onMessage(message);
    });
    await subscriber.subscribe(this.channel);
  }

  /** Unsubscribes and stops renewing. Locks still held expire by TTL at the other instances. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    for (const lock of this.held.values()) lock.stopRenewing();
    this.held.clear();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) await subscriber.quit().catch(() => subscriber.disconnect());
  }

  newLock(id: string, requester?: LockRequester): TakeoverLock {
    if (this.#state !== 'running') throw new Error('redis locker is not started');
    return new RedisLock(this, id, requester);
  }

  keyOf(id: string): string {
    return `${this.#o.keyPrefix}lock:${id}`;
  }

  /** @internal */
  async publish(kind: typeof RELEASE_REQUEST, id: string, requester?: LockRequester): Promise<void> {
    await this.#o.redis.publish(this.channel, kind + id + (requester ? `\n${JSON.stringify(requester)}` : ''));
  }

  /** @internal */
  lost(id: string, reason: 'taken' | 'unreachable'): void {
    this.#o.events?.onLockLost?.(id, reason);
  }

  /** @internal */
  error(err: unknown, during: string): void {
    this.#o.events?.onError?.(err, during);
  }

  #onMessage(message: string): void {
    const kind = message[0];
    const newline = message.indexOf('\n');
    const id = message.slice(1, newline === -1 ? undefined : newline);
    if (kind === UNLOCKED) {
      for (const wake of [...(this.waiters.get(id) ?? [])]) wake();
    } else if (kind === RELEASE_REQUEST) {
      this.held.get(id)?.askToRelease(newline === -1 ? undefined : parseRequester(message.slice(newline + 1)));
    }
  }
}

function parseRequester(text: string): LockRequester | undefined {
  try {
    const value = JSON.parse(text) as { clientAddress?: unknown };
    return typeof value.clientAddress === 'string' ? { clientAddress: value.clientAddress } : undefined;
  } catch {
    return undefined;
  }
}

type LockState = 'idle' | 'acquiring' | 'held' | 'lost';

class RedisLock implements TakeoverLock {
  #state: LockState = 'idle';
  #token = '';
  #requestRelease: ReleaseHandler = () => {};
  #renewTimer: NodeJS.Timeout | undefined;
  /** Fires when the lock was not renewed in time (see the module comment). */
  #deadline: NodeJS.Timeout | undefined;
  /** A renewal failed since the last one that succeeded. */
  #renewFailed = false;

  constructor(private readonly locker: RedisLocker, private readonly id: string, private readonly requester: LockRequester | undefined) {}

  async lock(signal: AbortSignal, requestRelease: ReleaseHandler): Promise<void> {
    if (this.#state !== 'idle') throw new Error(`upload lock ${this.id} is already ${this.#state}`);
    this.#state = 'acquiring';
    let acquiredAt: number;
    try {
      acquiredAt = await this.#acquire(signal);
    } catch (err) {
      this.#state = 'idle';
      throw err;
    }
    this.#state = 'held';
    this.#requestRelease = requestRelease;
    this.#renewedAt(acquiredAt);
    this.locker.held.set(this.id, this);
    // Three renewals fit before the 3/4 deadline: one slow or failed answer does not lose the lock.
    this.#renewTimer = setInterval(() => void this.#renew(), Math.max(10, Math.floor(this.locker.ttlMs / 5)));
    this.#renewTimer.unref();
  }

  async unlock(): Promise<void> {
    if (this.#state === 'lost') {
      this.#state = 'idle'; // already gone; nothing left to delete
      return;
    }
    if (this.#state !== 'held') throw new Error(`unlock of upload lock ${this.id} that this request does not hold`);
    this.#state = 'idle';
    this.stopRenewing();
    const { redis } = this.locker.options;
    await RELEASE.run(redis, [this.locker.keyOf(this.id)], [this.#token, this.locker.channel, UNLOCKED + this.id]);
  }

  /** @internal a release request for this id reached this instance, or the lock was lost */
  askToRelease(requester: LockRequester | undefined, lockLost = false): void {
    if (this.#state !== 'held') return;
    void Promise.resolve()
      .then(() => this.#requestRelease({ requester, ...(lockLost && { lockLost: true as const }) }))
      .catch((err: unknown) => this.locker.error(err, 'requestRelease'));
  }

  /** @internal */
  stopRenewing(): void {
    clearInterval(this.#renewTimer);
    clearTimeout(this.#deadline);
    this.#renewTimer = undefined;
    this.#deadline = undefined;
    if (this.locker.held.get(this.id) === this) this.locker.held.delete(this.id);
  }

  /** Resolves when the script that took the key was sent: the key lives a TTL from then at least. */
  async #acquire(signal: AbortSignal): Promise<number> {
    const { redis, acquireTimeoutMs, firstRecheckMs = 25, maxRecheckMs = 1_000 } = this.locker.options;
    const deadline = Date.now() + acquireTimeoutMs;
    const key = this.locker.keyOf(this.id);
    this.#token = randomBytes(12).toString('base64url');
    let recheckMs = firstRecheckMs;
    for (;;) {
      if (signal.aborted) throw new AppError('ERR_UPLOAD_LOCKED', { cause: signal.reason });
      // Listen before trying, so an unlock between a failed try and the wait still wakes us.
      const wake = this.#listenForUnlock();
      try {
        const sentAt = Date.now();
        const expiresInMs = Number(await ACQUIRE.run(redis, [key], [this.#token, this.locker.ttlMs]));
        if (expiresInMs === 0) return sentAt;
        await this.locker.publish(RELEASE_REQUEST, this.id, this.requester);
        const remainingMs = deadline - Date.now();
        if (remainingMs <= 0) throw new AppError('ERR_UPLOAD_LOCKED');
        await wake.wait(Math.min(recheckMs, expiresInMs, remainingMs), signal);
      } finally {
        wake.stop();
      }
      recheckMs = Math.min(recheckMs * 2, maxRecheckMs);
    }
  }

  /** Resolves `wait` on an "unlocked" message for this id, after `ms`, or rejects on abort. */
  #listenForUnlock(): { wait(ms: number, signal: AbortSignal): Promise<void>; stop(): void } {
    let woken = false;
    let onWake = () => {
      woken = true;
    };
    const wake = () => onWake();
    const set = this.locker.waiters.get(this.id) ?? new Set<() => void>();
    set.add(wake);
    this.locker.waiters.set(this.id, set);
    return {
      wait: (ms, signal) =>
        new Promise<void>((resolve, reject) => {
          if (woken) return resolve();
          const done = (err?: AppError) => {
            clearTimeout(timer);
            signal.removeEventListener('abort', onAbort);
            if (err) reject(err);
            else resolve();
          };
          const onAbort = () => done(new AppError('ERR_UPLOAD_LOCKED', { cause: signal.reason }));
          const timer = setTimeout(() => done(), ms);
          onWake = () => done();
          signal.addEventListener('abort', onAbort, { once: true });
        }),
      stop: () => {
        set.delete(wake);
        if (set.size === 0 && this.locker.waiters.get(this.id) === set) this.locker.waiters.delete(this.id);
      },
    };
  }

  async #renew(): Promise<void> {
    if (this.#state !== 'held') return;
    const { redis } = this.locker.options;
    try {
      const sentAt = Date.now();
      const renewed = Number(await RENEW.run(redis, [this.locker.keyOf(this.id)], [this.#token, this.locker.ttlMs]));
      if (this.#state !== 'held') return;
      if (renewed === 1) return this.#renewedAt(sentAt);
      this.#loseLock('taken');
    } catch (err) {
      this.#renewFailed = true;
      this.locker.error(err, 'renew lock'); // the deadline decides when the lock counts as lost
    }
  }

  /**
   * The key lives until `sentAt` + TTL. At 3/4 of that without a renewal: lost, if a renewal
   * failed meanwhile (Redis unreachable). If none failed, this process was paused or Redis is
   * slow: one more renewal now, and the lock counts as lost only when the key itself would expire.
   */
  #renewedAt(sentAt: number): void {
    this.#renewFailed = false;
    this.#armDeadline(sentAt + Math.floor((this.locker.ttlMs * 3) / 4), () => {
      if (this.#renewFailed) return this.#loseLock('unreachable');
      this.#armDeadline(sentAt + this.locker.ttlMs, () => this.#loseLock('unreachable'));
      void this.#renew();
    });
  }

  #armDeadline(at: number, fire: () => void): void {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => {
      if (this.#state === 'held') fire();
    }, Math.max(0, at - Date.now()));
    this.#deadline.unref();
  }

  #loseLock(reason: 'taken' | 'unreachable'): void {
    this.askToRelease(undefined, true);
    this.#state = 'lost';
    this.stopRenewing();
    this.locker.lost(this.id, reason);
  }
}
