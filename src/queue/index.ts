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
  canListJobs,
  canRetryNow,
  type BatchEnqueuer,
  type JobLister,
  type JobRetrier,
  type ListJobsOptions,
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
export { systemClock, type Clock, type TimerHandle } from './clock.js';
export {
  DEFAULT_CLEAR_BAND,
  DEFAULT_INTAKE_DELAY,
  intakeDelayMs,
  pressureLevel,
  queueFill,
  retryAfterSeconds,
  type IntakeDelayOptions,
  type PressureLevel,
  type PressureThresholds,
  type RetryAfterOptions,
} from './pressure.js';
export {
  DEFAULT_HEALTH_THRESHOLDS,
  WORKER_STATUSES,
  WorkerWindow,
  assessWorker,
  type HealthAssessment,
  type HealthThresholds,
  type WorkerSample,
  type WorkerStatus,
} from './worker-health.js';
export { chooseWorker, type LoadBalancingStrategy, type WorkerCandidate } from './load-balancer.js';
export {
  Dispatcher,
  jobErrorOf,
  type DeadReason,
  type DispatcherEvents,
  type DispatcherOptions,
  type JobContext,
  type JobHandler,
  type JobOutcome,
  type RetryReason,
  type WorkerView,
} from './dispatcher.js';
export {
  SpilloverQueueBackend,
  openSpilloverQueueBackend,
  type SpillEvent,
  type SpilloverQueueBackendOptions,
} from './spillover-backend.js';
export { BullmqQueueBackend, type BullmqEvents, type BullmqQueueBackendOptions } from './bullmq-backend.js';
