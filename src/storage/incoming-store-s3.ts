/**
 * PUT bodies on S3, at `<key prefix>incoming/<id>-<random>`: the body is cut into parts as it
 * arrives and each part is sent as soon as it is full (a multipart upload, created with the first
 * full part); a body smaller than one part is sent whole by one PutObject at complete(). At most
 * PARTS_IN_FLIGHT parts are being sent while the next one fills, so memory per body is bounded
 * and a slow S3 slows the client down (backpressure) instead of growing the heap. abort() aborts the multipart upload
 * (and deletes the object when it was completed already): a client that drops leaves nothing.
 * An abort S3 does not take (the outage that cut the PUT) is retried in the background for a
 * few minutes (abortLater), so the parts do not wait in the bucket for the next start's sweep.
 * Written with the S3 client rather than @aws-sdk/lib-storage, whose abort() returns before the
 * multipart upload is aborted.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { IncomingStore, IncomingUpload } from './incoming-store.js';
import { isS3NotFound } from './s3-errors.js';
import { objectSource } from './s3-objects.js';
import type { UploadSource } from './upload-source.js';

/** Parts sent at once per body (measured: one at a time left RadosGW idle between parts). */
export const PARTS_IN_FLIGHT = 3;

/** Below the key prefix, beside S3_LAYOUT's folders. */
export const S3_INCOMING = 'incoming/';

export interface S3IncomingOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** '' or ending in '/'. */
  readonly keyPrefix: string;
  /** S3's minimum is 5 MiB for every part but the last. */
  readonly partBytes: number;
}

export class S3IncomingStore implements IncomingStore {
  readonly #startedAt = new Date();

  constructor(private readonly o: S3IncomingOptions) {}

  begin(id: string): IncomingUpload {
    const key = `${this.o.keyPrefix}${S3_INCOMING}${id.replace(/[^\w.-]/g, '_')}-${randomBytes(6).toString('hex')}`;
    return new MultipartSink(this.o, key);
  }

