/**
 * S3TusStore with what the tus front doors need beyond the operator-facing TusUploadStore
 * (tus-door-store.ts):
 * - the server's state of an upload (slot, signed type, declared sha256) travels in its `.info`
 *   object as `hfs`, beside the client's metadata (which HEAD returns as sent), like the file
 *   store's record; markFinished rewrites `.info` with offset = size, so "finished" is one read;
 * - every upload is hashed as its bytes arrive (UploadDigests), so finalization gets its sha256
 *   without reading the object again when this process received every byte;
 * - the checksum extension: a checksummed chunk is staged in a local temp file while it is hashed
 *   and handed to @tus/s3-store only when it matches (a part sent to S3 cannot be taken back);
 * - the RUFH door's per-slot index lives in small objects `rufh.<hash>` below the uploads prefix.
 * Concatenation is not offered on S3 (joining parts would need UploadPartCopy of every partial,
 * whose parts other than the last must be 5 MiB or more): the extension is not announced.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ERRORS, Upload } from '@tus/utils';
import { AppError } from '../errors.js';
import { S3_LAYOUT, isS3NotFound } from './s3-client.js';
import { objectSource } from './s3-objects.js';
import type { UploadSource } from './upload-source.js';
import { S3TusStore, type S3TusStoreOptions } from './s3-tus-store.js';
import { HashingTap, chunkHash, chunkVerdict, type ChunkCheck, type TusWriteScope } from './tus-chunk-check.js';
import type { TusDoorStore, UploadFacts } from './tus-door-store.js';
import { isFinishedRecord, isPartial, serverStateOf, type StoredUpload, type UploadServerState } from './tus-upload-record.js';
import { UploadDigests } from './upload-digests.js';

export interface S3TusDoorStoreOptions extends S3TusStoreOptions {
  /** The current request's facts (the tus endpoint runs every request inside its scope). */
  readonly scope?: () => TusWriteScope | undefined;
  /** Where checksummed chunks are staged (s3-scratch.ts); default os.tmpdir(). */
  readonly scratchDir?: string;
}

type WithState = Upload & { hfs?: UploadServerState };

const SAFE_ID = /^(?!\.\.?$)[\w.-]+$/;
const resumableKey = (slotPath: string) => `rufh.${createHash('sha256').update(slotPath).digest('hex').slice(0, 40)}`;

export class S3TusDoorStore extends S3TusStore implements TusDoorStore {
  readonly #scope: () => TusWriteScope | undefined;
  readonly #digests = new UploadDigests();
  #onRemoved: (id: string) => void = () => {};
  /** Where @tus/s3-store's objects live (the client adds it to every key: s3-key-prefix.ts). */
  readonly #keyPrefix: string;
  readonly #scratchDir: string | undefined;

  constructor(options: S3TusDoorStoreOptions) {
    super(options);
    this.#scope = options.scope ?? (() => undefined);
    this.#scratchDir = options.scratchDir;
    this.#keyPrefix = `${options.settings.keyPrefix}${S3_LAYOUT.uploads}`;
    this.extensions = [...this.extensions, 'checksum'];
  }

  watchRemovals(fn: (id: string) => void): void {
    this.#onRemoved = fn;
  }

  override async create(upload: Upload): Promise<Upload> {
    const hfs = this.#scope()?.newRecord;
    if (hfs) (upload as WithState).hfs = hfs;
    const created = await super.create(upload);
    this.#digests.start(upload.id);
    return created;
  }

  async record(id: string): Promise<StoredUpload | null> {
    if (!SAFE_ID.test(id)) return null;
    let m: Awaited<ReturnType<S3TusStore['getMetadata']>>;
    try {
      m = await this.getMetadata(id);
    } catch (err) {
      if (isS3NotFound(err)) return null;
      throw err; // S3 unreachable is not "no such upload"
    }
    const f = m.file as WithState;
    return {
      id,
      ...(f.size !== undefined && { size: f.size }),
      offset: f.offset,
      ...(f.metadata !== undefined && { metadata: f.metadata }),
      ...(f.creation_date !== undefined && { creation_date: f.creation_date }),
      ...(f.hfs && { hfs: f.hfs }),
    };
  }

  async facts(id: string): Promise<UploadFacts> {
    const info = await this.record(id).catch(() => null);
    if (!info) return { size: undefined, slotPath: undefined, partial: false };
    return { size: info.size, slotPath: serverStateOf(info)?.slotPath ?? undefined, partial: isPartial(info) };
  }

  bytesOf(id: string, size: number): UploadSource {
    return objectSource(this.client, this.bucket, id, size, `${this.#keyPrefix}${id}`);
  }

  runningSha256(id: string, size: number): string | undefined {
    return this.#digests.finish(id, size);
  }

