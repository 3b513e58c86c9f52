/**
 * The S3 storage implementations against the storage conformance suites, on a real Ceph RadosGW
 * started for this file (test/helpers/rgw.ts). Each store gets its own key prefix in one bucket.
 */
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { ERRORS, Upload } from '@tus/utils';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as TusServer } from '@tus/server';
import * as tus from 'tus-js-client';
import { AbortMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { type S3Settings } from '../../src/storage/index.js';
import { S3ContentStore, S3PublishedStore, S3TusStore, createS3Client, objectSource } from '../../src/storage/s3.js';
import { describePublishedStore } from '../conformance/published-store.suite.js';
import { describeTusStore } from '../conformance/tus-store.suite.js';
import { startRadosGw, type RadosGw } from '../helpers/rgw.js';

const BUCKET = 'hfs-conformance';
const MIB = 1024 * 1024;
let rgw: RadosGw;
let client: S3Client;

const settings = (keyPrefix: string): S3Settings => ({
  bucket: BUCKET,
  region: rgw.region,
  endpoint: rgw.endpoint,
  forcePathStyle: true,
  accessKeyId: rgw.accessKeyId,
  secretAccessKey: rgw.secretAccessKey,
  keyPrefix,
  partBytes: 5 * MIB,
});

before(async () => {
  rgw = await startRadosGw();
  console.log(`# RadosGW started in ${Math.round(rgw.startMs)} ms`);
  client = createS3Client(settings(''));
  await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
});
after(async () => {
  client?.destroy();
  await rgw?.stop();
});

describePublishedStore('S3PublishedStore on RadosGW', {
  // Above this the store copies in parts (UploadPartCopy): the large case covers it.
  largeBytes: 6 * MIB,
  async open() {
    const keyPrefix = `p${randomBytes(6).toString('hex')}/`;
    const copy = { multipartAboveBytes: 6 * MIB, partBytes: 5 * MIB };
    const store = new S3PublishedStore({ client, bucket: BUCKET, keyPrefix, ...copy });
    const content = new S3ContentStore({ client, bucket: BUCKET, keyPrefix, ...copy });
    return {
      store,
      content,
      async makeSource(bytes) {
        const key = `${keyPrefix}sources/${randomBytes(6).toString('hex')}`;
        await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: bytes }));
        return objectSource(client, BUCKET, key, bytes.length);
      },
    };
  },
});

const tusPrefix = `t${randomBytes(6).toString('hex')}/`;
describeTusStore('S3TusStore on RadosGW', {
  async open({ expirationMs }) {
    return new S3TusStore({ settings: settings(tusPrefix), expirationMs });
  },
  async residue(id) {
    const Prefix = `${tusPrefix}uploads/${id}`;
    const objects = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix }));
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix }));
    return [...(objects.Contents ?? []).map((o) => `object ${o.Key}`), ...(uploads.Uploads ?? []).map((u) => `multipart upload ${u.Key}`)];
  },
});

describe('S3 stores across a RadosGW outage (only radosgw stopped, mon and OSD keep the data)', () => {
  it('fail while S3 is down (never "not found"), keep acknowledged bytes, and work again once it is back', async () => {
    const prefix = `o${randomBytes(6).toString('hex')}/`;
    const tus = new S3TusStore({ settings: settings(prefix), expirationMs: 0 });
    const published = new S3PublishedStore({ client, bucket: BUCKET, keyPrefix: prefix, multipartAboveBytes: 6 * MIB, partBytes: 5 * MIB });
    const body = randomBytes(6 * MIB);
    const id = `u${randomBytes(8).toString('hex')}`;
    await tus.create(new Upload({ id, offset: 0, size: body.length, metadata: {} }));
    assert.equal(await tus.write(Readable.from([body.subarray(0, 5 * MIB + 100)]), id, 0), 5 * MIB + 100);

    await rgw.stopGateway();
    try {
      const cold = new S3TusStore({ settings: settings(prefix), expirationMs: 0 }); // no cached metadata
      const notFound = (e: unknown) => e === ERRORS.FILE_NOT_FOUND;
      await assert.rejects(cold.getUpload(id), (e: unknown) => !notFound(e));
      await assert.rejects(cold.summarize(id), (e: unknown) => !notFound(e));
      await assert.rejects(published.stat('any.bin'));
      await assert.rejects(buffer(published.read('any.bin')));
    } finally {
      await rgw.startGateway();
    }

    const resumed = new S3TusStore({ settings: settings(prefix), expirationMs: 0 });
    const offset = (await resumed.getUpload(id)).offset;
    assert.equal(offset, 5 * MIB + 100, 'every acknowledged byte is still there');
    assert.equal(await resumed.write(Readable.from([body.subarray(offset)]), id, offset), body.length);
    await resumed.markFinished(id);
    const source = await resumed.source(id);
    assert.ok(source);
    const digest = 'f'.repeat(64);
    assert.equal(await published.publish('after-outage.bin', source, { contentType: 'application/octet-stream', uploadId: id, sha256: digest, size: body.length, protocol: 'tus', receivedAtMs: 1 }), 'published');
    assert.ok((await buffer(published.read('after-outage.bin'))).equals(body));
  });
});

