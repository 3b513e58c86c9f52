/**
 * S3TusStore when a part upload of a write fails (a quota, an outage, any refusal), on a real
 * Ceph RadosGW: the offset never drops below what a completed write returned, no bytes are stored
 * in another place than theirs, and writing on from the reported offset stores the same file.
 * The failures are injected into the store's S3 client, timed against what @tus/s3-store asks for.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@tus/utils';
import { S3TusStore, createS3Client } from '../../src/storage/s3.js';
import { startRadosGw, type RadosGw } from '../helpers/rgw.js';

const BUCKET = 'hfs-part-failure';
const MiB = 1024 * 1024;
let rgw: RadosGw;
let client: S3Client;

interface Fault {
  readonly command: string;
  readonly partNumber?: number;
  readonly key?: RegExp;
  /** The failure comes once this resolves. */
  readonly after?: Promise<unknown>;
}

/** An S3TusStore whose next matching S3 command fails, and which tells when parts are asked for. */
class ProbedStore extends S3TusStore {
  fault: Fault | undefined;
  readonly #waiting = new Set<{ part: number | 'tail'; resolve: () => void }>();

  constructor(partBytes: number) {
    super({ settings: { bucket: BUCKET, region: rgw.region, endpoint: rgw.endpoint, forcePathStyle: true, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey, keyPrefix: '', partBytes }, expirationMs: 0 });
    this.s3.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string; PartNumber?: number };
        const f = this.fault;
        if (f && context.commandName === f.command && (f.partNumber === undefined || f.partNumber === input.PartNumber) && (f.key === undefined || f.key.test(input.Key ?? ''))) {
          this.fault = undefined;
          await f.after;
          throw Object.assign(new Error(`injected: ${f.command} refused`), { name: 'QuotaExceeded', $metadata: { httpStatusCode: 403 } });
        }
        return next(args);
      },
      { step: 'initialize', name: 'testFault' },
    );
  }

  /** Resolves once @tus/s3-store asks to send part `part` (or the trailing `.part`). */
  asked(part: number | 'tail'): Promise<void> {
    return new Promise((resolve) => this.#waiting.add({ part, resolve }));
  }

  #ask(part: number | 'tail'): void {
    for (const w of [...this.#waiting]) if (w.part === part) (this.#waiting.delete(w), w.resolve());
  }

  protected override uploadPart(...args: Parameters<S3TusStore['uploadPart']>): Promise<string> {
    this.#ask(args[2]);
    return super.uploadPart(...args);
  }

  protected override uploadIncompletePart(...args: Parameters<S3TusStore['uploadIncompletePart']>): Promise<string> {
    this.#ask('tail');
    return super.uploadIncompletePart(...args);
  }
}

async function created(store: ProbedStore, size: number): Promise<string> {
  const id = `u${randomBytes(8).toString('hex')}`;
  await store.create(new Upload({ id, offset: 0, size, metadata: {} }));
  return id;
}

const write = (store: ProbedStore, id: string, data: Buffer, from: number, to = data.length) => store.write(Readable.from([data.subarray(from, to)]), id, from);

/** Writes the rest from the offset the store reports and checks the completed object. */
async function resumeAndCompare(store: ProbedStore, id: string, data: Buffer): Promise<void> {
  const offset = (await store.getUpload(id)).offset;
  assert.equal(await write(store, id, data, offset), data.length);
  await store.markFinished(id);
  assert.ok((await buffer((await store.source(id))!.open())).equals(data), 'the stored file is the one sent');
  await store.discard(id);
}

describe('S3TusStore when a part upload fails (RadosGW)', () => {
  before(async () => {
    rgw = await startRadosGw();
    client = createS3Client({ bucket: BUCKET, region: rgw.region, endpoint: rgw.endpoint, forcePathStyle: true, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey, keyPrefix: '', partBytes: 5 * MiB });
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  });
  after(async () => {
    client?.destroy();
    await rgw?.stop();
  });

  it('a part refused once the trailing piece was ready: the confirmed tail stays, no later bytes take its place', async () => {
    const store = new ProbedStore(5 * MiB);
    const data = randomBytes(30 * MiB + 1);
    const id = await created(store, data.length);
    assert.equal(await write(store, id, data, 0, 18_000_000), 18_000_000); // 3 parts + a 2,271,360-byte tail
    // That tail + 2,971,520 bytes make part 4 (refused); the last 28,480 bytes are the new tail.
    store.fault = { command: 'UploadPartCommand', after: store.asked('tail') };
    await assert.rejects(write(store, id, data, 18_000_000, 21_000_000), /injected/);
    assert.equal((await store.getUpload(id)).offset, 18_000_000);
    const tail = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `uploads/${id}.part` }));
    assert.ok(Buffer.from(await tail.Body!.transformToByteArray()).equals(data.subarray(15 * MiB, 18_000_000)), 'the tail holds its own bytes');
    await resumeAndCompare(store, id, data);
  });

  it('a part refused while the next ones are ready: nothing after it is stored, the offset is the parts before it', async () => {
    const store = new ProbedStore(5 * MiB);
    const data = randomBytes(20 * MiB + 7);
    const id = await created(store, data.length);
    store.fault = { command: 'UploadPartCommand', partNumber: 2, after: store.asked(3) };
    await assert.rejects(write(store, id, data, 0, 18_000_000), /injected/);
    assert.equal((await store.getUpload(id)).offset, 5 * MiB);
    await resumeAndCompare(store, id, data);
  });

  it("the previous tail left behind once a part holds its bytes (its delete failed) is not counted twice", async () => {
    const store = new ProbedStore(5 * MiB);
    const data = randomBytes(30 * MiB + 1);
    const id = await created(store, data.length);
    assert.equal(await write(store, id, data, 0, 18_000_000), 18_000_000);
    store.fault = { command: 'DeleteObjectCommand', key: /\.part$/ };
    assert.equal(await write(store, id, data, 18_000_000, 20 * MiB), 20 * MiB); // exactly part 4, no new tail
    assert.equal(store.fault, undefined, 'the delete was tried');
    assert.equal((await store.getUpload(id)).offset, 20 * MiB);
    await resumeAndCompare(store, id, data);
  });

  it('part size 8 MiB: a refused part that starts with the tail keeps the tail', async () => {
    const store = new ProbedStore(8 * MiB);
    const data = randomBytes(30 * MiB + 1);
    const id = await created(store, data.length);
    assert.equal(await write(store, id, data, 0, 20_000_000), 20_000_000); // 2 parts + a 3,222,784-byte tail
    store.fault = { command: 'UploadPartCommand' };
    await assert.rejects(write(store, id, data, 20_000_000, 23_000_000), /injected/); // one 6,222,784-byte part
    assert.equal((await store.getUpload(id)).offset, 20_000_000);
    await resumeAndCompare(store, id, data);
  });
});
