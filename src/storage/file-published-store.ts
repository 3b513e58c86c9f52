/**
 * PublishedStore on the local filesystem:
 *   <dataDir>/files/<slot path>        the bytes (hard-linked into place: atomic, never overwrites)
 *   <dataDir>/meta/<slot path>.json    declared content type and origin
 *   <dataDir>/incoming/                PUT bodies in flight (same filesystem, so link() works)
 */
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { chmod, link, mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { contentType, lookup } from 'mime-types';
import { DEFAULT_CONTENT_TYPE } from '../auth/index.js';
import type {
  DeletablePublishedStore,
  DeleteOutcome,
  LinkPublishOutcome,
  LocalIncoming,
  PathObstruction,
  PublishRecord,
  PublishStepHooks,
  PublishedEntry,
  PublishedFile,
  PublishedStore,
  StoredRecord,
} from './published-store.js';
import { pathEtag } from './published-store.js';
import { localPathOf, type UploadSource } from './upload-source.js';
import { walkFiles } from './walk-files.js';
import { fsyncDir, fsyncPath, writeDurably } from './durable-files.js';
import { pooledReads, type MetadataReads } from './metadata-reads.js';
import { tempSuffix } from './temp-name.js';


/** Permissions of what the store writes (`[storage] file_mode`; directories get the matching x bits). */
export interface StoreModes {
  fileMode: number;
  dirMode: number;
}

export const DEFAULT_STORE_MODES: StoreModes = { fileMode: 0o640, dirMode: 0o750 };

export class FilePublishedStore implements PublishedStore, LocalIncoming, DeletablePublishedStore, PathObstruction {
  /** Publishing and deleting one path never interleave (per-path chain of this process). */
  readonly #busy = new Map<string, Promise<unknown>>();
  private readonly filesDir: string;
  private readonly metaDir: string;
  private readonly incomingDir: string;
  readonly #reads: MetadataReads;

  /**
   * @param options.incomingDir where PUT temp files go (same filesystem as `files/`); default
   *   `<dataDir>/incoming`. Cluster mode gives each instance its own, so the start-up sweep of one
   *   instance never removes another's files in flight.
   * @param options.reads how records are read and published files stat'ed (metadata-reads.ts);
   *   default through the pool.
   */
  constructor(
    dataDir: string,
    private readonly modes: StoreModes = DEFAULT_STORE_MODES,
    options: { incomingDir?: string; reads?: MetadataReads } = {},
  ) {
    this.#reads = options.reads ?? pooledReads;
    this.filesDir = join(dataDir, 'files');
    this.metaDir = join(dataDir, 'meta');
    this.incomingDir = options.incomingDir ?? join(dataDir, 'incoming');
  }

  async init(): Promise<void> {
    await Promise.all([this.filesDir, this.metaDir, this.incomingDir].map((d) => mkdir(d, { recursive: true, mode: this.modes.dirMode })));
  }

  async stat(path: string): Promise<PublishedFile | null> {
    let st;
    try {
      st = await this.#reads.stat(join(this.filesDir, path));
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
    if (!st.isFile()) return null;
    const meta = await this.readMeta(path);
    if (meta?.deletedAtMs !== undefined) return null; // deleted, the unlink was cut short by a crash
    return {
      path,
      size: st.size,
      contentType: meta?.contentType ?? typeByName(path),
      ...validatorsOf(path, st, meta),
    };
  }

  read(path: string, range?: { start: number; end: number }): Readable {
    return createReadStream(join(this.filesDir, path), range ? { start: range.start, end: range.end } : {});
  }

  /** Removes temp files left by PUTs that a crash interrupted (none can be in flight at start). */
  async sweepIncoming(): Promise<number> {
    const names = await readdir(this.incomingDir);
    await Promise.all(names.map((n) => unlink(join(this.incomingDir, n)).catch(() => {})));
    return names.length;
  }

  /**
   * Publishes `contentFile` at `path` by hard link, idempotently: safe to repeat after a crash at
   * any point, and a repeat by the same upload answers 'already'. The metadata record is renamed
   * into place first, then the link makes the file visible, so a visible file always has its
   * record. `contentFile` is left in place (the caller removes its own source). Never overwrites.
   */
  async publishLinked(path: string, contentFile: string, record: PublishRecord, hooks: PublishStepHooks = {}): Promise<LinkPublishOutcome> {
    return this.#exclusive(path, () => this.#publishLinked(path, contentFile, record, hooks));
  }

  async #publishLinked(path: string, contentFile: string, record: PublishRecord, hooks: PublishStepHooks): Promise<LinkPublishOutcome> {
    if ((await this.readMeta(path))?.deletedAtMs !== undefined) return 'withdrawn';
    const target = join(this.filesDir, path);
    const metaTarget = join(this.metaDir, `${path}.json`);
    const before = await this.ownership(path, target, contentFile, record.uploadId);
    if (before !== 'absent') return before;
    // The uploader's bytes get the configured mode whatever created them (a PUT temp file, a tus
    // data file, a content-store entry shared by every path holding these bytes).
    await chmod(contentFile, this.modes.fileMode);
    try {
      await mkdir(dirname(target), { recursive: true, mode: this.modes.dirMode });
      await mkdir(dirname(metaTarget), { recursive: true, mode: this.modes.dirMode });
    } catch (err) {
      if (isPathTaken(err)) return 'taken';
      throw err;
    }
    const metaTmp = tempBeside(metaTarget);
    const stored: StoredRecord = { ...record, publishedAt: new Date().toISOString() };
    await writeDurably(metaTmp, JSON.stringify(stored), this.modes.fileMode);
    await rename(metaTmp, metaTarget); // no file at `path` yet, so any record there is stale
    hooks.afterRecord?.();
    try {
      await link(contentFile, target);
    } catch (err) {
      if (!isPathTaken(err)) throw err;
      const after = await this.ownership(path, target, contentFile, record.uploadId);
      return after === 'absent' ? 'taken' : after;
    }
    hooks.afterLink?.();
    await fsyncDir(dirname(target));
    await fsyncDir(dirname(metaTarget));
    return 'published';
  }

  /**
   * DeletablePublishedStore: the tombstone goes in place first (the path is never published
   * again, and stat() stops seeing the file), then the file is unlinked. Refuses (resolves
   * 'foreign') when the file at `path` belongs to another upload than `uploadId`.
   */
  async deleteForGood(path: string, uploadId: string, nowMs: number): Promise<DeleteOutcome> {
    return this.#exclusive(path, async () => {
      const target = join(this.filesDir, path);
      const meta = await this.readMeta(path);
      const present = await stat(target).then((st) => st.isFile(), () => false);
      if (present && meta?.uploadId !== uploadId && meta?.deletedAtMs === undefined) return { kind: 'foreign' };
      const metaTarget = join(this.metaDir, `${path}.json`);
      await mkdir(dirname(metaTarget), { recursive: true, mode: this.modes.dirMode });
      const tombstone: StoredRecord = {
        contentType: meta?.contentType ?? DEFAULT_CONTENT_TYPE,
        uploadId,
        publishedAt: meta?.publishedAt ?? new Date(nowMs).toISOString(),
        deletedAtMs: meta?.deletedAtMs ?? nowMs,
        ...(meta?.sha256 !== undefined && { sha256: meta.sha256 }),
      };
      const metaTmp = tempBeside(metaTarget);
      await writeDurably(metaTmp, JSON.stringify(tombstone), this.modes.fileMode);
      await rename(metaTmp, metaTarget);
      await unlink(target).catch((err: unknown) => {
        if (!isMissing(err)) throw err;
      });
      await fsyncDir(dirname(target));
      return { kind: 'deleted', ...(meta?.sha256 !== undefined && { sha256: meta.sha256 }) };
    });
  }

  /** PathObstruction: a folder where the file or its record would go, or a file where one of their folders would. */
  async blocked(path: string): Promise<boolean> {
    for (const target of [join(this.filesDir, path), join(this.metaDir, `${path}.json`)]) {
      const st = await this.#reads.statIfAny(target).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOTDIR' ? 'file-in-the-way' : undefined));
      if (st === 'file-in-the-way' || st?.isDirectory()) return true;
    }
    return false;
  }

  async deletedAt(path: string): Promise<number | null> {
    return (await this.readMeta(path))?.deletedAtMs ?? null;
  }

  async #exclusive<T>(path: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#busy.get(path) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const settled = run.then(() => {}, () => {});
    this.#busy.set(path, settled);
    try {
      return await run;
    } finally {
      if (this.#busy.get(path) === settled) this.#busy.delete(path);
    }
  }

  /** The metadata record of a published path, or null. */
  async record(path: string): Promise<StoredRecord | null> {
    return this.readMeta(path);
  }

  /**
   * PublishedStore.publish: a local source is hard-linked (publishLinked); any other is first
   * streamed into a temp file beside the published files, fsynced, linked, and the temp removed.
   */
  async publish(path: string, source: UploadSource, record: PublishRecord, hooks: PublishStepHooks = {}): Promise<LinkPublishOutcome> {
    const local = localPathOf(source);
    if (local !== null) {
      try {
        return await this.publishLinked(path, local, record, hooks);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err; // another filesystem: copy below
      }
    }
    const temp = this.newIncomingFile();
    try {
      await pipeline(source.open(), createWriteStream(temp, { flags: 'wx' }));
      await fsyncPath(temp);
      return await this.publishLinked(path, temp, record, hooks);
    } finally {
      await unlink(temp).catch(() => {});
    }
  }

  /** Unpublishes `path`: file and record (a tombstone too, so the path can be published again). */
  async remove(path: string): Promise<boolean> {
    return this.#exclusive(path, async () => {
      let existed = true;
      try {
        if (!(await stat(join(this.filesDir, path))).isFile()) return false;
        await unlink(join(this.filesDir, path));
      } catch (err) {
        if (!isMissing(err)) throw err;
        existed = false;
      }
      await unlink(join(this.metaDir, `${path}.json`)).catch(() => {});
      return existed;
    });
  }

  async *list(): AsyncIterable<PublishedEntry> {
    for await (const f of walkFiles(this.filesDir)) yield { path: f.rel, size: f.size, mtimeMs: f.mtimeMs };
  }

  private async ownership(path: string, target: string, contentFile: string, uploadId: string): Promise<'absent' | 'already' | 'taken'> {
    let st;
    try {
      st = await this.#reads.stat(target);
    } catch (err) {
      if (isMissing(err)) return 'absent';
      throw err;
    }
    if (!st.isFile()) return 'taken';
    if ((await this.readMeta(path))?.uploadId === uploadId) return 'already';
    const content = await stat(contentFile).catch(() => null);
    return content !== null && content.ino === st.ino && content.dev === st.dev ? 'already' : 'taken';
  }

  newIncomingFile(): string {
    return join(this.incomingDir, `${tempSuffix()}.part`);
  }

  private async readMeta(path: string): Promise<StoredRecord | null> {
    try {
      return JSON.parse(await this.#reads.text(join(this.metaDir, `${path}.json`))) as StoredRecord;
    } catch {
      return null; // published a moment ago and the record is not renamed in yet, or lost: serve defaults
    }
  }
}

