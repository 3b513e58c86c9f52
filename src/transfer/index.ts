export { ByteLimit } from './byte-limit.js';
export { MB, SIZE_CLASS_LIMITS, sizeClassOf } from './size-class.js';
export { transferLimits, type TransferLimits, type SizeClass } from './timeouts.js';
export { watchBody, judgeBody, type BodyVerdict, type WatchState } from './body-watchdog.js';
export { ConcurrencyPermits, pickNextWaiter, type ConcurrencyPermitsOptions, type PermitDecision, type Waiter } from './concurrency-permits.js';
