/** Intake: the one contract every upload front door translates into (see intake.ts). */
export { Intake, type IntakeDeps, type UploadClaim } from './intake.js';
export { checkUpload, uploadPolicyFromConfig, type UploadPolicy, type UploadVerdict } from './upload-policy.js';
export {
  UploadLifecycle,
  endPutBody,
  tusBodyEnder,
  type BodyEnder,
  type EndReason,
  type GuardDeps,
  type GuardRequest,
  type LifecycleState,
} from './body-guard.js';
