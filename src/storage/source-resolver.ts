/**
 * From a source ref (as a finalization job stores it) back to an UploadSource. Only storage/
 * reads refs: `file:<path>` is a local file, `s3:<bucket>/<full key>` an object read through a
 * plain client (no key prefix of its own, since the ref names the full key).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { objectSource } from './s3-objects.js';
import { fileSource, localPathOfRef, s3ObjectOfRef, type UploadSource } from './upload-source.js';

/** `size` is the upload's size as the job recorded it (a ref does not carry it). */
export type SourceResolver = (ref: string, size: number) => UploadSource;

/** Refuses a ref of a backend it was not given (an `s3:` ref without a client): a TypeError naming the ref's scheme. */
export function sourceResolver(s3?: { readonly client: S3Client }): SourceResolver {
  return (ref, size) => {
    const path = localPathOfRef(ref);
    if (path !== null) return fileSource(path, size);
    const object = s3ObjectOfRef(ref);
    if (object !== null && s3 !== undefined) return objectSource(s3.client, object.bucket, object.key, size);
    throw new TypeError(`no storage backend configured for source ref ${ref.slice(0, ref.indexOf(':') + 1) || '(no scheme)'}`);
  };
}

/** The resolver of the file backend (every ref a local path). */
export const fileSourceResolver: SourceResolver = sourceResolver();