/**
 * ETag and Last-Modified of one published path. Deduplicated files share an inode (and its
 * mtime) with every other upload of the same bytes, so validators taken from the inode would tell
 * an uploader that someone else stored these bytes, and when (issue 9.4). They come from this
 * path's own record instead: the content hash bound to the path, and the path's publish time.
 * Without a record (lost, or one written by an older version) the inode's size and mtime stand
 * in, hashed with the path; never its ctime, which every new hard link to the inode moves.
 */
function validatorsOf(path: string, st: Stats, meta: StoredRecord | null): { mtimeMs: number; etag: string } {
  const publishedAtMs = meta ? Date.parse(meta.publishedAt) : Number.NaN;
  const lastModifiedMs = Number.isNaN(publishedAtMs) ? st.mtimeMs : publishedAtMs;
  const content = meta?.sha256 ?? `${st.ino}-${st.size}-${Math.floor(st.mtimeMs)}`;
  return { mtimeMs: lastModifiedMs, etag: pathEtag(content, path) };
}

const isMissing = (err: unknown) => ['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '');
/** A temp file in `target`'s folder whose name does not grow with the slot's (a 250-byte name + ".json" is at the file-name limit already). */
const tempBeside = (target: string) => join(dirname(target), `.${tempSuffix()}.tmp`);
/** EEXIST: the file is there. ENOTDIR/EISDIR: a file sits where a directory of the path should be, or vice versa. */
const isPathTaken = (err: unknown) => ['EEXIST', 'ENOTDIR', 'EISDIR'].includes((err as NodeJS.ErrnoException).code ?? '');

/**
 * The type of a file without a record (copied in by hand, or kept by the Go server), from its
 * name as Go served it; the download's content policy still decides whether it renders in place.
 */
function typeByName(path: string): string {
  const type = lookup(path);
  return type ? contentType(type) || type : DEFAULT_CONTENT_TYPE; // text types get charset=utf-8, as Go's mime package gave
}
