/**
 * The stores of `[storage] backend`, as finalization, the ops commands and the HTTP doors see
 * them (only interfaces leave this file):
 *   file  FilePublishedStore + ContentAddressedStore (<data_dir>/cas) + local source refs;
 *         the tus store stays app.ts's TusFileStore (it needs the request scope).
 *   s3    S3PublishedStore + S3ContentStore (<prefix>cas/) + S3TusStore (<prefix>uploads/), all in
 *         [storage.s3] bucket, through one plain client; source refs may be files or objects.
 * The data directory stays local either way: queue journal, staging, quarantine, locks.
 */
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/index.js';
import {
  ContentAddressedStore,
  createS3Client,
  incomingObjects,
  removeIncomingObject,
  S3ContentStore,
  S3PublishedStore,
  S3TusStore,
  uploadSources,
  type IncomingObject,
  type PublishedStore,
  type TusUploadStore,
  type UploadSources,
} from '../storage/index.js';
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
    sources: uploadSources({ client }),
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

/** The content store of [finalize] dedup for the file backend (<data_dir>/cas), or null when dedup is off. */
export function fileContentStoreFromConfig(config: Config): ContentAddressedStore | null {
  return config.finalize.dedup ? new ContentAddressedStore(join(config.storage.dataDir, 'cas'), config.storage.dirMode) : null;
}
