export type {
  AdoptedSource,
  ContentStore,
  LinkPublishOutcome,
  LocalIncoming,
  PublishedEntry,
  PublishedFile,
  PublishedStore,
  PublishMeta,
  PublishOutcome,
  PublishRecord,
  PublishStepHooks,
  StoredRecord,
} from './published-store.js';
export type { FinishedUpload, TusUploadStore, UploadSummary } from './upload-store.js';
export { fileSource, localPathOf, s3ObjectOf, type ByteRange, type UploadSource } from './upload-source.js';
export { FilePublishedStore } from './file-published-store.js';
export { ContentAddressedStore, type AdoptedContent } from './content-addressed-store.js';
export { TusFileStore } from './tus-file-store.js';
export { MemoryLocker } from './memory-locker.js';
export { finishedTusUploads, type FinishedTusUpload } from './finished-tus-uploads.js';
export { walkFiles, type WalkedFile } from './walk-files.js';
export { createS3Client, s3ClientConfig, S3_LAYOUT, type S3Settings } from './s3-client.js';
export { S3PublishedStore, type S3PublishedStoreOptions } from './s3-published-store.js';
export { S3ContentStore, type S3ContentStoreOptions } from './s3-content-store.js';
export { S3TusStore, type S3TusStoreOptions } from './s3-tus-store.js';
export { objectSource } from './s3-objects.js';
export { RedisLocker, type RedisLockerEvents, type RedisLockerOptions } from './redis-locker.js';
export { LuaScript } from './lua-script.js';
