export type { CompletedUpload, FinalizeOutcome, UploadFinalizer } from './types.js';
export { DirectFinalizer } from './direct-finalizer.js';
