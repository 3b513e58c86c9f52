/**
 * The tus upload locker of cluster mode: an in-process lock (one writer per upload on this
 * instance, always) plus the Redis lock (one writer across instances) while Redis is reachable.
 * A request at another instance asks the holder to release through the Redis locker's channel;
 * a request here asks through the in-process lock; either way the request (with its requester)
 * reaches the holder's handler, which decides by its own idle clock how it stops.
 *
 * Degraded (Redis unreachable): the in-process lock alone, but never while a lock another
 * instance took through Redis may still be held: a holder counts
 * its Redis lock as lost and stops once it could not renew it for 3/4 of the TTL (RedisLocker),
 * so a lock taken here without Redis waits until the TTL has passed since this instance last
 * reached Redis (`localOnlyFrom`). Otherwise a request cut off with Redis could go on writing an
 * upload that a client finished at another instance meanwhile, into the very file publishing
 * hard-links. When Redis answers again, the requests holding such local-only locks are asked to
 * stop (bytes kept), since new locks are taken through Redis from then on and would not see them.
 * A client that switches instance during a partition (this instance without Redis, others with
 * it) may still write at two instances; tus writes every byte at its own offset, so both write
 * the same bytes at the same places and the slower one gets 409 on its next PATCH. An unlock
 * that cannot reach Redis leaves the key to expire by its TTL.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { AppError } from '../errors.js';
import type { LockRequester, MemoryLocker, RedisLocker, ReleaseHandler, TakeoverLock, TakeoverLocker } from '../storage/index.js';

export interface ClusterLockerOptions {
  readonly local: MemoryLocker;
  /** The Redis locker while Redis answers and it is subscribed to its channel; null otherwise. */
  readonly shared: () => RedisLocker | null;
  /** A Redis call of the locker failed: have reachability checked now. */
  readonly onSharedFailure: (err: unknown, during: string) => void;
  /**
   * Epoch ms from which a lock taken without Redis cannot overlap one another instance took
   * through Redis: when this instance last reached Redis (or started), plus the lock TTL and the
   * reachability check's interval.
   */
  readonly localOnlyFrom: () => number;
}

/** How often a lock waiting to be taken without Redis looks whether Redis answers again. */
const RECHECK_MS = 250;
/** Redis lock calls failing while Redis still counts as reachable: this many, then 423. */
const MAX_SHARED_FAILURES = 8;

export class ClusterLocker implements TakeoverLocker {
  /** Locks held without Redis, with their holders' release handlers. */
  readonly #localOnly = new Map<ClusterLock, ReleaseHandler>();

  constructor(readonly options: ClusterLockerOptions) {}

  newLock(id: string, requester?: LockRequester): TakeoverLock {
    return new ClusterLock(this.options, this.#localOnly, id, requester);
  }

  /** Redis answers again: every request holding a lock taken without it is asked to stop now. */
  endLocalOnly(): void {
    for (const handler of this.#localOnly.values()) void Promise.resolve(handler({ requester: undefined, lockLost: true })).catch(() => {});
    this.#localOnly.clear();
  }
}

class ClusterLock implements TakeoverLock {
  readonly #o: ClusterLockerOptions;
  readonly #localOnly: Map<ClusterLock, ReleaseHandler>;
  readonly #local: TakeoverLock;
  #shared: TakeoverLock | null = null;

  constructor(options: ClusterLockerOptions, localOnly: Map<ClusterLock, ReleaseHandler>, private readonly id: string, private readonly requester: LockRequester | undefined) {
    this.#o = options;
    this.#localOnly = localOnly;
    this.#local = options.local.newLock(id, requester);
  }

  async lock(signal: AbortSignal, onReleaseRequest: ReleaseHandler): Promise<void> {
    await this.#local.lock(signal, onReleaseRequest);
    try {
      // Through Redis whenever it answers; in-process alone only while it does not and once no
      // other instance's Redis lock can still be held. A wait for that looks at Redis again
      // every so often: Redis back meanwhile, the lock is taken through it.
      let sharedFailures = 0;
      for (;;) {
        const sharedLocker = this.#o.shared();
        if (sharedLocker !== null) {
          const shared = sharedLocker.newLock(this.id, this.requester);
          try {
            await shared.lock(signal, onReleaseRequest);
            this.#shared = shared;
            return;
          } catch (err) {
            if (AppError.is(err, 'ERR_UPLOAD_LOCKED')) throw err; // held elsewhere past the acquire timeout, or the request went away: 423
            this.#o.onSharedFailure(err, 'lock'); // a reachability check now
            // Redis answers its PING but not this lock (out of memory, a broken connection): after
            // a few tries 423 (clients retry), never a lock another instance's Redis lock would not see.
            if (++sharedFailures >= MAX_SHARED_FAILURES || Date.now() >= this.#o.localOnlyFrom()) throw new AppError('ERR_UPLOAD_LOCKED', { cause: err });
          }
        }
        const waitMs = this.#o.localOnlyFrom() - Date.now();
        if (sharedLocker === null && waitMs <= 0) {
          this.#localOnly.set(this, onReleaseRequest);
          return;
        }
        await delay(Math.min(Math.max(waitMs, 0), RECHECK_MS) || RECHECK_MS, undefined, { signal }).catch((err: unknown) => {
          throw new AppError('ERR_UPLOAD_LOCKED', { cause: err }); // the request went away while it waited
        });
      }
    } catch (err) {
      await this.#local.unlock();
      throw err;
    }
  }

  async unlock(): Promise<void> {
    this.#localOnly.delete(this);
    const shared = this.#shared;
    this.#shared = null;
    if (shared !== null) {
      try {
        await shared.unlock();
      } catch (err) {
        this.#o.onSharedFailure(err, 'unlock'); // the key expires by its TTL
      }
    }
    await this.#local.unlock();
  }
}
