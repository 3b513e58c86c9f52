/**
 * From a source ref (as a finalization job stores it) back to an UploadSource, and what
 * finalization does with the bytes behind a ref besides reading them. Only storage/ reads refs:
 * `file:<path>` is a local file, `s3:<bucket>/<full key>` an object reached through a plain
 * client (no key prefix of its own, since the ref names the full key).
 */
import { stat, unlink } from 'node:fs/promises';
import { fileSource, localPathOfRef, s3ObjectOfRef, type UploadSource } from './upload-source.js';

/** `size` is the upload's size as the job recorded it (a ref does not carry it). */
export type SourceResolver = (ref: string, size: number) => UploadSource;

/** The bytes behind source refs, on the configured backend. */
export interface UploadSources {
  readonly resolve: SourceResolver;
  /** How many bytes are stored behind `ref`, or null when they are gone. Rejects when the store cannot answer. */
  sizeOf(ref: string): Promise<number | null>;
  /** Removes the bytes behind `ref`; tolerates them being gone. */
  remove(ref: string): Promise<void>;
}

/**
 * The object store behind `s3:` refs (s3ObjectAccess in s3-objects.ts). Injected, so that the
 * file backend never loads the AWS SDK.
 */
export interface ObjectAccess {
  source(bucket: string, key: string, size: number): UploadSource;
  /** The object's size, or null when it is gone. */
  size(bucket: string, key: string): Promise<number | null>;
  /** Removes the object; a missing one is no error. */
  remove(bucket: string, key: string): Promise<void>;
}

/** Refuses a ref of a backend it was not given (an `s3:` ref without object access): a TypeError naming the ref's scheme. */
export function sourceResolver(objects?: ObjectAccess): SourceResolver {
  return uploadSources(objects).resolve;
}

export function uploadSources(objects?: ObjectAccess): UploadSources {
  const objectOf = (ref: string) => {
    const object = s3ObjectOfRef(ref);
    if (object === null || objects === undefined) throw new TypeError(`no storage backend configured for source ref ${ref.slice(0, ref.indexOf(':') + 1) || '(no scheme)'}`);
    return object;
  };
  return {
    resolve(ref, size) {
      const path = localPathOfRef(ref);
      if (path !== null) return fileSource(path, size);
      const { bucket, key } = objectOf(ref);
      return objects!.source(bucket, key, size);
    },
    async sizeOf(ref) {
      const path = localPathOfRef(ref);
      if (path !== null) {
        try {
          return (await stat(path)).size;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
          throw err;
        }
      }
      const { bucket, key } = objectOf(ref);
      return objects!.size(bucket, key);
    },
    async remove(ref) {
      const path = localPathOfRef(ref);
      if (path !== null) {
        await unlink(path).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
        return;
      }
      const { bucket, key } = objectOf(ref);
      await objects!.remove(bucket, key);
    },
  };
}

/** The resolver of the file backend (every ref a local path). */
export const fileSourceResolver: SourceResolver = sourceResolver();
