/**
 * The locker contract this server needs on top of @tus/utils' Locker (issue 18.2): a lock is
 * taken on behalf of a requester, and a release request carries that requester to the holder's
 * handler, which decides by its own idle clock whether to end at once or drain. The locker only
 * delivers the request (in-process, or to the holder's instance through Redis) and never takes
 * a lock away from a holder that has not unlocked. Every locker passes
 * test/conformance/locker.suite.ts.
 */
import type { Lock, Locker } from '@tus/utils';

export interface LockRequester {
  /** The asking request's client address, for the takeover log line. */
  clientAddress: string;
}

export interface ReleaseRequest {
  /** Undefined when the asker did not say who it is (a plain @tus/utils caller). */
  requester: LockRequester | undefined;
  /**
   * The holder's lock is gone (a Redis lock not renewed in time): another instance may take it
   * any moment, so the holder stops now instead of draining.
   */
  lockLost?: true;
}

/**
 * The holder's side of a release request. @tus/server passes a handler taking no argument
 * (its delayed abort); handlers of this server read the request.
 */
export type ReleaseHandler = (request: ReleaseRequest) => void | Promise<void>;

export interface TakeoverLock extends Lock {
  lock(signal: AbortSignal, onReleaseRequest: ReleaseHandler): Promise<void>;
}

export interface TakeoverLocker extends Locker {
  newLock(id: string, requester?: LockRequester): TakeoverLock;
}
