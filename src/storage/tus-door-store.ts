/**
 * The tus upload store as the HTTP front doors use it (tus 1.0 and IETF Resumable Uploads): the
 * operator-facing TusUploadStore, plus the record the doors read per request, the running sha256
 * of each upload followed from byte 0, and the @tus/utils DataStore calls the RUFH door makes
 * itself. Implemented by TusFileStore and S3TusDoorStore. Concatenation is a capability of the
 * file store only (`concatenation` is null on S3: the extension is then not announced).
 */
import type { Readable } from 'node:stream';
import type { Upload } from '@tus/utils';
import type { StoredUpload } from './tus-upload-record.js';
import type { TusUploadStore } from './upload-store.js';
import type { UploadSource } from './upload-source.js';

export interface UploadFacts {
  readonly size: number | undefined;
  readonly slotPath: string | undefined;
  readonly partial: boolean;
}

export interface TusDoorStore extends TusUploadStore {
  /** Start-up: hold every record read once until unprimeRecords() (a store with local records; docs/performance.md). */
  primeRecords?(): void;
  unprimeRecords?(): void;
  /** Upload ids whose record file is no readable record (a store with local records). */
  unreadableRecords?(): Promise<string[]>;
  /** The stored record (client metadata + server state `hfs`), or null for an unknown id. */
  record(id: string): Promise<StoredUpload | null>;
  /** Declared size, slot and concatenation role (one small read of the record). */
  facts(id: string): Promise<UploadFacts>;
  /**
   * The sha256 of all `size` bytes when this process received every one of them (followed from
   * byte 0, UploadDigests); then forgotten. undefined: the bytes must be read to hash them.
   */
  runningSha256(id: string, size: number): string | undefined;
  /** The bytes of an upload whose every byte arrived (before or after markFinished). */
  bytesOf(id: string, size: number): UploadSource;
  /** `fn` learns of every upload removed (terminated, expired, discarded). */
  watchRemovals(fn: (id: string) => void): void;
  create(upload: Upload): Promise<Upload>;
  write(body: Readable, id: string, offset: number): Promise<number>;
  getUpload(id: string): Promise<Upload>;
  declareUploadLength(id: string, length: number): Promise<void>;
  /**
   * The first `length` stored bytes of an unfinished upload (length at most its offset), to tell
   * whether a repeated upgraded PUT carries the same file; null when the store cannot read an
   * unfinished upload's bytes (S3: they are parts of a multipart upload until it completes).
   */
  storedPrefix(id: string, length: number): Promise<Buffer | null>;
  /** The upload an upgraded slot PUT created (IETF Resumable Uploads), possibly gone or finished since. */
  resumableOf(slotPath: string): Promise<string | undefined>;
  setResumableOf(slotPath: string, id: string | undefined): Promise<void>;
  /** Protocol extensions the store offers beyond @tus/server's own (checksum, concatenation). */
  readonly extensions: string[];
}
