/**
 * tus uploads on S3 through @tus/s3-store, below <key prefix>uploads/ (s3-key-prefix.ts), with
 * what this server relies on (field-notes.md, "S3"):
 * - a finished upload never expires: it has no multipart upload left, and getUpload gives it a
 *   fresh creation date, so the handlers' expiry check (410) never applies to it;
 * - termination and expiry also remove the trailing `<id>.part` the store leaves behind;
 * - expiry aborts the multipart uploads of unfinished uploads older than the period (only those
 *   below our prefix), with time as an argument;
 * - releasing a published upload's bytes keeps `<id>.info`, so HEAD still answers complete;
 * - S3 being unreachable is an error, never "no such upload" (a 404 makes clients start over);
 * - a PATCH whose part upload fails keeps every byte stored before it (see PartWrite).
 * Its metadata cache (what `.info` says) is per process by default; in cluster mode app-storage.ts
 * gives it one that lives for one request (cluster/request-scoped-kv-store.ts says why).
 * The server's state of an upload (slot path, signed type) is the record's `hfs` (the door store
 * writes it), else the legacy metadata keys (tus-upload-record.ts).
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { ReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { S3Store } from '@tus/s3-store';
import { ERRORS, Upload, type DataStore, type KvStore } from '@tus/utils';
import { S3_LAYOUT, isS3NotFound, s3ClientConfig, type S3Settings } from './s3-client.js';
import { prefixKeys } from './s3-key-prefix.js';
import { objectSource } from './s3-objects.js';
import { clientMetadataOf, serverStateOf, type StoredUpload } from './tus-upload-record.js';
import type { UploadSource } from './upload-source.js';
import type { FinishedUpload, TusUploadStore, UploadSummary } from './upload-store.js';

export interface S3TusStoreOptions {
  readonly settings: S3Settings;
  /** Unfinished uploads are removed this long after creation; 0 turns expiry off. */
  readonly expirationMs: number;
  /** @tus/s3-store's metadata cache; default per process (right for one instance only). */
  readonly cache?: KvStore<MetadataValue>;
}

type MetadataValue = Awaited<ReturnType<S3Store['getMetadata']>>;

/**
 * A write in progress on one upload (the locker runs one at a time). @tus/s3-store sends a PATCH's
 * parts in parallel, the trailing piece (`<id>.part`) whenever it is ready, and deletes the previous
 * `.part` before sending the part that holds its bytes: a failed part lost the confirmed tail and
 * could leave later bytes stored as `.part` in its place. Here the parts go in order, the tail only
 * after all of them, and the previous tail is deleted once a part holds its bytes.
 */
interface PartWrite {
  /** The parts sent so far; rejected once one failed. */
  sent: Promise<unknown>;
  /** The last part stored: a tail written now follows it. */
  lastPart: number;
  /** The previous `.part` is still there, its bytes not yet in a part. */
  oldTail: boolean;
}

/** User metadata of `<id>.part`: the number of the part its bytes follow. */
const TAIL_AFTER = 'hfs-after-part';

/** Upload ids are single key segments (@tus/server names them). */
const SAFE_ID = /^(?!\.\.?$)[\w.-]+$/;

export class S3TusStore extends S3Store implements TusUploadStore {
  readonly #bucket: string;
  /** Where the objects of upload `id` live: `${#prefix}${id}`. */
  readonly #prefix: string;
  readonly #writes = new Map<string, PartWrite>();