describe('S3TusStore keeps to its key prefix', () => {
  it("neither lists, expires nor aborts what another prefix holds (another store's uploads, a published file's multipart copy)", async () => {
    const [mine, theirs] = [`m${randomBytes(6).toString('hex')}/`, `x${randomBytes(6).toString('hex')}/`];
    const store = new S3TusStore({ settings: settings(mine), expirationMs: 60_000 });
    const other = new S3TusStore({ settings: settings(theirs), expirationMs: 60_000 });
    const create = async (s: S3TusStore) => {
      const id = `u${randomBytes(8).toString('hex')}`;
      await s.create(new Upload({ id, offset: 0, size: 10, metadata: {} }));
      await s.write(Readable.from([Buffer.from('abc')]), id, 0);
      return id;
    };
    const [a, b] = [await create(store), await create(other)];
    const foreign = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `${mine}files/in-flight.bin` }));
    assert.deepEqual((await store.listUnfinished()).map((u) => u.id), [a]);
    assert.equal(await store.deleteExpired(Date.now() + 3_600_000), 1);
    const left = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
    const keys = (left.Uploads ?? []).map((u) => u.Key);
    assert.ok(keys.includes(`${theirs}uploads/${b}`), 'the other prefix keeps its upload');
    assert.ok(keys.includes(`${mine}files/in-flight.bin`), 'a published file being copied in is not an upload');
    assert.ok(!keys.includes(`${mine}uploads/${a}`));
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: `${mine}files/in-flight.bin`, UploadId: foreign.UploadId }));
    await other.discard(b);
  });
});

describe('@tus/server on S3TusStore, driven by tus-js-client', () => {
  const prefix = `h${randomBytes(6).toString('hex')}/`;
  /** A tus endpoint on a fresh store instance: a new one is a server restart. */
  const serve = async (): Promise<{ url: string; store: S3TusStore; close(): Promise<void> }> => {
    const store = new S3TusStore({ settings: settings(prefix), expirationMs: 0 });
    const server = new TusServer({ path: '/files', datastore: store.datastore });
    const http: HttpServer = createServer((req, res) => void server.handle(req, res).catch(() => res.destroy()));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const { port } = http.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/files`,
      store,
      close: () => new Promise<void>((resolve) => http.close(() => resolve())),
    };
  };

  it('resumes after a cut and a restart from the stored offset; a finished upload stays complete for HEAD', async () => {
    const body = randomBytes(11 * MIB + 321);
    const first = await serve();
    let uploadUrl = '';
    await new Promise<void>((resolve, reject) => {
      const upload = new tus.Upload(body, {
        endpoint: first.url,
        chunkSize: 5 * MIB,
        retryDelays: [],
        onChunkComplete: () => {
          uploadUrl = upload.url ?? '';
          void upload.abort().then(resolve, reject); // the connection is gone after the first chunk
        },
        onError: reject,
      });
      upload.start();
    });
    await first.close();

    const second = await serve();
    try {
      const resumedAt: number[] = [];
      await new Promise<void>((resolve, reject) => {
        const upload = new tus.Upload(body, {
          endpoint: second.url,
          uploadUrl: uploadUrl.replace(first.url, second.url), // the restarted server listens elsewhere
          chunkSize: 5 * MIB,
          retryDelays: [],
          onProgress: (sent) => void (resumedAt.length === 0 && resumedAt.push(sent)),
          onSuccess: () => resolve(),
          onError: reject,
        });
        upload.start();
      });
      assert.ok(resumedAt[0]! >= 5 * MIB, `resumed from ${resumedAt[0]}, not from 0`);
      const id = uploadUrl.split('/').pop()!;
      await second.store.markFinished(id);
      assert.ok((await buffer((await second.store.source(id))!.open())).equals(body));
      await second.store.releaseData(id);
      const head = await fetch(uploadUrl.replace(first.url, second.url), { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('upload-offset'), String(body.length));
      await second.store.discard(id);
    } finally {
      await second.close();
    }
  });

  it('DELETE of an unfinished upload leaves nothing in the bucket', async () => {
    const { url, close } = await serve();
    try {
      const created = await fetch(url, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(6 * MIB) } });
      assert.equal(created.status, 201);
      const location = new URL(created.headers.get('location')!, url).toString();
      const patch = await fetch(location, {
        method: 'PATCH',
        headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: randomBytes(5 * MIB + 5), // a full part and a trailing <id>.part
      });
      assert.equal(patch.status, 204);
      assert.equal((await fetch(location, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } })).status, 204);
      const id = location.split('/').pop()!;
      const objects = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}uploads/${id}` }));
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${prefix}uploads/${id}` }));
      assert.deepEqual([...(objects.Contents ?? []).map((o) => o.Key), ...(uploads.Uploads ?? []).map((u) => u.Key)], []);
    } finally {
      await close();
    }
  });
});
