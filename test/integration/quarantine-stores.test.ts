/**
 * The quarantine stores against their conformance suite: FileQuarantineStore in a temp dir, and
 * S3QuarantineStore on a real Ceph RadosGW started for this file (test/helpers/rgw.ts), each
 * store below a key prefix of its own. Plus what only the shared S3 area promises: instances that
 * were open before see each other's entries at once, and nothing in it is served.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { FileQuarantineStore, fileSource, localPathOf, s3ObjectOf, type QuarantineRecord } from '../../src/storage/index.js';
import { S3PublishedStore, S3QuarantineStore, createS3Client, objectSource } from '../../src/storage/s3.js';
import { describeQuarantineStore } from '../conformance/quarantine-store.suite.js';
import { startRadosGw, type RadosGw } from '../helpers/rgw.js';

const BUCKET = 'hfs-quarantine';
const MIB = 1024 * 1024;
let root: string;
let rgw: RadosGw;
let client: S3Client;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'hfs-quarantine-'));
  rgw = await startRadosGw();
  client = createS3Client({
    bucket: BUCKET,
    region: rgw.region,
    endpoint: rgw.endpoint,
    forcePathStyle: true,
    accessKeyId: rgw.accessKeyId,
    secretAccessKey: rgw.secretAccessKey,
    keyPrefix: '',
    partBytes: 5 * MIB,
  });
  await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
});
after(async () => {
  client?.destroy();
  await rgw?.stop();
  await rm(root, { recursive: true, force: true });
});

describeQuarantineStore('FileQuarantineStore', {
  async open() {
    const dir = await mkdtemp(join(root, 'data-'));
    const opened = async () => {
      const store = new FileQuarantineStore(dir);
      await store.init();
      return store;
    };
    return {
      store: await opened(),
      reopen: opened,
      async makeSource(bytes, options = {}) {
        const path = join(dir, `source-${randomBytes(6).toString('hex')}`);
        if (options.gone !== true) await writeFile(path, bytes);
        return fileSource(path, bytes.length);
      },
      sourceExists: async (source) => existsSync(localPathOf(source)!),
    };
  },
});

const copy = { multipartAboveBytes: 6 * MIB, partBytes: 5 * MIB };
const s3Store = (keyPrefix: string) => new S3QuarantineStore({ client, bucket: BUCKET, keyPrefix, ...copy });
const s3Source = async (keyPrefix: string, bytes: Buffer, gone = false) => {
  const key = `${keyPrefix}uploads/${randomBytes(6).toString('hex')}`;
  if (!gone) await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bytes }));
  return objectSource(client, BUCKET, key, bytes.length);
};

describeQuarantineStore('S3QuarantineStore on RadosGW', {
  async open() {
    const keyPrefix = `q${randomBytes(6).toString('hex')}/`;
    return {
      store: s3Store(keyPrefix),
      reopen: async () => s3Store(keyPrefix),
      makeSource: (bytes, options = {}) => s3Source(keyPrefix, bytes, options.gone === true),
      async sourceExists(source) {
        const { bucket, key } = s3ObjectOf(source)!;
        return client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
          () => true,
          () => false,
        );
      },
    };
  },
});

describe('S3QuarantineStore: one area for every instance, never served', () => {
  const record = (id: string, slotPath: string, size: number): QuarantineRecord => ({
    id,
    slotPath,
    size,
    sha256: 'ab'.repeat(32),
    contentType: 'text/html',
    protocol: 'put',
    uploadId: id.slice(4),
    receivedAtMs: 1,
    quarantinedAtMs: 2,
    reason: 'infected',
    signature: 'Hfs.Test.Evil.UNOFFICIAL',
  });

  it('an instance opened before another quarantined a file sees it at once, and sees its release', async () => {
    const keyPrefix = `c${randomBytes(6).toString('hex')}/`;
    const [a, b] = [s3Store(keyPrefix), s3Store(keyPrefix)];
    assert.equal(await b.bySlot('x/evil.html'), null);
    const bytes = Buffer.from('<script>evil</script>');
    await a.admit(record('put-one', 'x/evil.html', bytes.length), await s3Source(keyPrefix, bytes));
    assert.equal((await b.bySlot('x/evil.html'))?.id, 'put-one', 'no local index: the bucket answers');
    assert.equal(await b.count(), 1);
    assert.equal((await b.get('put-one'))?.signature, 'Hfs.Test.Evil.UNOFFICIAL');
    assert.equal(await b.remove('put-one'), true);
    assert.equal(await a.bySlot('x/evil.html'), null);
    assert.equal(await a.get('put-one'), null);
    assert.equal(await a.count(), 0);
  });

  it('keeps its bytes below <prefix>quarantine/ with the signature as metadata; the published store neither serves nor lists them', async () => {
    const keyPrefix = `n${randomBytes(6).toString('hex')}/`;
    const store = s3Store(keyPrefix);
    const published = new S3PublishedStore({ client, bucket: BUCKET, keyPrefix, ...copy });
    const bytes = randomBytes(1000);
    await store.admit(record('put-two', 'y/evil.bin', bytes.length), await s3Source(keyPrefix, bytes));
    const keys = ((await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: keyPrefix }))).Contents ?? []).map((o) => o.Key!.slice(keyPrefix.length)).sort();
    assert.deepEqual(keys.filter((k) => k.startsWith('quarantine/')), ['quarantine/bytes/put-two', 'quarantine/entries/put-two.json', 'quarantine/slots/y/evil.bin']);
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${keyPrefix}quarantine/bytes/put-two` }));
    assert.equal(head.Metadata?.signature, 'Hfs.Test.Evil.UNOFFICIAL');
    assert.equal(head.Metadata?.reason, 'infected');
    assert.equal(head.ContentType, 'application/octet-stream', 'never the upload\'s own type');
    assert.equal(await published.stat('y/evil.bin'), null);
    const listed: string[] = [];
    for await (const e of published.list()) listed.push(e.path);
    assert.deepEqual(listed, []);
  });
});
