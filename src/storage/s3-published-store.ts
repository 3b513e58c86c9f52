/**
 * PublishedStore on S3, below the configured key prefix:
 *   files/<slot path>    the bytes; Content-Type and the record as x-amz-meta-* (one HEAD gives both)
 *   claims/<slot path>   who publishes the path: created with If-None-Match: * (the one conditional
 *                        write RadosGW honours; it ignores it on CopyObject and multipart completion)
 * Publishing claims the path, then copies the source into place server-side, so the file appears
 * whole or not at all and never overwrites another upload's file. A claim without a file is an
 * interrupted publish: the same upload finishes it on a re-run; only that upload can. A claim
 * whose file was deleted by hand is listed by unpublishedClaims() and freed by releaseClaim() (ClaimedPaths).
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { DEFAULT_CONTENT_TYPE } from '../auth/index.js';
import { pathEtag, type ClaimEntry, type ClaimedPaths, type LinkPublishOutcome, type PublishRecord, type PublishStepHooks, type PublishedEntry, type PublishedFile, type PublishedStore, type StoredRecord } from './published-store.js';
import { S3_LAYOUT, isS3NotFound, isS3PreconditionFailed } from './s3-client.js';
import { copyObject, readObject, uploadSource, type CopyOptions } from './s3-objects.js';
import { s3ObjectOf, type ByteRange, type UploadSource } from './upload-source.js';

export interface S3PublishedStoreOptions extends CopyOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** '' or ending in '/'. */
  readonly keyPrefix: string;
}

/** x-amz-meta-* names of the record (S3 lower-cases them). */
const META = {
  uploadId: 'upload-id',
  sha256: 'sha256',
  protocol: 'protocol',
  receivedAtMs: 'received-at-ms',
  publishedAt: 'published-at',
} as const;

export class S3PublishedStore implements PublishedStore, ClaimedPaths {
  readonly #o: S3PublishedStoreOptions;

  constructor(options: S3PublishedStoreOptions) {
    this.#o = options;
  }

  async stat(path: string): Promise<PublishedFile | null> {
    const head = await this.#head(this.#fileKey(path));
    if (head === null) return null;
    return {
      path,
      size: head.ContentLength ?? 0,
      contentType: head.ContentType ?? DEFAULT_CONTENT_TYPE,
      mtimeMs: head.LastModified?.getTime() ?? 0,
      // S3's own ETag is the same for the same bytes at any key: bound to the path like the file store's.
      etag: pathEtag(head.Metadata?.[META.sha256] ?? head.ETag ?? `${head.ContentLength ?? 0}-${head.LastModified?.getTime() ?? 0}`, path),
    };
  }

  async record(path: string): Promise<StoredRecord | null> {
    const head = await this.#head(this.#fileKey(path));
    return head === null ? null : recordOf(head);
  }

