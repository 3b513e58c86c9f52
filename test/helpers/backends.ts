/**
 * Runs an e2e suite against both storage backends (issue 12.7): `file` (the data directory) and
 * `s3` (a throw-away Ceph RadosGW, rgw.ts). A test file calls `storageBackends()` once at top
 * level: RadosGW is started at most once per file, on the first S3 server, and stopped when the
 * file is done; every S3 server gets a bucket of its own. HFS_TEST_BACKENDS=file (or s3) limits
 * the run to one backend.
 *
 * What a test needs to look at below the server (PUT leftovers, stored tus bytes) is asked of the
 * backend here, so the suites' assertions read the same for both.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { startRadosGw, type RadosGw } from './rgw.js';
import type { SpawnedServer } from './server.js';

export type BackendName = 'file' | 's3';

/** Key prefix of every S3 server's objects in its bucket (tests look below it). */
const PREFIX = 'hfs/';

export interface StorageBackend {
  readonly name: BackendName;
  /**
   * TOML to append to a server's config: for S3 a `[storage]` section (backend, part size) and
   * `[storage.s3]` naming a new bucket. `extraStorage` goes into the `[storage]` section.
   */
  config(extraStorage?: string): Promise<string>;
  /** What interrupted PUTs left: temp files, or S3 objects and multipart uploads below incoming/. */
  incomingLeftovers(server: SpawnedServer): Promise<string[]>;
  /** PUT bodies being received (temp files, or multipart uploads with at least one part sent). */
  incomingInFlight(server: SpawnedServer): Promise<number>;
  /** Bytes of tus upload `id` durably stored (file: the data file; S3: the parts sent, the trailing `.part` object). */
  storedTusBytes(server: SpawnedServer, id: string): Promise<number>;
  /** How many tus upload records the store holds (file: tus/*.json; S3: uploads/*.info). */
  uploadRecords(server: SpawnedServer): Promise<number>;
  /** S3 only: a bucket quota of `bytes` on the server's bucket (RadosGW then answers 403 QuotaExceeded). */
  limitBucket(server: SpawnedServer, bytes: number): Promise<void>;
  /** The bytes published at `slot`, read below the server (file: files/<slot>; S3: <prefix>files/<slot>); null when there are none. */
  publishedBytes(server: SpawnedServer, slot: string): Promise<Buffer | null>;
  /** What the quarantine area holds (file: <data_dir>/quarantine/*; S3: the keys below <prefix>quarantine/). */
  quarantineArea(server: SpawnedServer): Promise<string[]>;
  /** The S3 part size the servers get (bytes become durable per part); 0 for the file backend. */
  readonly partBytes: number;
}

const S3_PART_BYTES = 5 * 1024 * 1024;

export function backendNames(): BackendName[] {
  const only = process.env.HFS_TEST_BACKENDS?.split(',').map((s) => s.trim()).filter(Boolean);
  const all: BackendName[] = ['file', 's3'];
  return only && only.length > 0 ? all.filter((b) => only.includes(b)) : all;
}

