/**
 * The S3 side of the finalize harness (finalize-harness.ts): a store factory for
 * storage.backend = "s3" against a real RadosGW (test/helpers/rgw.ts), the stores from
 * s3StoresFromConfig and the queue journal in the data dir. PUT bodies are handed over the way
 * the S3 IncomingStore does: an object at <prefix>incoming/<id>. Also the one RadosGW fixture
 * the S3 finalize and ops tests share.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { resolveConfig, type Config } from '../../src/config/index.js';
import { finalizationFromConfig, type S3Stores } from '../../src/finalize/index.js';
import { s3StoresFromConfig } from '../../src/finalize/s3-stores.js';
import { createS3Client, objectSource } from '../../src/storage/s3.js';
import { startRadosGw, type RadosGw } from '../helpers/rgw.js';
import type { StoreFactory } from './finalize-harness.js';

export interface S3Parts {
  readonly config: Config;
  readonly stores: S3Stores;
  readonly bucket: string;
  readonly prefix: string;
  /** The published object's bytes, or null. */
  publishedBytes(slotPath: string): Promise<Buffer | null>;
  /** Keys below the prefix (without it). */
  keys(under?: string): Promise<string[]>;
  exists(key: string): Promise<boolean>;
}

/** The [storage] section of storage.backend = "s3" on this gateway's bucket. */
export function s3Section(rgw: RadosGw, bucket: string, prefix: string): Record<string, unknown> {
  return { bucket, endpoint: rgw.endpoint, region: rgw.region, force_path_style: true, access_key_id: rgw.accessKeyId, secret_access_key: rgw.secretAccessKey, key_prefix: prefix, part_size: '5MiB' };
}

export function s3Config(rgw: RadosGw, bucket: string, prefix: string, dataDir: string, more: Record<string, Record<string, unknown>> = {}): Config {
  return resolveConfig(
    {
      ...more,
      storage: { backend: 's3', data_dir: dataDir, s3: s3Section(rgw, bucket, prefix), ...more['storage'] },
      finalize: { dedup: true, ...more['finalize'] },
    },
    {},
  ).config;
}

/** An S3 client on the gateway without a key prefix, for what a test puts or reads itself. */
export function rgwClient(rgw: RadosGw, bucket: string): S3Client {
  return createS3Client({ bucket, region: rgw.region, endpoint: rgw.endpoint, forcePathStyle: true, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey, keyPrefix: '', partBytes: 5 * 1024 * 1024 });
}

/**
 * One RadosGW for the enclosing describe: started with `buckets` created before its tests,
 * stopped after them. Read `.rgw` inside tests and hooks (it is set once `before` ran).
 */
export function radosGwFixture(...buckets: string[]): { readonly rgw: RadosGw } {
  let rgw: RadosGw | undefined;
  before(async () => {
    rgw = await startRadosGw();
    const client = rgwClient(rgw, buckets[0] ?? '');
    for (const bucket of buckets) await client.send(new CreateBucketCommand({ Bucket: bucket }));
    client.destroy();
  });
  after(async () => {
    await rgw?.stop();
  });
  return {
    get rgw(): RadosGw {
      if (rgw === undefined) throw new Error('the RadosGW fixture is read before its before hook ran');
      return rgw;
    },
  };
}

/** S3 stores on `bucket` under `prefix` (a fresh one unless given: reuse it to restart on the same objects). */
export function s3Store(rgw: RadosGw, bucket: string, prefix = `f${randomBytes(5).toString('hex')}/`): StoreFactory<S3Parts> {
  return {
    tempPrefix: 'hfs-finalize-s3-',
    async open(dir, log, overrides) {
      const config = s3Config(rgw, bucket, prefix, dir);
      const stores = s3StoresFromConfig(config);
      const service = finalizationFromConfig(config, {
        published: stores.published,
        tusStore: stores.tusStore,
        content: stores.content,
        sources: stores.sources,
        log,
        overrides: {
          circuitBreaker: { failureThreshold: 2, coolDownMs: 300 },
          retry: { baseMs: 5, maxMs: 20, maxRetries: 2 },
          pollIntervalMs: 100,
          workers: 2,
          ...overrides,
        },
      });
      const client = stores.client;
      return {
        service,
        async incoming(data) {
          const key = `${prefix}incoming/${randomUUID()}`;
          await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data }));
          return objectSource(client, bucket, key, data.length);
        },
        close: () => stores.destroy(),
        parts: {
          config,
          stores,
          bucket,
          prefix,
          async publishedBytes(slotPath) {
            try {
              const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}files/${slotPath}` }));
              return Buffer.from(await out.Body!.transformToByteArray());
            } catch {
              return null;
            }
          },
          async keys(under = '') {
            const out: string[] = [];
            let token: string | undefined;
            do {
              const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}${under}`, ContinuationToken: token }));
              for (const o of page.Contents ?? []) out.push(o.Key!.slice(prefix.length));
              token = page.IsTruncated ? page.NextContinuationToken : undefined;
            } while (token !== undefined);
            return out.sort();
          },
          async exists(key) {
            return client.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}${key}` })).then(
              () => true,
              () => false,
            );
          },
        },
      };
    },
  };
}