  read(path: string, range?: ByteRange): Readable {
    return readObject(this.#o.client, this.#o.bucket, this.#fileKey(path), range);
  }

  async publish(path: string, source: UploadSource, record: PublishRecord, hooks: PublishStepHooks = {}): Promise<LinkPublishOutcome> {
    const key = this.#fileKey(path);
    const existing = await this.#head(key);
    if (existing !== null) return existing.Metadata?.[META.uploadId] === record.uploadId ? 'already' : 'taken';
    if (!(await this.#claim(path, record.uploadId))) return 'taken';
    hooks.afterRecord?.();
    const write = {
      bucket: this.#o.bucket,
      key,
      contentType: record.contentType,
      metadata: {
        [META.uploadId]: record.uploadId,
        [META.sha256]: record.sha256,
        [META.protocol]: record.protocol,
        [META.receivedAtMs]: String(record.receivedAtMs),
        [META.publishedAt]: new Date().toISOString(),
      },
    };
    const from = s3ObjectOf(source);
    if (from !== null) await copyObject(this.#o.client, from, source.size, write, this.#o);
    else await uploadSource(this.#o.client, source, write, this.#o.partBytes);
    hooks.afterLink?.();
    return 'published';
  }

  async remove(path: string): Promise<boolean> {
    const existed = (await this.#head(this.#fileKey(path))) !== null;
    await this.#o.client.send(new DeleteObjectCommand({ Bucket: this.#o.bucket, Key: this.#fileKey(path) }));
    await this.#o.client.send(new DeleteObjectCommand({ Bucket: this.#o.bucket, Key: this.#claimKey(path) }));
    return existed;
  }

  async *list(): AsyncIterable<PublishedEntry> {
    for await (const o of this.#keysBelow(S3_LAYOUT.files)) yield { path: o.path, size: o.size, mtimeMs: o.mtimeMs };
  }

  async *unpublishedClaims(): AsyncIterable<ClaimEntry> {
    // Files first: a publish claims, then copies, so a file listed here has its claim listed after.
    const files = new Set<string>();
    for await (const o of this.#keysBelow(S3_LAYOUT.files)) files.add(o.path);
    for await (const o of this.#keysBelow(S3_LAYOUT.claims)) if (!files.has(o.path)) yield { path: o.path, mtimeMs: o.mtimeMs };
  }

  async releaseClaim(path: string): Promise<boolean> {
    if ((await this.#head(this.#fileKey(path))) !== null) return false;
    await this.#o.client.send(new DeleteObjectCommand({ Bucket: this.#o.bucket, Key: this.#claimKey(path) }));
    return true;
  }

  async *#keysBelow(folder: string): AsyncIterable<{ path: string; size: number; mtimeMs: number }> {
    const prefix = `${this.#o.keyPrefix}${folder}`;
    let token: string | undefined;
    do {
      const page = await this.#o.client.send(new ListObjectsV2Command({ Bucket: this.#o.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { path: o.Key.slice(prefix.length), size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  /** True when `uploadId` holds the path's claim (made now, or by an earlier run of the same upload). */
  async #claim(path: string, uploadId: string): Promise<boolean> {
    const Key = this.#claimKey(path);
    try {
      await this.#o.client.send(new PutObjectCommand({ Bucket: this.#o.bucket, Key, Body: uploadId, ContentType: 'text/plain', IfNoneMatch: '*' }));
      return true;
    } catch (err) {
      if (!isS3PreconditionFailed(err)) throw err;
    }
    const claim = await this.#o.client.send(new GetObjectCommand({ Bucket: this.#o.bucket, Key }));
    return (await claim.Body?.transformToString()) === uploadId;
  }

  async #head(key: string): Promise<HeadObjectCommandOutput | null> {
    try {
      return await this.#o.client.send(new HeadObjectCommand({ Bucket: this.#o.bucket, Key: key }));
    } catch (err) {
      if (isS3NotFound(err)) return null;
      throw err;
    }
  }

  #fileKey(path: string): string {
    return `${this.#o.keyPrefix}${S3_LAYOUT.files}${path}`;
  }

  #claimKey(path: string): string {
    return `${this.#o.keyPrefix}${S3_LAYOUT.claims}${path}`;
  }
}

function recordOf(head: HeadObjectCommandOutput): StoredRecord | null {
  const m = head.Metadata ?? {};
  const uploadId = m[META.uploadId];
  if (uploadId === undefined) return null;
  const receivedAtMs = Number(m[META.receivedAtMs]);
  return {
    contentType: head.ContentType ?? DEFAULT_CONTENT_TYPE,
    uploadId,
    publishedAt: m[META.publishedAt] ?? head.LastModified?.toISOString() ?? '',
    size: head.ContentLength ?? 0,
    ...(m[META.sha256] !== undefined && { sha256: m[META.sha256] }),
    ...(m[META.protocol] !== undefined && { protocol: m[META.protocol] }),
    ...(Number.isFinite(receivedAtMs) && { receivedAtMs }),
  };
}
