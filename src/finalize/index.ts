/**
 * Finalization: the queued finalizer (FinalizationService), its intake gate (service.intake),
 * queue administration (service.admin), dead letters, the pipeline steps and their telemetry.
 */
export type { CompletedUpload, FinalizeOutcome, UploadFinalizer } from './types.js';
export { FinalizationService } from './finalization-service.js';
export type { FinalizationOptions, JobAdmissionStep, FinalizeStep, PendingDownload, PublishAnnouncer, TusUploads } from './finalization-options.js';
export { contentStoreFromConfig, finalizationFromConfig, queueDatabasePath, DOWNLOAD_WAIT_MS, type ClusterFinalization, type FinalizationParts } from './from-config.js';
export { IntakeGate, type IntakeControl, type IntakeDecision, type PendingUpload, type IntakeRequest, type Pressure } from './intake-gate.js';
export { QueueAdmin, type BreakerDependency, type BreakerStatus } from './queue-admin.js';
export type { InstanceStatus } from './instance-status.js';
export { DeadLetterQueue, toDeadLetter, type DeadLetter } from './dead-letters.js';
// ops (issue 5): offline recovery builds and reads job payloads like the service does.
export { fromPayload, jobIdOf, toPayload, type FinalizeJobPayload } from './job-payload.js';
export type { DedupStore, PipelineStep, PublishTarget } from './pipeline.js';
export { fileContentStoreFromConfig, openQuarantineStore } from './storage-from-config.js';
// s3-stores.ts (s3StoresFromConfig, quarantineStoreOf, incomingObjectsOf) loads the AWS SDK: imported by path where needed.
export type { S3Stores } from './s3-stores.js';
export { expectedSha256FromHeaders, expectedSha256FromMetadata, type DeclaredChecksum } from './checksum.js';
export { sha256File } from './hash-file.js';
export {
  CircuitBreaker,
  DEFAULT_CIRCUIT_BREAKER_OPTIONS,
  type BreakerState,
  type BreakerTransition,
  type BreakerTransitionReason,
  type CircuitBreakerOptions,
} from './circuit-breaker.js';
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
export { signWebhook, type WebhookEvent, type WebhookTarget } from './webhook.js';
// Malware scanning (docs/scanning.md): the pipeline's scan step and the operators' quarantine tools.
export type { ScanSettings } from './finalization-options.js';
export { QuarantineAdmin, type QuarantineAdminOptions, type ReleaseResult } from './quarantine-admin.js';
export type { QuarantinedEvent } from './pipeline.js';
// Cluster mode's local journal is the single-node queue's SQLite backend: its spill lines are the same.
export { logSpill } from './telemetry.js';
export { completedTusUpload } from './completed-tus-upload.js';