  override async markFinished(id: string): Promise<void> {
    await super.markFinished(id);
    const m = await this.getMetadata(id);
    if (m.file.offset === m.file.size) return;
    m.file.offset = m.file.size!;
    await this.saveMetadata(m.file, m['upload-id']);
    await this.clearCache(id);
  }

  override async write(body: Readable, id: string, offset: number): Promise<number> {
    // A finished upload takes no more, not even zero bytes: its multipart upload is completed, so
    // @tus/s3-store's write would fail on it (a 500). An empty upload is finished from its
    // creation on; while its multipart upload is open, its (empty) write completes it.
    const info = await this.record(id);
    if (info && isFinishedRecord(info) && !(await this.emptyAndOpen(id, info.size))) throw new AppError('ERR_UPLOAD_COMPLETE');
    const check = this.#scope()?.chunkCheck;
    if (check) return this.#writeChecked(body, id, offset, check);
    return this.#writeFollowed(body, id, offset);
  }

  /** Writes through the running digest of the upload (when followed from byte 0 up to `offset`). */
  async #writeFollowed(body: Readable, id: string, offset: number): Promise<number> {
    const digest = this.#digests.forWrite(id, offset);
    const tap = new HashingTap(digest === undefined ? [] : [digest]);
    body.once('error', (err) => tap.destroy(err));
    try {
      const written = await super.write(body.pipe(tap), id, offset);
      this.#digests.settle(id, tap.bytes, written);
      return written;
    } catch (err) {
      this.#digests.drop(id);
      throw err;
    }
  }

  /** All or nothing: the chunk is staged and hashed locally, and sent on only when it matches. */
  async #writeChecked(body: Readable, id: string, offset: number, check: ChunkCheck): Promise<number> {
    const staged = join(this.#scratchDir ?? tmpdir(), `hfs-s3-chunk-${randomBytes(8).toString('hex')}`);
    try {
      const hash = chunkHash(check);
      const tap = new HashingTap([hash]);
      await pipeline(body, tap, createWriteStream(staged, { mode: 0o600 }));
      const verdict = chunkVerdict(check, tap.bytes, hash);
      if (verdict === 'incomplete') return offset; // cut short: cannot be verified, nothing counts
      if (verdict === 'mismatch') throw new AppError('ERR_CHUNK_CHECKSUM_MISMATCH');
      return await this.#writeFollowed(createReadStream(staged), id, offset);
    } finally {
      await unlink(staged).catch(() => {});
    }
  }

  /**
   * Termination, and the removal of an upload refused at completion (checksum mismatch, slot
   * taken): @tus/s3-store's remove() gives up with "not found" once the multipart upload was
   * completed, leaving `.info` (HEAD would then still answer). Everything goes here.
   */
  override async remove(id: string): Promise<void> {
    if ((await this.record(id)) === null) throw ERRORS.FILE_NOT_FOUND;
    await this.discard(id);
  }

  override async discard(id: string): Promise<void> {
    await super.discard(id);
    this.#digests.drop(id);
    this.#onRemoved(id);
  }

  /**
   * Readable while every stored byte is still in the upload's incomplete part (`<id>.part`, an
   * ordinary object, below one part size); once parts of the multipart upload were sent, S3 does
   * not let them be read back before completion: null.
   */
  async storedPrefix(id: string, length: number): Promise<Buffer | null> {
    try {
      if ((await this.retrieveParts(id)).length > 0) return null;
      const part = await this.getIncompletePart(id);
      if (part === undefined) return null;
      const chunks: Buffer[] = [];
      let got = 0;
      for await (const chunk of part as AsyncIterable<Buffer>) {
        chunks.push(chunk);
        got += chunk.length;
        if (got >= length) break; // leaving the loop destroys the stream
      }
      return got >= length ? Buffer.concat(chunks, got).subarray(0, length) : null;
    } catch {
      return null;
    }
  }

  async resumableOf(slotPath: string): Promise<string | undefined> {
    try {
      const { Body } = await this.client.getObject({ Bucket: this.bucket, Key: resumableKey(slotPath) });
      return ((JSON.parse((await Body?.transformToString()) ?? '{}') as { id?: string }).id) ?? undefined;
    } catch (err) {
      if (isS3NotFound(err)) return undefined;
      throw err;
    }
  }

  async setResumableOf(slotPath: string, id: string | undefined): Promise<void> {
    const Key = resumableKey(slotPath);
    if (id === undefined) await this.client.deleteObject({ Bucket: this.bucket, Key }).catch(() => {});
    else await this.client.putObject({ Bucket: this.bucket, Key, Body: JSON.stringify({ slotPath, id }), ContentType: 'application/json' });
  }

  /** Guards against ids that are no single key segment before @tus/s3-store builds keys from them. */
  override async declareUploadLength(id: string, length: number): Promise<void> {
    if (!SAFE_ID.test(id)) throw ERRORS.FILE_NOT_FOUND;
    await super.declareUploadLength(id, length);
  }
}
