/**
 * @tus/file-store with the fixes and extensions this server relies on (field-notes.md):
 * - a finished upload never answers 410 and is never removed by expiry: its record is
 *   rewritten with offset = size at completion, and expiry skips such records;
 * - after its bytes are published, the upload's data file is gone but HEAD still answers
 *   200 with Upload-Offset = Upload-Length, so a client that resumes a finished upload sees
 *   it finished instead of starting over;
 * - the record keeps the server's state (slot, signed type…) beside the client's metadata,
 *   which HEAD returns exactly as sent (tus-upload-record.ts);
 * - checksummed chunks are all or nothing (CheckedChunkWriter), and uploads that declared a
 *   whole-file sha256 are hashed as their bytes arrive (UploadDigests).
 * Records are replaced atomically (atomic-file-kv-store.ts) and every call reads the record and
 * the data file's size afresh: nothing is cached per process, so instances sharing the directory
 * (cluster mode) all see one state.
 */
import { mkdirSync, statSync } from 'node:fs';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { mkdir, open, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStore } from '@tus/file-store';
import { ERRORS, Upload, type DataStore } from '@tus/utils';
import { AtomicFileKvStore } from './atomic-file-kv-store.js';
import { createEmptyFile } from './durable-files.js';
import { pooledReads, type MetadataReads } from './metadata-reads.js';
import { AppError } from '../errors.js';
import { HashingTap, chunkHash, chunkVerdict, type CheckedChunkWriter, type ChunkCheck, type TusWriteScope } from './tus-chunk-check.js';
import { joinDataFiles } from './tus-file-join.js';
import { clientMetadataOf, isFinishedRecord, isPartial, isUploadId, parseStoredUpload, serverStateOf, type StoredUpload, type UploadServerState } from './tus-upload-record.js';
import { storageFullCause } from './space.js';
import { UploadDigests } from './upload-digests.js';
import { createBodyFile } from '../transfer/body-file.js';
import { finishedTusUploads } from './finished-tus-uploads.js';
import { fileSource, type UploadSource } from './upload-source.js';
import type { FinishedUpload, UploadSummary } from './upload-store.js';
import type { TusDoorStore } from './tus-door-store.js';

export type { UploadSummary } from './upload-store.js';

/** One partial upload of a slot, as the slot's index lists it. */
export interface PartialEntry {
  readonly id: string;
  readonly size: number;
}

/** Index keys contain a '.', which no upload id does (isUploadId), so they never answer as uploads. */
const partialsKey = (slotPath: string) => `concat.${createHash('sha256').update(slotPath).digest('hex').slice(0, 40)}`;
const resumableKey = (slotPath: string) => `rufh.${createHash('sha256').update(slotPath).digest('hex').slice(0, 40)}`;

/**
 * Upload records listUnfinished reads between two turns of the event loop. On a local data
 * directory the reads are synchronous (inlineReads), so without the turns an admin listing of
 * 10,000 unfinished uploads held the loop, and every upload of the process, for seconds.
 */
const LIST_BATCH = 64;

/** What the start-up passes need of a data file. */
interface DataStat {
  readonly size: number;
  readonly mtimeMs: number;
}

export interface TusFileStoreOptions {
  /** The current request's facts (the tus endpoint runs every request inside its scope). */
  scope?: () => TusWriteScope | undefined;
  /** Mode of the data files and records (`[storage] file_mode`, default 0640; FileStore would leave 0644). */
  fileMode?: number;
  /** Mode of the tus directory (`[storage] file_mode` with x bits, default 0750; FileStore would make it 0777 less the umask). */
  dirMode?: number;
  /** How records are read and data files stat'ed (metadata-reads.ts); default through the pool. */
  reads?: MetadataReads;
}

export class TusFileStore extends FileStore implements CheckedChunkWriter, TusDoorStore {
  readonly #scope: () => TusWriteScope | undefined;
  readonly #digests = new UploadDigests();
  readonly #fileMode: number;
  readonly #dirMode: number;
  readonly #reads: MetadataReads;
  /** The tus directory's creation (once; reset when a creation finds it gone). */
  #dirMade: Promise<void> | null = null;
  /** Data file stats read by primeRecords(), by id; null when not primed. */
  #primedStats: Map<string, DataStat | null> | null = null;
  #onRemoved: (id: string) => void = () => {};