/** The backends under test; call once at a test file's top level. */
export function storageBackends(): StorageBackend[] {
  let rgw: Promise<RadosGw> | null = null;
  let client: S3Client | null = null;
  after(async () => {
    client?.destroy();
    if (rgw) await (await rgw).stop();
  });
  const s3 = async (): Promise<{ gw: RadosGw; client: S3Client }> => {
    rgw ??= startRadosGw();
    const gw = await rgw;
    client ??= new S3Client({
      region: gw.region,
      endpoint: gw.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: gw.accessKeyId, secretAccessKey: gw.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return { gw, client };
  };
  const file: StorageBackend = {
    name: 'file',
    partBytes: 0,
    config: async (extraStorage = '') => (extraStorage ? `[storage]\n${extraStorage}\n` : ''),
    incomingLeftovers: (server) => readdir(join(server.dataDir, 'incoming')),
    incomingInFlight: async (server) => (await readdir(join(server.dataDir, 'incoming'))).length,
    storedTusBytes: (server, id) => stat(join(server.dataDir, 'tus', id)).then((s) => s.size, () => 0),
    limitBucket: () => Promise.reject(new Error('the file backend has no bucket quota')),
    uploadRecords: async (server) => (await readdir(join(server.dataDir, 'tus')).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).length,
    publishedBytes: (server, slot) => readFile(join(server.dataDir, 'files', slot)).catch(() => null),
    quarantineArea: async (server) => (await readdir(join(server.dataDir, 'quarantine')).catch(() => [] as string[])).sort(),
  };

  const multipart = async (bucket: string, prefix: string) => {
    const { client: c } = await s3();
    return (await c.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))).Uploads ?? [];
  };
  const objects = async (bucket: string, prefix: string) => {
    const { client: c } = await s3();
    return (await c.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? [];
  };

  const s3Backend: StorageBackend = {
    name: 's3',
    partBytes: S3_PART_BYTES,
    async config(extraStorage = '') {
      const { gw, client: c } = await s3();
      const bucket = `hfs-${randomBytes(6).toString('hex')}`;
      await c.send(new CreateBucketCommand({ Bucket: bucket }));
      return [
        '[storage]',
        'backend = "s3"',
        extraStorage,
        '[storage.s3]',
        `bucket = "${bucket}"`,
        `endpoint = "${gw.endpoint}"`,
        'force_path_style = true',
        `access_key_id = "${gw.accessKeyId}"`,
        `secret_access_key = "${gw.secretAccessKey}"`,
        `key_prefix = "${PREFIX}"`,
        'part_size = "5MiB"',
        '',
      ].join('\n');
    },
    async incomingLeftovers(server) {
      const bucket = bucketFor(server);
      const prefix = `${PREFIX}incoming/`;
      const list = async () => [...(await objects(bucket, prefix)).map((o) => `object ${o.Key}`), ...(await multipart(bucket, prefix)).map((u) => `multipart ${u.Key}`)];
      // An accepted PUT's object is removed by finalization after its 201: give the queue a bounded
      // moment (a real leftover is still there afterwards).
      let left = await list();
      for (let i = 0; i < 100 && left.length > 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        left = await list();
      }
      return left;
    },
    async incomingInFlight(server) {
      const { client: c } = await s3();
      const bucket = bucketFor(server);
      let n = 0;
      for (const u of await multipart(bucket, `${PREFIX}incoming/`)) {
        const parts = await c.send(new ListPartsCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId })).catch(() => null);
        if ((parts?.Parts ?? []).length > 0) n++;
      }
      return n;
    },
    async limitBucket(server, bytes) {
      const { gw } = await s3();
      const bucket = bucketFor(server);
      await gw.admin(['quota', 'set', '--quota-scope=bucket', `--bucket=${bucket}`, `--max-size=${bytes}`]);
      await gw.admin(['quota', 'enable', '--quota-scope=bucket', `--bucket=${bucket}`]);
    },
    async publishedBytes(server, slot) {
      const { client: c } = await s3();
      try {
        const got = await c.send(new GetObjectCommand({ Bucket: bucketFor(server), Key: `${PREFIX}files/${slot}` }));
        return Buffer.from(await got.Body!.transformToByteArray());
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey') return null;
        throw err;
      }
    },
    async quarantineArea(server) {
      const prefix = `${PREFIX}quarantine/`;
      return (await objects(bucketFor(server), prefix)).map((o) => o.Key!.slice(prefix.length)).sort();
    },
    async uploadRecords(server) {
      return (await objects(bucketFor(server), `${PREFIX}uploads/`)).filter((o) => o.Key?.endsWith('.info')).length;
    },
    async storedTusBytes(server, id) {
      const { client: c } = await s3();
      const bucket = bucketFor(server);
      const key = `${PREFIX}uploads/${id}`;
      let bytes = 0;
      for (const u of await multipart(bucket, key)) {
        if (u.Key !== key) continue;
        const parts = await c.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: u.UploadId }));
        bytes += (parts.Parts ?? []).reduce((sum, p) => sum + (p.Size ?? 0), 0);
      }
      const trailing = (await objects(bucket, `${key}.part`)).find((o) => o.Key === `${key}.part`);
      return bytes + (trailing?.Size ?? 0);
    },
  };

  return backendNames().map((n) => (n === 'file' ? file : s3Backend));
}

/** The bucket a server serves from, as its start-up line "Storage backend" names it. */
function bucketFor(server: SpawnedServer): string {
  const line = server.logs.find((l) => l.msg === 'Storage backend');
  if (typeof line?.bucket !== 'string') throw new Error('the server logged no "Storage backend" line with a bucket');
  return line.bucket;
}
