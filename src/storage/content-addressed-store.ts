/**
 * Content-addressed files on the local filesystem, for deduplication:
 *   <dataDir>/cas/<first two hex digits>/<sha256>
 * Each distinct content is stored once; published files are hard links to it, so identical
 * uploads share one inode and one copy of the bytes. An entry is never modified once linked in.
 * An entry whose link count is 1 is referenced by no published file: release() removes it when
 * a published file is deleted, and the offline `recover` sweeps any left behind.
 */
import { createWriteStream } from 'node:fs';
import { link, mkdir, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fsyncDir, fsyncPath } from './durable-files.js';
import type { AdoptedSource, ContentStore } from './published-store.js';
import { fileSource, localPathOf, type UploadSource } from './upload-source.js';
import { tempSuffix } from './temp-name.js';

export interface AdoptedContent {
  /** The entry's path: hard-link this to publish. */
  path: string;
  /** True when these bytes were new to the store; false when identical content was there already. */
  fresh: boolean;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

export class ContentAddressedStore implements ContentStore {
  readonly #dir: string;
  readonly #dirMode: number;

  /** @param dirMode mode of the directories it creates (`[storage] file_mode` with x bits). */
  constructor(dir: string, dirMode = 0o750) {
    this.#dir = dir;
    this.#dirMode = dirMode;
  }

  async init(): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: this.#dirMode });
  }

  pathOf(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new TypeError(`not a lowercase sha256 hex digest: ${sha256}`);
    return join(this.#dir, sha256.slice(0, 2), sha256);
  }

  /** The entry holding `sha256` (and `size` bytes, when given), or null: none, or not a sha256 hex digest. */
  async find(sha256: string, size?: number): Promise<string | null> {
    if (!SHA256_HEX.test(sha256)) return null;
    const path = this.pathOf(sha256);
    const st = await stat(path).catch(() => null);
    return st !== null && st.isFile() && (size === undefined || st.size === size) ? path : null;
  }

  /**
   * Makes `sourceFile`'s bytes (whose digest the caller computed) available under `sha256`,
   * hard-linking the source in when the content is new. Idempotent: adopting the same source
   * again, or another file with the same content, returns the existing entry. The source is left
   * in place. Rejects when an entry exists with another size (a corrupt store, never a collision
   * in practice), rather than publishing the wrong bytes.
   */
  async adopt(sourceFile: string, sha256: string, size: number): Promise<AdoptedContent> {
    const path = this.pathOf(sha256);
    try {
      // The 256 prefix directories exist after the first few hundred adoptions: made on a miss only.
      await link(sourceFile, path).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        await mkdir(dirname(path), { recursive: true, mode: this.#dirMode });
        await link(sourceFile, path);
      });
      await fsyncDir(dirname(path));
      return { path, fresh: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const [entry, source] = await Promise.all([stat(path), stat(sourceFile)]);
    if (entry.size !== size) {
      throw new Error(`content store entry ${sha256} holds ${entry.size} bytes, expected ${size}`);
    }
    // Same inode: this very source brought the content in, on an earlier run (a re-run after a crash).
    return { path, fresh: entry.ino === source.ino && entry.dev === source.dev };
  }

  /** ContentStore: a local source is hard-linked in (adopt); any other is streamed to a temp file first. */
  async adoptSource(source: UploadSource, sha256: string, size: number): Promise<AdoptedSource> {
    const local = localPathOf(source);
    if (local !== null) {
      const adopted = await this.adopt(local, sha256, size);
      return { source: fileSource(adopted.path, size), fresh: adopted.fresh };
    }
    await mkdir(this.#dir, { recursive: true });
    const temp = join(this.#dir, `.${tempSuffix()}.tmp`);
    try {
      await pipeline(source.open(), createWriteStream(temp, { flags: 'wx' }));
      await fsyncPath(temp);
      const adopted = await this.adopt(temp, sha256, size);
      return { source: fileSource(adopted.path, size), fresh: adopted.fresh };
    } finally {
      await unlink(temp).catch(() => {});
    }
  }

  /**
   * Removes the entry of `sha256` when no published file links it any more (link count 1).
   * Resolves whether it was removed. A publish racing this (it adopted the entry a moment ago)
   * fails its link and is retried by the queue, adopting the content afresh.
   */
  async release(sha256: string): Promise<boolean> {
    const path = this.pathOf(sha256);
    const st = await stat(path).catch(() => null);
    if (st === null || st.nlink !== 1) return false;
    await unlink(path).catch(() => {});
    return true;
  }
}
