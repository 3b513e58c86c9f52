/**
 * Object operations the S3 stores share: streamed reads, copies that never pass the bytes through
 * this process (single CopyObject, or UploadPartCopy in parts for large objects), and streamed
 * uploads of sources from elsewhere (lib-storage: bounded memory, multipart above one part).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { PassThrough, type Readable } from 'node:stream';
import { isS3NotFound } from './s3-errors.js';
import type { ObjectAccess } from './source-resolver.js';
import { s3SourceRef, type ByteRange, type UploadSource } from './upload-source.js';

/** How many part copies or part uploads run at once for one object. */
const PART_CONCURRENCY = 4;

/**
 * The object's bytes (or a range), streamed: returned at once, fed when S3 answers, errors
 * (a missing object included) on the stream. Destroying the stream aborts the request.
 */
export function readObject(client: S3Client, bucket: string, key: string, range?: ByteRange): Readable {
  const out = new PassThrough();
  const abort = new AbortController();
  out.once('close', () => abort.abort());
  client
    .send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(range && { Range: `bytes=${range.start}-${range.end}` }) }), { abortSignal: abort.signal })
    .then(
      ({ Body }) => {
        const body = Body as Readable | undefined;
        if (!body) return void out.end();
        if (out.destroyed) return void body.destroy();
        body.once('error', (err) => out.destroy(err));
        body.pipe(out);
      },
      (err: unknown) => out.destroy(err as Error),
    );
  return out;
}

/** An object as an UploadSource (read through `client`, which may add a key prefix of its own: `ref` names the full key). */
export function objectSource(client: S3Client, bucket: string, key: string, size: number, fullKey = key): UploadSource {
  return { ref: s3SourceRef(bucket, fullKey), size, open: (range) => readObject(client, bucket, key, range) };
}

export interface ObjectWrite {
  readonly bucket: string;
  readonly key: string;
  readonly contentType: string;
  /** x-amz-meta-* (US-ASCII values). */
  readonly metadata: Record<string, string>;
}

export interface CopyOptions {
  /** Objects larger than this are copied in parts (a single CopyObject is limited to 5 GiB). */
  readonly multipartAboveBytes: number;
  readonly partBytes: number;
}

/** Server-side copy of `from` (of `size` bytes) to `to`, replacing the metadata. Overwrites. */
export async function copyObject(client: S3Client, from: { bucket: string; key: string }, size: number, to: ObjectWrite, options: CopyOptions): Promise<void> {
  const copySource = `${from.bucket}/${encodeKey(from.key)}`;
  if (size <= options.multipartAboveBytes) {
    await client.send(
      new CopyObjectCommand({ Bucket: to.bucket, Key: to.key, CopySource: copySource, MetadataDirective: 'REPLACE', ContentType: to.contentType, Metadata: to.metadata }),
    );
    return;
  }
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: to.bucket, Key: to.key, ContentType: to.contentType, Metadata: to.metadata }));
  try {
    const ranges: ByteRange[] = [];
    for (let start = 0; start < size; start += options.partBytes) ranges.push({ start, end: Math.min(size, start + options.partBytes) - 1 });
    const etags: string[] = new Array(ranges.length);
    let next = 0;
    const worker = async () => {
      while (next < ranges.length) {
        const i = next++;
        const r = ranges[i]!;
        const part = await client.send(
          new UploadPartCopyCommand({ Bucket: to.bucket, Key: to.key, UploadId, PartNumber: i + 1, CopySource: copySource, CopySourceRange: `bytes=${r.start}-${r.end}` }),
        );
        etags[i] = part.CopyPartResult?.ETag ?? '';
      }
    };
    await Promise.all(Array.from({ length: Math.min(PART_CONCURRENCY, ranges.length) }, worker));
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: to.bucket,
        Key: to.key,
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
  } catch (err) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: to.bucket, Key: to.key, UploadId })).catch(() => {});
    throw err;
  }
}

/** Streams a source held elsewhere into `to` (bounded memory: a few parts). Overwrites. */
export async function uploadSource(client: S3Client, source: UploadSource, to: ObjectWrite, partBytes: number): Promise<void> {
  const upload = new Upload({
    client,
    params: { Bucket: to.bucket, Key: to.key, Body: source.open(), ContentType: to.contentType, Metadata: to.metadata },
    partSize: partBytes,
    queueSize: PART_CONCURRENCY,
    leavePartsOnError: false,
  });
  await upload.done();
}

/** A key as a CopySource path: percent-encoded, its slashes kept. */
function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** The objects behind `s3:` source refs, for uploadSources (source-resolver.ts). */
export function s3ObjectAccess(client: S3Client): ObjectAccess {
  return {
    source: (bucket, key, size) => objectSource(client, bucket, key, size),
    async size(bucket, key) {
      try {
        return (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength ?? 0;
      } catch (err) {
        if (isS3NotFound(err)) return null;
        throw err;
      }
    },
    async remove(bucket, key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })); // S3 answers 204 for a missing key too
    },
  };
}
