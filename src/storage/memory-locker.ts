/**
 * Per-process upload locks in the @tus/utils Locker shape. A request that wants a lock held by
 * another asks the holder to release it, naming itself (the holder decides by its own idle clock:
 * a silent holder ends at once, a receiving one within `lock_drain_timeout`, keeping its bytes)
 * and waits for the unlock notification; it does not poll. A waiter that cannot get the lock in time gets ERR_UPLOAD_LOCKED (423), which clients
 * retry.
 */
import { AppError } from '../errors.js';
import type { LockRequester, ReleaseHandler, TakeoverLock, TakeoverLocker } from './takeover-locker.js';

/** One held lock: how to ask its holder to let go, and who waits for it. */
export interface Held {
  requestRelease: ReleaseHandler;
  waiters: Set<() => void>;
}

export class MemoryLocker implements TakeoverLocker {
  /**
   * @param held locks shared with other MemoryLockers of this process (each keeps its own acquire
   *   timeout); by default this locker's own.
   */
  constructor(
    readonly acquireTimeoutMs: number,
    /** @internal shared with MemoryLock */
    readonly held = new Map<string, Held>(),
  ) {}

  newLock(id: string, requester?: LockRequester): TakeoverLock {
    return new MemoryLock(this, id, requester);
  }
}

class MemoryLock implements TakeoverLock {
  private owned = false;

  constructor(private readonly locker: MemoryLocker, private readonly id: string, private readonly requester: LockRequester | undefined) {}

  async lock(signal: AbortSignal, requestRelease: ReleaseHandler): Promise<void> {
    const deadline = Date.now() + this.locker.acquireTimeoutMs;
    for (;;) {
      if (signal.aborted) throw new AppError('ERR_UPLOAD_LOCKED', { cause: signal.reason });
      const current = this.locker.held.get(this.id);
      if (!current) {
        this.locker.held.set(this.id, { requestRelease, waiters: new Set() });
        this.owned = true;
        return;
      }
      await current.requestRelease({ requester: this.requester });
      if (this.locker.held.get(this.id) !== current) continue; // released while we asked
      await this.waitForUnlock(current, signal, deadline - Date.now());
    }
  }

  async unlock(): Promise<void> {
    const current = this.locker.held.get(this.id);
    if (!this.owned || !current) throw new Error(`unlock of upload lock ${this.id} that this request does not hold`);
    this.owned = false;
    this.locker.held.delete(this.id);
    for (const wake of current.waiters) wake();
  }

  private waitForUnlock(current: Held, signal: AbortSignal, remainingMs: number): Promise<void> {
    if (remainingMs <= 0) return Promise.reject(new AppError('ERR_UPLOAD_LOCKED'));
    // Aborted while asking the holder: 'abort' has fired already and would never reach us.
    if (signal.aborted) return Promise.reject(new AppError('ERR_UPLOAD_LOCKED', { cause: signal.reason }));
    return new Promise((resolve, reject) => {
      const done = (err?: AppError) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        current.waiters.delete(wake);
        if (err) reject(err);
        else resolve();
      };
      const wake = () => done();
      const onAbort = () => done(new AppError('ERR_UPLOAD_LOCKED', { cause: signal.reason }));
      const timer = setTimeout(() => done(new AppError('ERR_UPLOAD_LOCKED')), remainingMs);
      current.waiters.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
