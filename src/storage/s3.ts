/**
 * The S3 backend's implementations. Imported (dynamically) only when storage.backend = "s3": the
 * AWS SDK and @tus/s3-store take about 0.2 s and 25 MiB to load, which a server on the file
 * backend never needs. Their types are in index.ts.
 */
export { createS3Client, s3ClientConfig, S3_LAYOUT } from './s3-client.js';
export { S3Health } from './s3-health.js';
export { unreachableReason } from './s3-errors.js';
export { S3PublishedStore } from './s3-published-store.js';
export { S3ContentStore } from './s3-content-store.js';
export { S3TusStore } from './s3-tus-store.js';
export { objectSource, s3ObjectAccess } from './s3-objects.js';
export { S3QuarantineStore, S3_QUARANTINE_AREA } from './s3-quarantine-store.js';
export { PARTS_IN_FLIGHT as S3_PUT_PARTS_IN_FLIGHT, S3IncomingStore, S3_INCOMING, incomingObjects, removeIncomingObject } from './incoming-store-s3.js';
export { S3TusDoorStore } from './s3-tus-door-store.js';
export { S3DownloadSigner } from './s3-presign.js';