  /**
   * Aborts multipart uploads below incoming/ that were started before this process (a PUT cut by
   * a stop or crash). In cluster mode other instances' PUTs are below the same prefix: only those
   * older than a day are taken then (`olderThanMs`).
   */
  async sweep(olderThanMs = 0): Promise<number> {
    const { client, bucket } = this.o;
    const before = this.#startedAt.getTime() - olderThanMs;
    let swept = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await client.send(
        new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${this.o.keyPrefix}${S3_INCOMING}`, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      );
      for (const u of page.Uploads ?? []) {
        if (!u.Key || !u.UploadId || (u.Initiated?.getTime() ?? 0) >= before) continue;
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId })).catch(() => {});
        swept++;
      }
      const more = page.IsTruncated === true;
      keyMarker = more ? page.NextKeyMarker : undefined;
      uploadIdMarker = more ? page.NextUploadIdMarker : undefined;
    } while (keyMarker !== undefined);
    return swept;
  }
}

/** A completed PUT body below incoming/ (its job's source, or a leftover of a crash before admission). */
export interface IncomingObject {
  /** Below the key prefix: `incoming/<id>-<random>`. */
  readonly target: string;
  /** The PUT's upload id as begin() got it (ids are kept as they are when made of [\w.-] only). */
  readonly uploadId: string;
  readonly size: number;
  readonly lastModifiedMs: number;
}

/** The completed objects below incoming/ and their removal, for `recover` (ops/recovery.ts). */
export async function* incomingObjects(o: Pick<S3IncomingOptions, 'client' | 'bucket' | 'keyPrefix'>): AsyncIterable<IncomingObject> {
  let token: string | undefined;
  do {
    const page = await o.client.send(new ListObjectsV2Command({ Bucket: o.bucket, Prefix: `${o.keyPrefix}${S3_INCOMING}`, ContinuationToken: token }));
    for (const obj of page.Contents ?? []) {
      if (obj.Key === undefined) continue;
      const target = obj.Key.slice(o.keyPrefix.length);
      const name = target.slice(S3_INCOMING.length);
      const uploadId = /^(.+)-[0-9a-f]{12}$/.exec(name)?.[1] ?? name;
      yield { target, uploadId, size: obj.Size ?? 0, lastModifiedMs: obj.LastModified?.getTime() ?? 0 };
    }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}

export async function removeIncomingObject(o: Pick<S3IncomingOptions, 'client' | 'bucket' | 'keyPrefix'>, target: string): Promise<void> {
  if (!target.startsWith(S3_INCOMING)) throw new Error(`not below ${S3_INCOMING}: ${target}`);
  await o.client.send(new DeleteObjectCommand({ Bucket: o.bucket, Key: `${o.keyPrefix}${target}` }));
}

class MultipartSink implements IncomingUpload {
  readonly sink: Writable;
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  #total = 0;
  #uploadId: Promise<string> | undefined;
  readonly #parts: { ETag: string; PartNumber: number }[] = [];
  /** Parts being sent, oldest first (at most PARTS_IN_FLIGHT). */
  #sending: Promise<void>[] = [];
  #completed = false;
  #aborted: Promise<void> | undefined;

  constructor(
    private readonly o: S3IncomingOptions,
    private readonly key: string,
  ) {
    this.sink = new Writable({
      write: (chunk: Buffer, _enc, done) => this.#take(chunk).then(() => done(), done),
      final: (done) => this.#allSent().then(() => done(), done),
    });
  }

  /** Buffers a chunk; once a part is full, waits for the previous part and starts sending this one. */
  async #take(chunk: Buffer): Promise<void> {
    this.#buffered.push(chunk);
    this.#bufferedBytes += chunk.length;
    this.#total += chunk.length;
    if (this.#bufferedBytes < this.o.partBytes) return;
    // A failed part rejects here and fails the body.
    while (this.#sending.length >= PARTS_IN_FLIGHT) await this.#sending.shift();
    const body = Buffer.concat(this.#buffered, this.#bufferedBytes);
    this.#buffered = [];
    this.#bufferedBytes = 0;
    const sent = this.#sendPart(body);
    sent.catch(() => {}); // surfaced by the next write, final() or complete()
    this.#sending.push(sent);
  }

  /** Waits for every part in flight; rejects with the first failure. */
  async #allSent(): Promise<void> {
    while (this.#sending.length > 0) await this.#sending.shift();
  }

  async #sendPart(body: Buffer): Promise<void> {
    const { client, bucket } = this.o;
    this.#uploadId ??= client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: this.key })).then((r) => r.UploadId!);
    const PartNumber = this.#parts.length + 1;
    this.#parts.push({ ETag: '', PartNumber }); // numbered in body order, before any await
    const UploadId = await this.#uploadId;
    const { ETag } = await client.send(new UploadPartCommand({ Bucket: bucket, Key: this.key, UploadId, PartNumber, Body: body, ContentLength: body.length }));
    this.#parts[PartNumber - 1] = { ETag: ETag ?? '', PartNumber };
  }

  async complete(): Promise<UploadSource> {
    const { client, bucket } = this.o;
    await this.#allSent();
    const rest = Buffer.concat(this.#buffered, this.#bufferedBytes);
    this.#buffered = [];
    this.#bufferedBytes = 0;
    if (this.#uploadId === undefined) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: this.key, Body: rest, ContentLength: rest.length }));
    } else {
      if (rest.length > 0) await this.#sendPart(rest);
      await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: this.key, UploadId: await this.#uploadId, MultipartUpload: { Parts: this.#parts } }));
    }
    this.#completed = true;
    return objectSource(client, bucket, this.key, this.#total);
  }

  abort(): Promise<void> {
    return (this.#aborted ??= this.#abort());
  }

  async #abort(): Promise<void> {
    const { client, bucket } = this.o;
    if (!this.sink.destroyed) this.sink.destroy();
    this.#buffered = [];
    await Promise.allSettled(this.#sending); // a part in flight would otherwise land after the abort
    const uploadId = await this.#uploadId?.catch(() => undefined);
    if (uploadId !== undefined && !this.#completed) {
      const abort = () => client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: this.key, UploadId: uploadId }));
      await abort().catch((err: unknown) => {
        if (!isS3NotFound(err)) abortLater(abort);
      });
    }
    // A completed object (a refusal after complete()), or a PutObject that raced the abort.
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: this.key })).catch(() => {});
  }
}

/** abortLater's schedule: 2 s doubling to 1 min, 12 tries (about 8 min in all); past that, the next start's sweep. */
const ABORT_RETRY_FIRST_MS = 2_000;
const ABORT_RETRY_MAX_MS = 60_000;
const ABORT_RETRIES = 12;

/**
 * Tries `abort` again in the background until S3 takes it or says the upload is gone. Bounded,
 * and its timers do not hold the process: a stop leaves the rest to the next start's sweep.
 */
function abortLater(abort: () => Promise<unknown>, tried = 0): void {
  if (tried >= ABORT_RETRIES) return;
  const delay = Math.min(ABORT_RETRY_FIRST_MS * 2 ** tried, ABORT_RETRY_MAX_MS);
  setTimeout(() => {
    abort().catch((err: unknown) => {
      if (!isS3NotFound(err)) abortLater(abort, tried + 1);
    });
  }, delay).unref();
}
