export type { CompletedUpload, UploadFinalizer } from './types.js';
export { DirectFinalizer } from './direct-finalizer.js';
