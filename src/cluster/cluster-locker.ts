/**
 * The tus upload locker of cluster mode: an in-process lock (one writer per upload on this
 * instance, always) plus the Redis lock (one writer across instances) while Redis is reachable.
 * A request at another instance asks the holder to release through the Redis locker's channel;
 * a request here asks through the in-process lock; either way the request (with its requester)
 * reaches the holder's handler, which decides by its own idle clock how it stops.
 *
 * Degraded (Redis unreachable, or a Redis call fails while locking): the in-process lock alone.
 * A client that switches instance meanwhile may then write at two instances; tus writes every
 * byte at its own offset, so both write the same bytes at the same places and the slower one
 * gets 409 on its next PATCH (the client re-asks the offset). An unlock that cannot reach Redis
 * leaves the key to expire by its TTL.
 */
import { AppError } from '../errors.js';
import type { LockRequester, MemoryLocker, RedisLocker, ReleaseHandler, TakeoverLock, TakeoverLocker } from '../storage/index.js';

export interface ClusterLockerOptions {
  readonly local: MemoryLocker;
  /** The Redis locker while Redis answers and it is subscribed to its channel; null otherwise. */
  readonly shared: () => RedisLocker | null;
  /** A Redis call of the locker failed: have reachability checked now. */
  readonly onSharedFailure: (err: unknown, during: string) => void;
}

export class ClusterLocker implements TakeoverLocker {
  constructor(readonly options: ClusterLockerOptions) {}

  newLock(id: string, requester?: LockRequester): TakeoverLock {
    return new ClusterLock(this.options, id, requester);
  }
}

class ClusterLock implements TakeoverLock {
  readonly #o: ClusterLockerOptions;
  readonly #local: TakeoverLock;
  #shared: TakeoverLock | null = null;

  constructor(options: ClusterLockerOptions, private readonly id: string, private readonly requester: LockRequester | undefined) {
    this.#o = options;
    this.#local = options.local.newLock(id, requester);
  }

  async lock(signal: AbortSignal, onReleaseRequest: ReleaseHandler): Promise<void> {
    await this.#local.lock(signal, onReleaseRequest);
    const sharedLocker = this.#o.shared();
    if (sharedLocker === null) return;
    const shared = sharedLocker.newLock(this.id, this.requester);
    try {
      await shared.lock(signal, onReleaseRequest);
      this.#shared = shared;
    } catch (err) {
      if (AppError.is(err, 'ERR_UPLOAD_LOCKED')) {
        await this.#local.unlock();
        throw err; // held elsewhere past the acquire timeout, or the request went away: 423
      }
      this.#o.onSharedFailure(err, 'lock');
    }
  }

  async unlock(): Promise<void> {
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
