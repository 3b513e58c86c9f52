/**
 * The stores of `[storage] backend` that finalization and the server take from the config:
 *   file  ContentAddressedStore (<data_dir>/cas) and <data_dir>/quarantine;
 *   s3    s3-stores.ts, imported only then (it loads the AWS SDK).
 * The data directory stays local either way: queue journal, staging, locks.
 */
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config/index.js';
import { ContentAddressedStore, FileQuarantineStore, type QuarantineStore } from '../storage/index.js';
import type { S3QuarantineStore } from '../storage/s3.js';
import { metrics } from '../observability/index.js';

/** The content store of [finalize] dedup for the file backend (<data_dir>/cas), or null when dedup is off. */
export function fileContentStoreFromConfig(config: Config): ContentAddressedStore | null {
  return config.finalize.dedup ? new ContentAddressedStore(join(config.storage.dataDir, 'cas'), config.storage.dirMode) : null;
}

/**
 * The server's quarantine, ready: the file store's index read; on S3, entries an older version
 * kept in <data_dir>/quarantine (before quarantine moved into the bucket) are moved into it, so
 * they stay withheld and listed. Returns how many were moved.
 */
export async function openQuarantineStore(config: Config, s3Client: S3Client | null, onMigrationError: (err: unknown) => void = () => {}): Promise<{ store: QuarantineStore; migrated: number }> {
  const local = new FileQuarantineStore(config.storage.dataDir);
  if (config.storage.backend !== 's3') {
    await local.init();
    return { store: local, migrated: 0 };
  }
  const store = (await import('./s3-stores.js')).quarantineStoreOf(config, s3Client) as S3QuarantineStore;
  metrics.countQuarantineWith(() => store.count()); // other instances change it too
  let migrated = 0;
  try {
    for (const record of await local.list()) {
      await store.admit(record, local.content(record)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err; // bytes gone by hand: the entry stays withheld, for delete
      });
      await local.remove(record.id);
      migrated += 1;
    }
  } catch (err) {
    onMigrationError(err); // S3 unreachable at start is not fatal; the local entries wait for the next start
  }
  return { store, migrated };
}
