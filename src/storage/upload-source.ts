/**
 * The complete bytes of an upload as finalization sees them, wherever they are stored. A source
 * is named by `ref`, a string that survives a restart (a queue job can hold it); only storage/
 * reads a ref, so the rest of the server never learns whether the bytes are in a local file or
 * an S3 object. A published store adopts a source of its own backend without copying the bytes
 * through this process (hard link, server-side copy) and streams any other source.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';

/** Bytes `start`..`end`, both inclusive (as in an HTTP Range). */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export interface UploadSource {
  /** `file:<absolute path>` or `s3:<bucket>/<key>`; opaque outside storage/. */
  readonly ref: string;
  readonly size: number;
  /** The bytes, or a range of them; a source that is gone errors on the stream. */
  open(range?: ByteRange): Readable;
}

const FILE_REF = 'file:';
const S3_REF = 's3:';

export function fileSource(path: string, size: number): UploadSource {
  return {
    ref: fileSourceRef(path),
    size,
    open: (range) => createReadStream(path, range ? { start: range.start, end: range.end } : {}),
  };
}

/** The local file behind a source, or null when its bytes are elsewhere. */
export function localPathOf(source: UploadSource): string | null {
  return localPathOfRef(source.ref);
}

export function localPathOfRef(ref: string): string | null {
  return ref.startsWith(FILE_REF) ? ref.slice(FILE_REF.length) : null;
}

export function fileSourceRef(path: string): string {
  return `${FILE_REF}${path}`;
}

export function s3SourceRef(bucket: string, key: string): string {
  return `${S3_REF}${bucket}/${key}`;
}

/** The S3 object behind a source, or null when its bytes are elsewhere. */
export function s3ObjectOf(source: UploadSource): { bucket: string; key: string } | null {
  return s3ObjectOfRef(source.ref);
}

export function s3ObjectOfRef(ref: string): { bucket: string; key: string } | null {
  if (!ref.startsWith(S3_REF)) return null;
  const rest = ref.slice(S3_REF.length);
  const slash = rest.indexOf('/');
  return slash <= 0 ? null : { bucket: rest.slice(0, slash), key: rest.slice(slash + 1) };
}