  constructor(options: S3TusStoreOptions) {
    const { settings } = options;
    super({
      partSize: settings.partBytes,
      expirationPeriodInMilliseconds: options.expirationMs,
      // Tags only serve S3 lifecycle rules; expiry here is deleteExpired's job.
      useTags: false,
      ...(options.cache && { cache: options.cache }),
      s3ClientConfig: { bucket: settings.bucket, ...s3ClientConfig(settings) },
    });
    this.#bucket = settings.bucket;
    this.#prefix = `${settings.keyPrefix}${S3_LAYOUT.uploads}`;
    prefixKeys(this.client, this.#prefix);
    // @tus/s3-store sends the client's metadata `contentType` and `cacheControl` as headers of the
    // multipart upload: CR LF there fails in the SDK, non-ASCII fails S3's signature check (a 500
    // either way). The object is never served (publishing sets its own type); `.info` keeps both.
    this.client.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'CreateMultipartUploadCommand') {
          const input = args.input as { ContentType?: string; CacheControl?: string };
          delete input.ContentType;
          delete input.CacheControl;
        }
        return next(args);
      },
      { step: 'initialize', name: 'hfsNoClientHeaders', override: true },
    );
  }

  get datastore(): DataStore {
    return this;
  }

  /** The SDK client (keys below the uploads prefix). */
  get s3(): S3Client {
    return this.client;
  }

  /**
   * @tus/s3-store's reading of `.info`, keeping the server's state (`hfs`) on the upload it caches.
   * Here rather than in the door store: the offline commands use this class, and without `hfs`
   * they saw no slot path (`uploads list` showed "-") and skipped finished uploads in `recover`.
   */
  protected override async getMetadata(id: string): Promise<MetadataValue> {
    const cached = await this.cache.get(id);
    if (cached) return cached;
    const { Metadata, Body } = await this.client.getObject({ Bucket: this.bucket, Key: this.infoKey(id) });
    const stored = JSON.parse((await Body?.transformToString()) ?? '{}') as StoredUpload & { storage?: Upload['storage'] };
    const file: Upload & Pick<StoredUpload, 'hfs'> = new Upload({
      id,
      size: Number.isFinite(stored.size) ? Number(stored.size) : undefined,
      offset: Number(stored.offset ?? 0),
      metadata: stored.metadata,
      creation_date: stored.creation_date,
      storage: stored.storage,
    });
    if (stored.hfs) file.hfs = stored.hfs; // an own property: saveMetadata's JSON keeps it
    const value: MetadataValue = { 'tus-version': Metadata?.['tus-version'] ?? '', 'upload-id': Metadata?.['upload-id'] ?? '', file };
    await this.cache.set(id, value);
    return value;
  }

  override async getUpload(id: string): Promise<Upload> {
    if (!SAFE_ID.test(id)) throw ERRORS.FILE_NOT_FOUND;
    // @tus/s3-store answers any failure to read the record as FILE_NOT_FOUND: an S3 outage would
    // make HEAD say 404, and tus-js-client then starts the upload over from byte 0. Read it first
    // (it is cached for the call below) so that only a missing record is "not found".
    await this.getMetadata(id).catch((err: unknown) => {
      throw isS3NotFound(err) ? ERRORS.FILE_NOT_FOUND : err;
    });
    const upload = await super.getUpload(id);
    if (!isComplete(upload)) return upload;
    const { creation_date: _created, ...rest } = upload;
    return new Upload(rest); // a fresh creation date: never expired
  }

  override async write(src: Readable, id: string, offset: number): Promise<number> {
    const w: PartWrite = { sent: Promise.resolve(), lastPart: 0, oldTail: false };
    this.#writes.set(id, w);
    try {
      return await super.write(src, id, offset);
    } finally {
      if (this.#writes.get(id) === w) this.#writes.delete(id);
    }
  }

  protected override async uploadParts(metadata: MetadataValue, readStream: Readable, currentPartNumber: number, offset: number): Promise<number> {
    const w = this.#writes.get(metadata.file.id);
    if (w) w.lastPart = currentPartNumber - 1;
    return super.uploadParts(metadata, readStream, currentPartNumber, offset);
  }

  // One part after the other: a part stored after one that failed would sit beyond the gap, and
  // count as the bytes that follow once a later write fills it.
  protected override async uploadPart(metadata: MetadataValue, readStream: ReadStream | Readable | Buffer, partNumber: number): Promise<string> {
    const w = this.#writes.get(metadata.file.id);
    if (!w) return super.uploadPart(metadata, readStream, partNumber);
    const sent = w.sent.then(
      async () => {
        const etag = await super.uploadPart(metadata, readStream, partNumber);
        w.lastPart = partNumber;
        if (w.oldTail) {
          w.oldTail = false;
          // Left behind (a failure, a crash), its mark says a part holds its bytes: never counted again.
          await super.deleteIncompletePart(metadata.file.id).catch(() => {});
        }
        return etag;
      },
      (err: unknown) => {
        if (!Buffer.isBuffer(readStream)) readStream.destroy();
        throw err;
      },
    );
    w.sent = sent;
    return sent;
  }

  // The tail only once every part before it is stored; marked with the part it follows.
  protected override async uploadIncompletePart(id: string, readStream: ReadStream | Readable): Promise<string> {
    const w = this.#writes.get(id);
    if (!w) return super.uploadIncompletePart(id, readStream);
    await w.sent.catch((err: unknown) => {
      readStream.destroy();
      throw err;
    });
    const data = await this.client.putObject({
      Bucket: this.bucket,
      Key: this.partKey(id, true),
      Body: readStream,
      Tagging: this.useCompleteTag('false'),
      Metadata: { [TAIL_AFTER]: String(w.lastPart) },
    });
    w.oldTail = false; // replaced by a tail that starts with its bytes
    return data.ETag ?? '';
  }

  // The previous tail is the only copy of its bytes until a part holds them (see uploadPart).
  protected override async deleteIncompletePart(id: string): Promise<void> {
    const w = this.#writes.get(id);
    if (w) w.oldTail = true;
    else await super.deleteIncompletePart(id);
  }

  protected override async getIncompletePartSize(id: string): Promise<number | undefined> {
    let head;
    try {
      head = await this.client.headObject({ Bucket: this.#bucket, Key: this.partKey(id, true) });
    } catch (err) {
      if (isS3NotFound(err)) return undefined;
      throw err;
    }
    return (await this.#tailSpent(id, head.Metadata)) ? undefined : head.ContentLength;
  }

  protected override async getIncompletePart(id: string): Promise<Readable | undefined> {
    return (await this.getIncompletePartSize(id)) === undefined ? undefined : super.getIncompletePart(id);
  }

  /** A tail whose bytes a later part holds (its write ended before deleting it) is no part of the upload. */
  async #tailSpent(id: string, meta: Record<string, string> | undefined): Promise<boolean> {
    const after = Number(meta?.[TAIL_AFTER]);
    if (!Number.isInteger(after)) return false; // written before the mark
    const { 'upload-id': UploadId } = await this.getMetadata(id);
    const { Parts } = await this.client.listParts({ Bucket: this.#bucket, Key: id, UploadId, PartNumberMarker: String(after), MaxParts: 1 });
    return (Parts ?? []).length > 0;
  }

  async declaredSize(id: string): Promise<number | undefined> {
    return (await this.#info(id))?.size;
  }

  async metadata(id: string): Promise<Record<string, string | null> | null> {
    const info = await this.#info(id);
    return info ? (clientMetadataOf({ metadata: info.metadata as Record<string, string | null> | undefined }) ?? {}) : null;
  }

  async markFinished(id: string): Promise<void> {
    const upload = await this.getUpload(id);
    // @tus/s3-store completes the multipart upload itself when the last byte arrives.
    if (!isComplete(upload)) throw new Error(`upload ${id} holds ${upload.offset} of ${upload.size ?? 'an undeclared number of'} bytes`);
    // ... in write() only: an empty upload, complete at its creation, never had one. An empty
    // write makes the store complete it (with one empty part) as for any other upload.
    if (await this.emptyAndOpen(id, upload.size)) await super.write(Readable.from([]), id, 0);
  }

  /** An upload of 0 bytes whose multipart upload is still open (nothing completed it yet). */
  protected async emptyAndOpen(id: string, size: number | undefined): Promise<boolean> {
    if (size !== 0) return false;
    const { 'upload-id': uploadId } = await this.getMetadata(id);
    try {
      await this.client.listParts({ Bucket: this.#bucket, Key: id, UploadId: uploadId, MaxParts: 1 });
      return true;
    } catch (err) {
      if (isS3NotFound(err)) return false; // completed (or aborted)
      throw err;
    }
  }

  async #hasObject(id: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: id }));
      return true;
    } catch (err) {
      if (isS3NotFound(err)) return false;
      throw err;
    }
  }

  async summarize(id: string): Promise<UploadSummary | null> {
    const info = await this.#info(id);
    if (info === null) return null;
    let upload: Upload;
    try {
      upload = await this.getUpload(id);
    } catch (err) {
      if (err === ERRORS.FILE_NOT_FOUND || isS3NotFound(err)) return null; // removed meanwhile
      throw err;
    }
    return {
      id,
      // The door store keeps the server's state beside the metadata (`hfs`); older records carry it in the metadata.
      slotPath: serverStateOf({ metadata: info.metadata as Record<string, string | null> | undefined, hfs: (info as { hfs?: StoredUpload['hfs'] }).hfs })?.slotPath ?? null,
      offset: upload.offset,
      size: upload.size ?? null,
      finished: isComplete(upload),
      createdAt: info.creation_date ?? null,
      lastActivityAt: null,
    };
  }

  async listUnfinished(): Promise<UploadSummary[]> {
    const out: UploadSummary[] = [];
    for await (const { id } of this.#multipartUploads()) {
      const summary = await this.summarize(id);
      if (summary !== null && !summary.finished) out.push(summary);
    }
    return out;
  }

  async *finished(): AsyncIterable<FinishedUpload> {
    // Keys come sorted: a completed upload's object `<id>` comes right before its `<id>.info`.
    let previous: string | undefined;
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.#bucket, ContinuationToken: token }));
      for (const { Key } of page.Contents ?? []) {
        if (Key === undefined) continue;
        if (previous !== undefined && Key === `${previous}.info`) {
          const upload = await this.#upload(previous);
          if (upload !== null && isComplete(upload)) {
            // The server's state is the record's `hfs` (the door store keeps it; Upload drops it), else legacy metadata.
            const hfs = ((await this.#info(previous)) as { hfs?: StoredUpload['hfs'] } | null)?.hfs;
            const state = serverStateOf({ metadata: upload.metadata as Record<string, string | null> | undefined, hfs });
            yield { id: previous, size: upload.size, state, source: this.#source(previous, upload.size) };
          }
        }
        previous = Key;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async source(id: string): Promise<UploadSource | null> {
    const upload = await this.#upload(id);
    if (upload === null || !isComplete(upload)) return null;
    if (!(await this.#hasObject(id))) return null; // released
    return this.#source(id, upload.size);
  }

  async releaseData(id: string): Promise<void> {
    const upload = await this.getUpload(id);
    if (!isComplete(upload)) throw ERRORS.FILE_NOT_FOUND; // only a finished upload may lose its bytes
    await this.#deleteKeys([id, this.partKey(id, true)]);
  }

  override async remove(id: string): Promise<void> {
    if (!SAFE_ID.test(id)) throw ERRORS.FILE_NOT_FOUND;
    await super.remove(id);
    await this.#deleteKeys([this.partKey(id, true)]); // @tus/s3-store leaves it behind
  }

  async discard(id: string): Promise<void> {
    if (!SAFE_ID.test(id)) return;
    const uploadId = await this.getMetadata(id).then(
      (m) => m['upload-id'],
      () => undefined,
    );
    if (uploadId) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: id, UploadId: uploadId })).catch((err: unknown) => {
        if (!isS3NotFound(err)) throw err; // completed or aborted already
      });
    }
    await this.#deleteKeys([id, this.infoKey(id), this.partKey(id, true)]);
    await this.clearCache(id);
  }

  override async deleteExpired(nowMs = Date.now()): Promise<number> {
    const expiration = this.getExpiration();
    if (expiration <= 0) return 0;
    let removed = 0;
    for await (const u of this.#multipartUploads()) {
      if (u.initiatedMs + expiration >= nowMs) continue;
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: u.id, UploadId: u.uploadId })).catch((err: unknown) => {
        if (!isS3NotFound(err)) throw err;
      });
      await this.#deleteKeys([this.infoKey(u.id), this.partKey(u.id, true)]);
      await this.clearCache(u.id);
      removed++;
    }
    return removed;
  }

  async *#multipartUploads(): AsyncIterable<{ id: string; uploadId: string; initiatedMs: number }> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.#bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      for (const u of page.Uploads ?? []) {
        if (u.Key === undefined || u.UploadId === undefined) continue;
        yield { id: u.Key, uploadId: u.UploadId, initiatedMs: u.Initiated?.getTime() ?? 0 };
      }
      const more = page.IsTruncated === true;
      keyMarker = more ? page.NextKeyMarker : undefined;
      uploadIdMarker = more ? page.NextUploadIdMarker : undefined;
    } while (keyMarker !== undefined);
  }

  /** getUpload, or null when the upload is unknown (an outage still rejects). */
  async #upload(id: string): Promise<Upload | null> {
    try {
      return await this.getUpload(id);
    } catch (err) {
      if (err === ERRORS.FILE_NOT_FOUND || isS3NotFound(err)) return null;
      throw err;
    }
  }

  async #info(id: string): Promise<Upload | null> {
    if (!SAFE_ID.test(id)) return null;
    try {
      return (await this.getMetadata(id)).file;
    } catch (err) {
      if (isS3NotFound(err)) return null;
      throw err; // S3 unreachable is not "no such upload"
    }
  }

  #source(id: string, size: number): UploadSource {
    return objectSource(this.client, this.#bucket, id, size, `${this.#prefix}${id}`);
  }

  async #deleteKeys(keys: string[]): Promise<void> {
    await this.client.send(new DeleteObjectsCommand({ Bucket: this.#bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
  }
}

function isComplete(upload: Upload): upload is Upload & { size: number } {
  return upload.size !== undefined && upload.offset === upload.size;
}
