/** The quarantine part of OpsApi on a stopped server's data directory (offline.ts uses it). */
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { QuarantineAdmin } from '../finalize/index.js';
import { quarantineStoreOf } from '../finalize/s3-stores.js';
import { createLogger } from '../observability/index.js';
import type { S3Client } from '@aws-sdk/client-s3';
import { ContentAddressedStore, FilePublishedStore, FileQuarantineStore, type PublishedStore, type QuarantineStore, type TusUploadStore } from '../storage/index.js';
import type { DedupStore } from '../finalize/index.js';
import { discardTusUpload } from './tus-uploads.js';
import { OpsFailure, type QuarantineView } from './types.js';
import { quarantineView } from './views.js';

export class OfflineQuarantine {
  readonly #admin: QuarantineAdmin;
  readonly #store: QuarantineStore;
  #ready: Promise<void> | null = null;

  /** @param stores the S3 client, published and content stores of storage.backend = "s3"; default the file backend's. */
  constructor(config: Config, tusStore: () => TusUploadStore, stores?: () => { client: S3Client | null; published: PublishedStore; content: DedupStore | null }) {
    const dataDir = config.storage.dataDir;
    const s3 = stores?.();
    // On S3 the entries are in the bucket (where the running instances put them), not in dataDir.
    this.#store = quarantineStoreOf(config, s3?.client ?? null);
    this.#admin = new QuarantineAdmin({
      quarantine: this.#store,
      published: s3?.published ?? new FilePublishedStore(dataDir),
      cas: s3 !== undefined ? s3.content : config.finalize.dedup ? new ContentAddressedStore(join(dataDir, 'cas')) : null,
      discardTusUpload: (id) => discardTusUpload(tusStore(), id),
      log: createLogger({ level: 'silent', format: 'json' }),
    });
  }

  async list(): Promise<QuarantineView[]> {
    return (await this.#store.list()).map(quarantineView);
  }

  async release(id: string): Promise<QuarantineView> {
    await this.#init();
    const result = await this.#admin.release(id);
    if (result.kind === 'unknown') throw new OpsFailure(`no quarantined file ${id}`);
    if (result.kind === 'slot_taken') throw new OpsFailure(`${id}: another file is published at its path`);
    if (result.kind === 'bytes_missing') throw new OpsFailure(`${id}: the quarantined bytes are gone; delete the entry`);
    return quarantineView(result.record);
  }

  async delete(id: string): Promise<void> {
    await this.#init();
    if (!(await this.#admin.delete(id))) throw new OpsFailure(`no quarantined file ${id}`);
  }

  #init(): Promise<void> {
    const store = this.#store;
    return (this.#ready ??= store instanceof FileQuarantineStore ? store.init() : Promise.resolve());
  }
}
