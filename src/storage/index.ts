export { canDelete, type DeletablePublishedStore, type DeleteOutcome, type PublishedStore, type PublishedFile, type PublishMeta, type PublishOutcome } from './published-store.js';
export { FilePublishedStore, type LinkPublishOutcome, type PublishRecord, type PublishStepHooks, type StoredRecord } from './file-published-store.js';
export { ContentAddressedStore, type AdoptedContent } from './content-addressed-store.js';
export { TusFileStore, type UploadSummary } from './tus-file-store.js';
export { MemoryLocker } from './memory-locker.js';
export { finishedTusUploads, type FinishedTusUpload } from './finished-tus-uploads.js';
export { serverStateOf, clientMetadataOf, isFinishedRecord, LEGACY_SLOT_KEY, LEGACY_TYPE_KEY, type ConcatRole, type StoredUpload, type UploadServerState } from './tus-upload-record.js';
export { CHUNK_ALGORITHMS, HashingTap, TusRequestScope, type ChunkAlgorithm, type ChunkCheck, type CheckedChunkWriter, type TusWriteScope } from './tus-chunk-check.js';
export { RedisLocker, type RedisLockerEvents, type RedisLockerOptions } from './redis-locker.js';
export { LuaScript } from './lua-script.js';
export {
  FileSpaceProbe,
  STORAGE_RETRY_AFTER_S,
  UNKNOWN_CAPACITY,
  insufficientStorageError,
  storageFullCause,
  type SpaceProbe,
  type StorageCapacity,
  type StorageFullCause,
} from './space.js';