  constructor(private readonly dir: string, expirationMs: number, options: TusFileStoreOptions = {}) {
    // Records are replaced atomically (several requests, and in cluster mode several instances, read them).
    // The directory is made here, with its mode, before FileStore would make it with 0777.
    mkdirSync(dir, { recursive: true, mode: options.dirMode ?? 0o750 });
    super({ directory: dir, expirationPeriodInMilliseconds: expirationMs, configstore: new AtomicFileKvStore(dir, options.reads ?? pooledReads, options.fileMode ?? 0o640) });
    this.#reads = options.reads ?? pooledReads;
    this.#scope = options.scope ?? (() => undefined);
    (this.configstore as AtomicFileKvStore).onWrite = (key) => this.#scope()?.records?.delete(key);
    this.#fileMode = options.fileMode ?? 0o640;
    this.#dirMode = options.dirMode ?? 0o750;
    // 'concatenation' is served by the tus endpoint itself (http/tus-concat.ts), before @tus/server sees the request.
    this.extensions = [...this.extensions, 'checksum', 'concatenation'];
  }

  /**
   * Start-up: read every record once (AtomicFileKvStore.prime) and stat every data file once,
   * synchronously, until unprimeRecords(). The start-up passes (recovery, slot index, space
   * account) then answer from memory (docs/performance.md).
   */
  primeRecords(): void {
    const records = this.configstore as AtomicFileKvStore;
    records.prime();
    const stats = new Map<string, DataStat | null>();
    for (const id of records.primedKeys() ?? []) {
      try {
        const st = statSync(this.dataPath(id));
        stats.set(id, { size: st.size, mtimeMs: st.mtimeMs });
      } catch {
        stats.set(id, null);
      }
    }
    this.#primedStats = stats;
  }

  unprimeRecords(): void {
    (this.configstore as AtomicFileKvStore).unprime();
    this.#primedStats = null;
  }

