/**
 * The stores of storage.backend = "s3", as finalization and the ops commands see them:
 * S3PublishedStore + S3ContentStore (<prefix>cas/) + S3TusStore (<prefix>uploads/), all in
 * [storage.s3] bucket, through one plain client; source refs may be files or objects; the
 * quarantine below <prefix>quarantine/ (every instance sees it). Loads the AWS SDK: the server
 * imports this module only on the S3 backend (storage-from-config.ts, app-storage.ts), the
 * offline commands whenever they run.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/index.js';
import {
  FileQuarantineStore,
  uploadSources,
  type IncomingObject,
  type PublishedStore,
  type QuarantineStore,
  type TusUploadStore,
  type UploadSources,
} from '../storage/index.js';
import { createS3Client, incomingObjects, removeIncomingObject, S3ContentStore, s3ObjectAccess, S3PublishedStore, S3QuarantineStore, S3TusStore } from '../storage/s3.js';
import type { DedupStore } from './pipeline.js';

/** A single CopyObject copies at most 5 GiB; larger objects are copied in parts. */
const SINGLE_COPY_MAX_BYTES = 5 * 1024 * 1024 * 1024;

export interface S3Stores {
  readonly client: S3Client;
  readonly published: PublishedStore;
  readonly tusStore: TusUploadStore & { readonly s3: S3Client };
  /** null: [finalize] dedup = false. */
  readonly content: DedupStore | null;
  readonly sources: UploadSources;
  /** Completed PUT bodies below incoming/ (for recover). */
  readonly incomingObjects: { list(): AsyncIterable<IncomingObject>; remove(target: string): Promise<void> };
  /** Closes the clients' sockets. */
  destroy(): void;
}

/** The S3 stores of storage.backend = "s3" (throws for another backend). */
export function s3StoresFromConfig(config: Config): S3Stores {
  if (config.storage.backend !== 's3') throw new Error('storage.backend is not "s3"');
  const settings = config.storage.s3;
  const client = createS3Client(settings);
  const common = { client, bucket: settings.bucket, keyPrefix: settings.keyPrefix, multipartAboveBytes: SINGLE_COPY_MAX_BYTES, partBytes: settings.partBytes };
  const tusStore = new S3TusStore({ settings, expirationMs: config.tus.expirationMs });
  return {
    client,
    published: new S3PublishedStore(common),
    tusStore,
    content: config.finalize.dedup ? new S3ContentStore(common) : null,
    sources: uploadSources(s3ObjectAccess(client)),
    incomingObjects: incomingObjectsOf(client, settings.bucket, settings.keyPrefix),
    destroy() {
      client.destroy();
      tusStore.s3.destroy();
    },
  };
}

/** The completed PUT bodies below `<prefix>incoming/` and their removal, for recover (online and offline). */
export function incomingObjectsOf(client: S3Client, bucket: string, keyPrefix: string): S3Stores['incomingObjects'] {
  const o = { client, bucket, keyPrefix };
  return { list: () => incomingObjects(o), remove: (target) => removeIncomingObject(o, target) };
}

/** The quarantine of storage.backend, without start-up work (the offline commands'; the server uses openQuarantineStore). */
export function quarantineStoreOf(config: Config, s3Client: S3Client | null): QuarantineStore {
  if (config.storage.backend !== 's3') return new FileQuarantineStore(config.storage.dataDir);
  if (s3Client === null) throw new Error('the S3 quarantine store needs the S3 client');
  const s = config.storage.s3;
  return new S3QuarantineStore({ client: s3Client, bucket: s.bucket, keyPrefix: s.keyPrefix, multipartAboveBytes: SINGLE_COPY_MAX_BYTES, partBytes: s.partBytes });
}

