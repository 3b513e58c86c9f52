/** The finalization queue's public door: pure cores, the backend contract and its implementations. */
export { MB, SIZE_CLASS_LIMITS, sizeClassOf, type SizeClass } from './size-class.js';
export {
  DEFAULT_AGING_THRESHOLD_MS,
  PRIORITY_TIERS,
  effectiveRank,
  isPriorityTier,
  pickNext,
  tierForSize,
  tierRank,
  tiersInUse,
  type AgingOptions,
  type PriorityLevels,
  type PriorityTier,
  type QueueHead,
} from './priority.js';
export {
  nextRetry,
  retryDelayMs,
  type BackoffOptions,
  type RandomSource,
  type RetryDecision,
  type RetryPolicy,
} from './backoff.js';
export {
  CircuitBreaker,
  DEFAULT_CIRCUIT_BREAKER_OPTIONS,
  type BreakerState,
  type BreakerTransition,
  type BreakerTransitionReason,
  type CircuitBreakerOptions,
} from './circuit-breaker.js';
export {
  JOB_STATES,
  canEnqueueMany,
  type BatchEnqueuer,
  type DeadLetterTarget,
  type EnqueueInput,
  type Job,
  type JobError,
  type JobState,
  type JsonObject,
  type JsonValue,
  type ListDeadOptions,
  type QueueBackend,
  type QueueBackendOptions,
  type QueueCounts,
} from './types.js';
export { emptyCounts, totalInState } from './counts.js';
export { QueueClosedError } from './errors.js';
export { MemoryQueueBackend } from './memory-backend.js';
export {
  SqliteQueueBackend,
  openSqliteQueueBackend,
  type QueueRecovery,
  type SqliteQueueBackendOptions,
} from './sqlite-backend.js';