  /** The data file's size and time, from the primed stats when there (any write or removal drops the entry). */
  async #dataStat(id: string): Promise<DataStat | null> {
    const primed = this.#primedStats?.get(id);
    if (primed !== undefined) return primed;
    return this.#reads.stat(this.dataPath(id)).then((st) => ({ size: st.size, mtimeMs: st.mtimeMs }), () => null);
  }

  get datastore(): DataStore {
    return this;
  }

  /** `fn` learns of every upload removed (terminated, expired, discarded): the space account forgets it. */
  watchRemovals(fn: (id: string) => void): void {
    this.#onRemoved = fn;
  }

  /** The local data file of an upload (file backend only; the rest of the server uses source()). */
  dataPath(id: string): string {
    return join(this.dir, id);
  }

  /** TusUploadStore: the client's metadata, as sent. */
  async metadata(id: string): Promise<Record<string, string | null> | null> {
    const info = await this.record(id);
    return info ? (clientMetadataOf(info) ?? {}) : null;
  }

  /** TusDoorStore: the bytes of an upload whose every byte arrived, finished-marked or not. */
  bytesOf(id: string, size: number): UploadSource {
    return fileSource(this.dataPath(id), size);
  }

  async source(id: string): Promise<UploadSource | null> {
    const info = await this.record(id);
    if (!info || !isFinishedRecord(info)) return null;
    const st = await this.#reads.stat(this.dataPath(id)).catch(() => null);
    return st?.isFile() ? fileSource(this.dataPath(id), info.size) : null;
  }

  async *finished(): AsyncIterable<FinishedUpload> {
    for await (const u of finishedTusUploads(this)) {
      yield { id: u.id, size: u.size, state: u.state, source: fileSource(u.dataFile, u.size) };
    }
  }

  async releaseData(id: string): Promise<void> {
    const info = await this.record(id);
    if (!info || !isFinishedRecord(info)) throw ERRORS.FILE_NOT_FOUND; // only a finished upload may lose its bytes
    this.#digests.drop(id);
    this.#primedStats?.delete(id);
    await unlink(this.dataPath(id)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async discard(id: string): Promise<void> {
    // remove() drops the data file when there and the record; an unknown id has nothing to drop.
    await this.remove(id).catch(async (err: unknown) => {
      if (err !== ERRORS.FILE_NOT_FOUND) throw err;
      if (isUploadId(id) && (await this.isUnreadable(id))) await this.#removeFiles(id);
    });
  }

  /**
   * Whether `id`'s record file is there but is no upload record (not JSON: a disk error, a hand
   * edit). Such an upload answers 404 and is skipped by every pass; left alone, its bytes would
   * stay for ever. Expiry removes it once the file is older than the expiration, `recover` at once.
   */
  async isUnreadable(id: string): Promise<boolean> {
    const text = await (this.configstore as AtomicFileKvStore).getText(id);
    return text !== undefined && parseStoredUpload(text) === null;
  }

  /** Upload ids whose record file cannot be read as a record (isUnreadable). */
  async unreadableRecords(): Promise<string[]> {
    const ids = (this.configstore.list ? await this.configstore.list() : []).filter(isUploadId);
    const out: string[] = [];
    for (const id of ids) if (await this.isUnreadable(id)) out.push(id);
    return out;
  }

  /** The upload's data file (when still there) and record, whatever the record holds. */
  async #removeFiles(id: string): Promise<void> {
    this.#digests.drop(id);
    this.#primedStats?.delete(id);
    await unlink(this.dataPath(id)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await this.configstore.delete(id);
    this.#onRemoved(id);
  }

  /**
   * The stored record, or null for an unknown id (or one that is not an upload id). Inside a tus
   * request whose scope carries `records`, read once per request (docs/performance.md).
   */
  async record(id: string): Promise<StoredUpload | null> {
    if (!isUploadId(id)) return null;
    const memo = this.#scope()?.records;
    const text = memo?.get(id) ?? (await (this.configstore as AtomicFileKvStore).getText(id));
    if (text === undefined) return null;
    const info = parseStoredUpload(text); // a fresh object for each caller; a cut record reads as none
    if (info !== null) memo?.set(id, text);
    return info;
  }

  /** This store keeps a request's record reads in its scope's `records` (TusWriteScope). */
  get readsOncePerRequest(): true {
    return true;
  }

  /** Rewrites the server's state of an upload (the caller holds its lock). */
  async updateServerState(id: string, change: (state: UploadServerState) => UploadServerState): Promise<void> {
    const info = await this.record(id);
    const state = info && serverStateOf(info);
    if (!info || !state) throw ERRORS.FILE_NOT_FOUND;
    await this.configstore.set(id, { ...info, hfs: change(state) } as unknown as Upload);
  }

  /** Writes a record as is (a concatenation's final upload, created by the tus endpoint). */
  async putRecord(record: StoredUpload): Promise<void> {
    await this.configstore.set(record.id, record as unknown as Upload);
  }

  override async create(file: Upload): Promise<Upload> {
    const hfs = this.#scope()?.newRecord;
    const path = this.dataPath(file.id);
    // The directory is made once, not per creation (a mkdir per POST, failing with EEXIST inside,
    // showed in the load profile); made again when it disappeared.
    this.#dirMade ??= mkdir(this.dir, { recursive: true, mode: this.#dirMode }).then(
      () => {},
      (err: unknown) => {
        this.#dirMade = null; // the next creation tries again
        throw err;
      },
    );
    await this.#dirMade;
    await createEmptyFile(path, this.#fileMode).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      this.#dirMade = null;
      await mkdir(this.dir, { recursive: true, mode: this.#dirMode });
      await createEmptyFile(path, this.#fileMode);
    });
    const record: StoredUpload = { id: file.id, size: file.size, offset: file.offset, metadata: file.metadata, creation_date: file.creation_date, ...(hfs && { hfs }) };
    await this.configstore.set(file.id, record as unknown as Upload);
    this.#digests.start(file.id); // every upload: its sha256 goes to finalization (issue 14.2)
    file.storage = { type: 'file', path };
    return file;
  }

  override async getUpload(id: string): Promise<Upload> {
    const info = await this.record(id);
    if (!info) throw ERRORS.FILE_NOT_FOUND;
    const metadata = clientMetadataOf(info);
    const storage = { type: 'file', path: this.dataPath(id) };
    if (isFinishedRecord(info)) {
      // No creation_date: the handlers' expiry check (410) then never applies to a finished
      // upload; a partial of a concatenation expires until a final joined it.
      const creation = isPartial(info) ? { creation_date: info.creation_date } : {};
      return new Upload({ id, size: info.size, offset: info.size, metadata, storage, ...creation });
    }
    const st = await this.#reads.stat(this.dataPath(id)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw ERRORS.FILE_NO_LONGER_EXISTS;
      throw err;
    });
    if (st.isDirectory()) throw ERRORS.FILE_NOT_FOUND;
    return new Upload({ id, size: info.size, offset: st.size, metadata, creation_date: info.creation_date, storage });
  }

  /**
   * Appends at `offset` (the data file's size, which is the upload's offset). Unlike FileStore,
   * which turns every failure into a 500, a full store surfaces as itself (ENOSPC, EDQUOT) for
   * the endpoint to answer 507; what reached the file stays, so record and data agree.
   */
  override async write(body: Readable, id: string, offset: number): Promise<number> {
    // A finished upload whose bytes were handed over (data file gone) takes no more, not even zero:
    // FileStore's write would fail and @tus/server answer 500 (issue 10.6). A 0-byte upload is
    // "finished" from its creation on, and its creation-with-upload still writes (nothing).
    const info = await this.record(id);
    if (info && isFinishedRecord(info) && !(await this.#reads.stat(this.dataPath(id)).then(() => true, () => false))) {
      throw new AppError('ERR_UPLOAD_COMPLETE');
    }
    const check = this.#scope()?.chunkCheck;
    if (check) return this.writeChecked(body, id, offset, check);
    const digest = this.#digests.forWrite(id, offset);
    const tap = new HashingTap(digest === undefined ? [] : [digest]);
    try {
      const written = await this.#append(body, tap, id, offset);
      this.#digests.settle(id, tap.bytes, written);
      return written;
    } catch (err) {
      this.#digests.drop(id);
      throw err;
    }
  }

  /** CheckedChunkWriter: hashes while the chunk streams to the file; a rejected chunk is truncated away. */
  async writeChecked(body: Readable, id: string, offset: number, check: ChunkCheck): Promise<number> {
    const hash = chunkHash(check);
    const digest = this.#digests.forWrite(id, offset);
    const tap = new HashingTap(digest ? [hash, digest] : [hash]);
    let written: number;
    try {
      written = await this.#append(body, tap, id, offset);
    } catch (err) {
      await this.discardFrom(id, offset);
      throw err;
    }
    const verdict = chunkVerdict(check, written - offset, hash);
    if (verdict === 'ok') {
      this.#digests.settle(id, tap.bytes, written);
      return written;
    }
    // The spec: a chunk that fails its checksum is discarded and the offset is not updated. A
    // chunk cut short cannot be verified and is discarded the same way (docs/resumable-uploads.md).
    await this.discardFrom(id, offset);
    if (verdict === 'incomplete') return offset;
    throw new AppError('ERR_CHUNK_CHECKSUM_MISMATCH');
  }

  /** Takes back every byte from `offset` on (the caller holds the upload's lock). */
  async discardFrom(id: string, offset: number): Promise<void> {
    this.#digests.drop(id);
    this.#primedStats?.delete(id);
    await truncate(this.dataPath(id), offset);
  }

  /** The running sha256 when it covers all `size` bytes (then forgotten); undefined: hash the file. */
  runningSha256(id: string, size: number): string | undefined {
    return this.#digests.finish(id, size);
  }

  /** Removes the upload's data file (when still there) and record. Rejects with FILE_NOT_FOUND for an unknown id. */
  override async remove(id: string): Promise<void> {
    if ((await this.record(id)) === null) throw ERRORS.FILE_NOT_FOUND;
    await this.#removeFiles(id);
  }

  /** Partial uploads created under `slotPath`: an index beside the records, whose entries may name uploads gone since. */
  async partialsOf(slotPath: string): Promise<PartialEntry[]> {
    const index = (await this.configstore.get(partialsKey(slotPath))) as unknown as { parts?: PartialEntry[] } | undefined;
    return index?.parts ?? [];
  }

  async setPartialsOf(slotPath: string, parts: readonly PartialEntry[]): Promise<void> {
    if (parts.length === 0) await this.configstore.delete(partialsKey(slotPath)).catch(() => {});
    else await this.configstore.set(partialsKey(slotPath), { slotPath, parts } as unknown as Upload);
  }

  /** The upload resource an upgraded slot PUT created (IETF Resumable Uploads), possibly gone or finished since. */
  async storedPrefix(id: string, length: number): Promise<Buffer | null> {
    if (!isUploadId(id)) return null;
    const fh = await open(this.dataPath(id), 'r').catch(() => null);
    if (fh === null) return null;
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buffer, 0, length, 0);
      return bytesRead === length ? buffer : null;
    } finally {
      await fh.close();
    }
  }

  async resumableOf(slotPath: string): Promise<string | undefined> {
    const entry = (await this.configstore.get(resumableKey(slotPath))) as unknown as { id?: string } | undefined;
    return entry?.id;
  }

  async setResumableOf(slotPath: string, id: string | undefined): Promise<void> {
    if (id === undefined) await this.configstore.delete(resumableKey(slotPath)).catch(() => {});
    else await this.configstore.set(resumableKey(slotPath), { slotPath, id } as unknown as Upload);
  }

  /** Joins the parts' data, in order, into the data file of `finalId` (tus-file-join.ts; idempotent). */
  async concatenate(finalId: string, parts: ReadonlyArray<{ readonly id: string; readonly size: number }>): Promise<void> {
    this.#primedStats?.delete(finalId);
    await joinDataFiles(this.dataPath(finalId), parts.map((p) => ({ path: this.dataPath(p.id), size: p.size })));
  }

  async #append(body: Readable, tap: HashingTap, id: string, offset: number): Promise<number> {
    this.#primedStats?.delete(id);
    const out = createBodyFile(this.dataPath(id), { flags: 'r+', start: offset }); // larger writes, early writeback
    try {
      await pipeline(body, tap, out);
    } catch (err) {
      if (storageFullCause(err) !== null) throw err;
      throw ERRORS.FILE_WRITE_ERROR;
    }
    return offset + tap.bytes;
  }

  /** The declared Upload-Length of an upload, when known (one small read of its record). */
  async declaredSize(id: string): Promise<number | undefined> {
    const info = await this.record(id);
    return typeof info?.size === 'number' ? info.size : undefined;
  }

  /** Declared size, slot and concatenation role of an upload, when known (one small read of its record). */
  async facts(id: string): Promise<{ size: number | undefined; slotPath: string | undefined; partial: boolean }> {
    const info = await this.record(id).catch(() => null);
    if (!info) return { size: undefined, slotPath: undefined, partial: false };
    return { size: typeof info.size === 'number' ? info.size : undefined, slotPath: serverStateOf(info)?.slotPath ?? undefined, partial: isPartial(info) };
  }

  /**
   * Unfinished uploads (data file and record both present), for operators and the start-up
   * indexes. Records are read LIST_READS at a time, in list order: one at a time, 10,000 of
   * them kept start-up waiting for seconds (docs/performance.md).
   */
  async listUnfinished(): Promise<UploadSummary[]> {
    const ids = this.configstore.list ? await this.configstore.list() : [];
    const summaries: UploadSummary[] = [];
    for (let start = 0; start < ids.length; start += LIST_BATCH) {
      if (start > 0) await yieldToEventLoop();
      for (const s of await Promise.all(ids.slice(start, start + LIST_BATCH).map((id) => this.summarize(id)))) {
        if (s !== null && !s.finished) summaries.push(s);
      }
    }
    return summaries;
  }

  /** One upload as operators see it, or null when unknown. */
  async summarize(id: string): Promise<UploadSummary | null> {
    const info = await this.record(id);
    if (!info) return null;
    const finished = isFinishedRecord(info);
    const st = await this.#dataStat(id);
    if (!finished && !st) return null;
    return {
      id,
      slotPath: serverStateOf(info)?.slotPath ?? null,
      offset: finished ? info.size! : (st?.size ?? 0),
      size: typeof info.size === 'number' ? info.size : null,
      finished,
      createdAt: info.creation_date ?? null,
      lastActivityAt: st ? new Date(st.mtimeMs).toISOString() : null,
      ...(isPartial(info) && { partial: true }),
    };
  }

  /** Records that every byte arrived; from here on the upload is finished whatever happens to its data file. */
  async markFinished(id: string): Promise<void> {
    const info = await this.record(id);
    if (!info) throw ERRORS.FILE_NOT_FOUND;
    if (isFinishedRecord(info)) return; // marked before (finalization marks again before each admission)
    const st = await this.#reads.stat(this.dataPath(id));
    if (typeof info.size === 'number' && st.size !== info.size) throw new Error(`upload ${id} holds ${st.size} of ${info.size} bytes`);
    await this.configstore.set(id, { ...info, size: info.size ?? st.size, offset: info.size ?? st.size } as unknown as Upload);
  }

  /**
   * Removes unfinished uploads older than the expiration period, and partials of a
   * concatenation that no final joined in that time. Finished uploads are kept.
   */
  override async deleteExpired(now = Date.now()): Promise<number> {
    const expiration = this.getExpiration();
    if (expiration <= 0 || !this.configstore.list) return 0;
    let removed = 0;
    for (const id of await this.configstore.list()) {
      const info = await this.record(id);
      if (info === null && isUploadId(id) && (await this.isUnreadable(id))) {
        // No creation date to go by: the record file's own age (it is rewritten at every change).
        const st = await this.#reads.stat(join(this.dir, `${id}.json`)).catch(() => null);
        if (st !== null && now > st.mtimeMs + expiration) {
          await this.#removeFiles(id);
          removed++;
        }
        continue;
      }
      if (!info || !info.creation_date) continue;
      // Partials (finished or not) are removed once joined; one still here after the period never will be.
      if (isFinishedRecord(info) && !isPartial(info)) continue;
      if (now <= new Date(info.creation_date).getTime() + expiration) continue;
      try {
        await this.remove(id);
        removed++;
      } catch {
        // already gone
      }
    }
    return removed;
  }
}
