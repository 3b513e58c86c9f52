/** Intake: the one contract every upload front door translates into (see intake.ts). */
export { Intake, type IntakeDeps, type UploadClaim } from './intake.js';
export { type NewUploadLimits } from './gate.js';
export { checkUpload, uploadPolicyFromConfig, type UploadPolicy, type UploadVerdict } from './upload-policy.js';
export {
  UploadLifecycle,
  endError,
  socketIdleMsOf,
  tusBodyEnder,
  type BodyEnder,
  type EndReason,
  type GuardDeps,
  type GuardRequest,
  type LifecycleState,
} from './body-guard.js';
