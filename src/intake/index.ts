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
export { StorageSpace, type SpaceView, type StorageSpaceOptions, type UploadSpaceSource } from './storage-space.js';
export { PromisedBytes, type PromiseState } from './promised-bytes.js';
export { admitGrowth, admitNew, admitResume, headroom, reserveBytes, spaceLevel, type SpaceLevel, type SpaceReading, type SpaceVerdict } from './space-budget.js';
