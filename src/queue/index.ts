/**
 * The finalization queue's public door, by role:
 *   contract/   what a backend is (QueueBackend, Job, capabilities), priority tiers and aging
 *   backends/   implementations, each with its private storage: memory; sqlite/ (the spillover
 *               backend, its journal and schema, and a read-only view of its file for offline tools);
 *               bullmq (Redis, for clusters)
 *   runtime/    the dispatcher (workers, leases, timeouts), load balancing, worker health, backoff
 */
// --- contract
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
} from './contract/priority.js';
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
  type QueueRecovery,
} from './contract/types.js';
export { emptyCounts, totalInState } from './contract/counts.js';
export { QueueClosedError, QueueUnavailableError } from './contract/errors.js';
// --- backends
export { MemoryQueueBackend } from './backends/memory-backend.js';
export {
  SpilloverQueueBackend,
  openSpilloverQueueBackend,
  type SpillEvent,
  type SpilloverQueueBackendOptions,
} from './backends/sqlite/spillover-backend.js';
export { QueueFile } from './backends/sqlite/queue-file.js';
// The BullMQ backend (cluster mode only) is imported from './backends/bullmq-backend.js' by its users:
// re-exported here it would load bullmq and ioredis (~0.3-0.6 s) into every single-node start.
// --- runtime
export { systemClock, type Clock, type TimerHandle } from './runtime/clock.js';
export {
  nextRetry,
  retryDelayMs,
  type BackoffOptions,
  type RandomSource,
  type RetryDecision,
  type RetryPolicy,
} from './runtime/backoff.js';
export {
  DEFAULT_HEALTH_THRESHOLDS,
  WORKER_STATUSES,
  WorkerWindow,
  assessWorker,
  type HealthAssessment,
  type HealthThresholds,
  type WorkerSample,
  type WorkerStatus,
} from './runtime/worker-health.js';
export { chooseWorker, type LoadBalancingStrategy, type WorkerCandidate } from './runtime/load-balancer.js';
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
} from './runtime/dispatcher.js';
