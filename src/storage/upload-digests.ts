/**
 * Running sha256 of tus uploads that declared a whole-file checksum, fed as their bytes stream
 * in, so the last PATCH can answer a mismatch without reading the file again. A running digest
 * lives only in this process and only while it covers exactly the bytes stored (offset 0 up to
 * the current offset); anything else (a restart, a chunk taken back, a write that failed half
 * way, eviction) drops it, and the caller hashes the stored file instead.
 */
import { createHash, type Hash } from 'node:crypto';

interface Running {
  readonly hash: Hash;
  covered: number;
}

export class UploadDigests {
  readonly #running = new Map<string, Running>();

  /** At most `capacity` uploads are followed; the oldest is dropped beyond that (it falls back to a file hash). */
  constructor(private readonly capacity = 1024) {}

  /** Follows a new upload from byte 0. */
  start(id: string): void {
    this.#running.delete(id);
    this.#running.set(id, { hash: createHash('sha256'), covered: 0 });
    if (this.#running.size > this.capacity) this.#running.delete(this.#running.keys().next().value!);
  }

  /** The hash to feed with a write at `offset`, or undefined when this upload is not followed from there. */
  forWrite(id: string, offset: number): Hash | undefined {
    const r = this.#running.get(id);
    if (r === undefined) return undefined;
    if (r.covered !== offset) {
      this.#running.delete(id);
      return undefined;
    }
    return r.hash;
  }

  /** After a write: `hashed` bytes went into the hash and the upload's offset is now `offset`. */
  settle(id: string, hashed: number, offset: number): void {
    const r = this.#running.get(id);
    if (r === undefined) return;
    if (r.covered + hashed !== offset) {
      this.#running.delete(id); // the hash saw bytes that are not stored (or missed some)
      return;
    }
    r.covered = offset;
  }

  drop(id: string): void {
    this.#running.delete(id);
  }

  /** The hex digest when it covers exactly `size` bytes, else undefined; forgets the upload either way. */
  finish(id: string, size: number): string | undefined {
    const r = this.#running.get(id);
    this.#running.delete(id);
    return r !== undefined && r.covered === size ? r.hash.digest('hex') : undefined;
  }
}
