/** Finalization: the queued finalizer and what the HTTP layer asks it while files wait. */
export type { CompletedUpload, FinalizeOutcome, UploadFinalizer } from './types.js';
export { FinalizationService } from './finalization-service.js';
export type { AdmissionStep, FinalizationOptions, FinalizeStep, PendingDownload, TusUploads } from './finalization-options.js';
export { finalizationFromConfig, queueDatabasePath, DOWNLOAD_WAIT_MS, type FinalizationParts } from './from-config.js';
export type { IntakeControl, IntakeDecision, IntakeRequest, Pressure } from './intake-gate.js';
export { DeadLetterQueue, toDeadLetter, type DeadLetter } from './dead-letters.js';
// ops (issue 5): offline recovery builds and reads job payloads like the service does.
export { fromPayload, jobIdOf, toPayload, type FinalizeJobPayload } from './job-payload.js';
export type { PipelineStep, PublishTarget } from './pipeline.js';
export { expectedSha256FromHeaders, expectedSha256FromMetadata, type DeclaredChecksum } from './checksum.js';
export { sha256File } from './hash-file.js';
export { signWebhook, type WebhookEvent, type WebhookTarget } from './webhook.js';
// Malware scanning (docs/scanning.md): the pipeline's scan step and the operators' quarantine tools.
export type { ScanSettings } from './finalization-options.js';
export { QuarantineAdmin, type QuarantineAdminOptions, type ReleaseResult } from './quarantine-admin.js';
export type { QuarantinedEvent } from './pipeline.js';
