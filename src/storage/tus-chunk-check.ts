/**
 * What a tus store needs to honour the checksum extension and whole-file checksums while bytes
 * stream in, without holding a chunk in memory: a hashing pass-through, the per-request facts
 * the tus endpoint hands the store, and the capability a store offers to take a rejected chunk
 * back (the file store truncates; an object store may stage the chunk instead).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { UploadServerState } from './tus-upload-record.js';

/** Upload-Checksum algorithms offered (Tus-Checksum-Algorithm); the spec requires sha1. */
export const CHUNK_ALGORITHMS = ['sha1', 'sha256', 'sha512', 'md5'] as const;
export type ChunkAlgorithm = (typeof CHUNK_ALGORITHMS)[number];

/** A PATCH body's declared checksum (tus checksum extension). */
export interface ChunkCheck {
  readonly algorithm: ChunkAlgorithm;
  readonly digest: Buffer;
  /** Content-Length of the body, when sent: fewer bytes means the body was cut short. */
  readonly declaredBytes: number | undefined;
}

/** Facts of one tus request that the store cannot see in its arguments. */
export interface TusWriteScope {
  /** The server's state for the upload this request creates. */
  readonly newRecord?: UploadServerState;
  /** The checksum of this request's body. */
  readonly chunkCheck?: ChunkCheck;
  /**
   * Record texts this request read, by upload id: later reads in the same request answer from
   * here (a PATCH read its record four times). Only while the request holds the upload's lock;
   * the store drops a key when this request writes it (TusFileStore.record).
   */
  readonly records?: Map<string, string>;
  /** The request's context (http/request-context.ts), for the error answers @tus/server writes. */
  readonly request?: unknown;
}

/**
 * Carries a TusWriteScope from the tus endpoint, through @tus/server's handlers (which pass the
 * store only an id, an offset and a stream), to the store's create() and write().
 */
export class TusRequestScope {
  readonly #storage = new AsyncLocalStorage<TusWriteScope>();

  run<T>(scope: TusWriteScope, fn: () => Promise<T>): Promise<T> {
    return this.#storage.run(scope, fn);
  }

  current(): TusWriteScope | undefined {
    return this.#storage.getStore();
  }
}

/**
 * A store that appends a checksummed chunk all or nothing: when the body is cut short or its
 * digest differs, none of its bytes count and the upload's offset stays at `offset`.
 * Resolves the new offset; rejects with AppError ERR_CHUNK_CHECKSUM_MISMATCH (460) on a mismatch.
 */
export interface CheckedChunkWriter {
  writeChecked(body: Readable, id: string, offset: number, check: ChunkCheck): Promise<number>;
}

export type ChunkVerdict = 'ok' | 'mismatch' | 'incomplete';

/** Hashes what passes through for every listener (chunk check, whole-file digest); counts bytes. */
export class HashingTap extends Transform {
  bytes = 0;
  constructor(private readonly hashes: ReadonlyArray<Hash>) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    for (const h of this.hashes) h.update(chunk);
    done(null, chunk);
  }
}

export function chunkHash(check: ChunkCheck): Hash {
  return createHash(check.algorithm);
}

/** Decides a checksummed chunk once its body ended (`bytes` of it reached the store). */
export function chunkVerdict(check: ChunkCheck, bytes: number, hash: Hash): ChunkVerdict {
  if (check.declaredBytes !== undefined && bytes !== check.declaredBytes) return 'incomplete';
  return hash.digest().equals(check.digest) ? 'ok' : 'mismatch';
}
