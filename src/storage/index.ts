export type { PublishedStore, PublishedFile, PublishMeta, PublishOutcome } from './published-store.js';
export { FilePublishedStore, type LinkPublishOutcome, type PublishRecord, type PublishStepHooks, type StoredRecord } from './file-published-store.js';
export { ContentAddressedStore, type AdoptedContent } from './content-addressed-store.js';
export { TusFileStore, type UploadSummary } from './tus-file-store.js';
export { MemoryLocker } from './memory-locker.js';
export type { TakeoverLocker, TakeoverLock, LockRequester, ReleaseRequest, ReleaseHandler } from './takeover-locker.js';
export { finishedTusUploads, type FinishedTusUpload } from './finished-tus-uploads.js';
export { UnfinishedUploads, type UnfinishedUpload } from './unfinished-uploads.js';
