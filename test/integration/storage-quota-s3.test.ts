/**
 * A reached S3 quota (issue 19, item 6) on a real Ceph RadosGW (test/helpers/rgw.ts): RGW answers
 * 403 QuotaExceeded; storageFullCause recognises what @aws-sdk/client-s3 makes of it and
 * insufficientStorageError turns it into the same 507 as a full disk. Once the quota is raised,
 * the same write goes through. (The S3 backend is not wired into the server yet: this checks the
 * mapping the wiring will call, on the stores it will use.)
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { insufficientStorageError, storageFullCause, type S3Settings } from '../../src/storage/index.js';
import { createS3Client } from '../../src/storage/s3.js';
import { startRadosGw, type RadosGw } from '../helpers/rgw.js';

const BUCKET = 'hfs-quota';
const KiB = 1024;
let rgw: RadosGw;
let client: S3Client;

describe('S3 quota reached on RadosGW', () => {
  before(async () => {
    rgw = await startRadosGw();
    const settings: S3Settings = {
      bucket: BUCKET,
      region: rgw.region,
      endpoint: rgw.endpoint,
      forcePathStyle: true,
      accessKeyId: rgw.accessKeyId,
      secretAccessKey: rgw.secretAccessKey,
      keyPrefix: '',
      partBytes: 5 * 1024 * KiB,
    };
    client = createS3Client(settings);
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await rgw.admin(['quota', 'set', '--quota-scope=bucket', `--bucket=${BUCKET}`, `--max-size=${256 * KiB}`]);
    await rgw.admin(['quota', 'enable', '--quota-scope=bucket', `--bucket=${BUCKET}`]);
  });
  after(async () => {
    client?.destroy();
    await rgw?.stop();
  });

  const put = (bytes: number) => client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `o-${randomBytes(4).toString('hex')}`, Body: randomBytes(bytes) }));

  it('an object over the quota is refused with 403 QuotaExceeded, which maps to 507 with Retry-After', async () => {
    const err = await put(512 * KiB).then(
      () => assert.fail('RadosGW accepted an object over the bucket quota'),
      (e: unknown) => e,
    );
    assert.equal((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode, 403);
    assert.equal(storageFullCause(err), 'quota');
    const answer = insufficientStorageError(err);
    assert.equal(answer?.status, 507);
    assert.equal(answer?.code, 'ERR_INSUFFICIENT_STORAGE');
    assert.ok(Number(answer?.headers['Retry-After']) > 0);
  });

  it('the same write goes through once the quota is raised', async () => {
    await rgw.admin(['quota', 'set', '--quota-scope=bucket', `--bucket=${BUCKET}`, `--max-size=${4 * 1024 * KiB}`]);
    await put(512 * KiB);
  });
});
