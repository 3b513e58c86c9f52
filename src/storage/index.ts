export {
  canDelete,
  hasClaims,
  storableContentType,
  type AdoptedSource,
  type ClaimEntry,
  type ClaimedPaths,
  type ContentStore,
  type DeletablePublishedStore,
  type DeleteOutcome,
  type LinkPublishOutcome,
  type LocalIncoming,
  type PathObstruction,
  type PublishedEntry,
  type PublishedFile,
  type PublishedStore,
  type PublishMeta,
  type PublishRecord,
  type PublishStepHooks,
  type StoredRecord,
} from './published-store.js';
export type { FinishedUpload, TusUploadStore, UploadSummary } from './upload-store.js';
export { secondsSince } from './upload-store.js';
export { fileSource, fileSourceRef, localPathOf, localPathOfRef, s3ObjectOf, s3ObjectOfRef, type ByteRange, type UploadSource } from './upload-source.js';
export { fileSourceResolver, sourceResolver, uploadSources, type ObjectAccess, type SourceResolver, type UploadSources } from './source-resolver.js';
export { isSourceGone, isStoreUnreachable, storageUnavailableError, unsendableRequestCause } from './faults.js';
export { isS3NotFound, isS3PreconditionFailed, unreachableReason } from './s3-errors.js';
export { FilePublishedStore } from './file-published-store.js';
export { ContentAddressedStore, type AdoptedContent } from './content-addressed-store.js';
export { TusFileStore } from './tus-file-store.js';
export { inlineReads, metadataReadsFor, pooledReads, type MetadataReads } from './metadata-reads.js';
export { fsyncDir, fsyncPath, writeDurably } from './durable-files.js';
export { MemoryLocker } from './memory-locker.js';
export type { TakeoverLocker, TakeoverLock, LockRequester, ReleaseRequest, ReleaseHandler } from './takeover-locker.js';
export { finishedTusUploads, type FinishedTusUpload } from './finished-tus-uploads.js';
export { UnfinishedUploads, type SlotClaim, type UnfinishedUpload } from './unfinished-uploads.js';
export { serverStateOf, clientMetadataOf, isFinishedRecord, parseStoredUpload, LEGACY_SLOT_KEY, LEGACY_TYPE_KEY, type ConcatRole, type StoredUpload, type UploadServerState } from './tus-upload-record.js';
export { CHUNK_ALGORITHMS, HashingTap, TusRequestScope, type ChunkAlgorithm, type ChunkCheck, type CheckedChunkWriter, type TusWriteScope } from './tus-chunk-check.js';
export { RedisLocker, type RedisLockerEvents, type RedisLockerOptions } from './redis-locker.js';
export { LuaScript } from './lua-script.js';
export { walkFiles, type WalkedFile } from './walk-files.js';
export type { S3Settings } from './s3-client.js';
export type { S3Health, S3HealthOptions, S3Probe } from './s3-health.js';
export type { S3PublishedStoreOptions } from './s3-published-store.js';
export type { S3ContentStoreOptions } from './s3-content-store.js';
export type { S3TusStore, S3TusStoreOptions } from './s3-tus-store.js';
export {
  FileSpaceProbe,
  STORAGE_RETRY_AFTER_S,
  UNKNOWN_CAPACITY,
  insufficientStorageError,
  unstorablePathCause,
  storageFullCause,
  type SpaceProbe,
  type StorageCapacity,
  type StorageFullCause,
} from './space.js';
export type { QuarantineReason, QuarantineRecord, QuarantineStore } from './quarantine-store.js';
export { FileQuarantineStore } from './file-quarantine-store.js';
export type { S3QuarantineStoreOptions } from './s3-quarantine-store.js';
export type { IncomingStore, IncomingUpload } from './incoming-store.js';
export { FileIncomingStore } from './incoming-store-file.js';
export type { IncomingObject, S3IncomingOptions } from './incoming-store-s3.js';
export type { TusDoorStore, UploadFacts } from './tus-door-store.js';
export type { S3TusDoorStoreOptions } from './s3-tus-door-store.js';
export { S3Scratch, S3_SCRATCH_DIR } from './s3-scratch.js';
export type { S3DownloadSigner, PresignedDownload } from './s3-presign.js';
// The S3 implementations (values) are in './s3.js', imported only when storage.backend = "s3".
export { DATA_DIR_ENTRIES, foreignEntries } from './data-dir.js';
