export { ByteLimit } from './byte-limit.js';
export { MB, SIZE_CLASS_LIMITS, sizeClassOf } from './size-class.js';
export { transferLimits, type TransferLimits, type SizeClass } from './timeouts.js';
export { watchBody, judgeBody, type BodyVerdict, type BodyLimits, type BodyWatch } from './body-watchdog.js';
export { BodyMeter, type RateFloor, type FloorJudgement } from './body-meter.js';
export { BodyHolder, decideRelease, realTimers, type TakeoverOutcome, type TakeoverReport, type Requester, type Timers } from './takeover.js';
export { BodySlots, type Claim, type ClaimPolicy } from './body-slots.js';
export { ClientLimits, type CreationVerdict } from './client-limits.js';
export { ConcurrencyPermits, pickNextWaiter, type ConcurrencyPermitsOptions, type PermitDecision, type Waiter } from './concurrency-permits.js';
