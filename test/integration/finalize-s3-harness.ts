/**
 * A FinalizationService on storage.backend = "s3" against a real RadosGW (test/helpers/rgw.ts):
 * the stores come from s3StoresFromConfig, the queue journal from a temp data dir. PUT bodies
 * are handed over the way the S3 IncomingStore does: an object at <prefix>incoming/<id>.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { resolveConfig, type Config } from '../../src/config/index.js';
import { finalizationFromConfig, s3StoresFromConfig, type CompletedUpload, type FinalizationOptions, type FinalizationService, type FinalizeOutcome, type S3Stores } from '../../src/finalize/index.js';
import { createLogger } from '../../src/observability/index.js';
import { objectSource, type UploadSource } from '../../src/storage/index.js';
import type { RadosGw } from '../helpers/rgw.js';
import type { Line } from './finalize-harness.js';

export interface S3Harness {
  readonly dir: string;
  readonly config: Config;
  readonly stores: S3Stores;
  readonly service: FinalizationService;
  readonly lines: Line[];
  readonly bucket: string;
  readonly prefix: string;
  waitLog(pred: (l: Line) => boolean): Promise<Line>;
  /** Stores `data` as an incoming object and hands it to the finalizer like a PUT. */
  put(slotPath: string, data: Buffer, extra?: Partial<CompletedUpload>): Promise<FinalizeOutcome>;
  /** An object as an incoming upload source (not handed over). */
  incoming(data: Buffer): Promise<UploadSource>;
  /** The published object's bytes, or null. */
  publishedBytes(slotPath: string): Promise<Buffer | null>;
  /** Keys below the prefix (without it). */
  keys(under?: string): Promise<string[]>;
  exists(key: string): Promise<boolean>;
  dispose(): Promise<void>;
}

export function s3Config(rgw: RadosGw, bucket: string, prefix: string, dataDir: string, more: Record<string, Record<string, unknown>> = {}): Config {
  return resolveConfig(
    {
      ...more,
      storage: {
        backend: 's3',
        data_dir: dataDir,
        s3: { bucket, endpoint: rgw.endpoint, region: rgw.region, force_path_style: true, access_key_id: rgw.accessKeyId, secret_access_key: rgw.secretAccessKey, key_prefix: prefix, part_size: '5MiB' },
        ...more['storage'],
      },
      finalize: { dedup: true, ...more['finalize'] },
    },
    {},
  ).config;
}

export function lineLogger(): { lines: Line[]; waitLog(pred: (l: Line) => boolean): Promise<Line>; log: ReturnType<typeof createLogger> } {
  const lines: Line[] = [];
  const waiters: Array<{ pred: (l: Line) => boolean; resolve: (l: Line) => void }> = [];
  const log = createLogger(
    { level: 'debug', format: 'json' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const text of chunk.toString().split('\n').filter(Boolean)) {
          const line = JSON.parse(text) as Line;
          lines.push(line);
          for (const w of [...waiters]) {
            if (w.pred(line)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve(line);
            }
          }
        }
        cb();
      },
    }),
  );
  return {
    lines,
    log,
    waitLog(pred) {
      const seen = lines.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
  };
}

export async function startS3Harness(rgw: RadosGw, bucket: string, overrides: Partial<FinalizationOptions> = {}, reuse?: { dir: string; prefix: string }): Promise<S3Harness> {
  const dir = reuse?.dir ?? (await mkdtemp(join(tmpdir(), 'hfs-finalize-s3-')));
  const prefix = reuse?.prefix ?? `f${randomBytes(5).toString('hex')}/`;
  const config = s3Config(rgw, bucket, prefix, dir);
  const stores = s3StoresFromConfig(config);
  const { lines, log, waitLog } = lineLogger();
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
  await service.start();
  const client: S3Client = stores.client;
  const incoming = async (data: Buffer): Promise<UploadSource> => {
    const key = `${prefix}incoming/${randomUUID()}`;
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data }));
    return objectSource(client, bucket, key, data.length);
  };
  return {
    dir,
    config,
    stores,
    service,
    lines,
    bucket,
    prefix,
    waitLog,
    incoming,
    async put(slotPath, data, extra = {}) {
      const source = await incoming(data);
      return service.finalize({ protocol: 'put', uploadId: randomUUID(), slotPath, contentType: 'application/octet-stream', size: data.length, source, ...extra });
    },
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
    async dispose() {
      await service.stop(0);
      stores.destroy();
      if (reuse === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}
