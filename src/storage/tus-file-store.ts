/**
 * @tus/file-store with two fixes this server relies on (field-notes.md):
 * - a finished upload never answers 410 and is never removed by expiry: its record is
 *   rewritten with offset = size at completion, and expiry skips such records;
 * - after its bytes are published, the upload's data file is gone but HEAD still answers
 *   200 with Upload-Offset = Upload-Length, so a client that resumes a finished upload sees
 *   it finished instead of starting over.
 */
import { stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FileStore } from '@tus/file-store';
import { ERRORS, Upload, type DataStore } from '@tus/utils';
import { finishedTusUploads } from './finished-tus-uploads.js';
import { fileSource, type UploadSource } from './upload-source.js';
import type { FinishedUpload, TusUploadStore, UploadSummary } from './upload-store.js';

export type { UploadSummary } from './upload-store.js';

interface StoredUpload {
  id: string;
  size?: number;
  offset: number;
  metadata?: Record<string, string | null>;
  creation_date?: string;
}

export class TusFileStore extends FileStore implements TusUploadStore {
  constructor(private readonly dir: string, expirationMs: number) {
    super({ directory: dir, expirationPeriodInMilliseconds: expirationMs });
  }

  get datastore(): DataStore {
    return this;
  }

  /** The local data file of an upload (file backend only; the rest of the server uses source()). */
  dataPath(id: string): string {
    return join(this.dir, id);
  }

  async metadata(id: string): Promise<Record<string, string | null> | null> {
    const info = await this.record(id);
    return info ? (info.metadata ?? {}) : null;
  }

  async source(id: string): Promise<UploadSource | null> {
    const info = await this.record(id);
    if (!info || !isFinished(info)) return null;
    const st = await stat(this.dataPath(id)).catch(() => null);
    return st?.isFile() ? fileSource(this.dataPath(id), info.size) : null;
  }

  async *finished(): AsyncIterable<FinishedUpload> {
    for await (const u of finishedTusUploads(this)) {
      yield { id: u.id, size: u.size, metadata: u.metadata, source: fileSource(u.dataFile, u.size) };
    }
  }

  async releaseData(id: string): Promise<void> {
    const info = await this.record(id);
    if (!info || !isFinished(info)) throw ERRORS.FILE_NOT_FOUND; // only a finished upload may lose its bytes
    await unlink(this.dataPath(id)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async discard(id: string): Promise<void> {
    if (!SAFE_ID.test(id)) return;
    await this.remove(id).catch(async () => {
      // remove() refuses when the data file is gone; drop the record alone then.
      await this.configstore.delete(id).catch(() => {});
    });
  }

  /** The stored record, or undefined (also for an id that is not a valid key: path tricks). */
  private async record(id: string): Promise<StoredUpload | undefined> {
    if (!SAFE_ID.test(id)) return undefined;
    try {
      return (await this.configstore.get(id)) as StoredUpload | undefined;
    } catch {
      return undefined;
    }
  }

  override async getUpload(id: string): Promise<Upload> {
    const info = (await this.configstore.get(id)) as StoredUpload | undefined;
    if (!info) throw ERRORS.FILE_NOT_FOUND;
    if (isFinished(info)) {
      // No creation_date: the handlers' expiry check (410) then never applies to a finished upload.
      return new Upload({ id, size: info.size, offset: info.size, metadata: info.metadata, storage: { type: 'file', path: this.dataPath(id) } });
    }
    return super.getUpload(id);
  }

  /** The declared Upload-Length of an upload, when known (one small read of its record). */
  async declaredSize(id: string): Promise<number | undefined> {
    try {
      const info = (await this.configstore.get(id)) as StoredUpload | undefined;
      return typeof info?.size === 'number' ? info.size : undefined;
    } catch {
      return undefined;
    }
  }

  /** Unfinished uploads (data file and record both present), for operators. */
  async listUnfinished(): Promise<UploadSummary[]> {
    const ids = this.configstore.list ? await this.configstore.list() : [];
    const out: UploadSummary[] = [];
    for (const id of ids) {
      const summary = await this.summarize(id);
      if (summary && !summary.finished) out.push(summary);
    }
    return out;
  }

  /** One upload as operators see it, or null when unknown. */
  async summarize(id: string): Promise<UploadSummary | null> {
    let info: StoredUpload | undefined;
    try {
      info = (await this.configstore.get(id)) as StoredUpload | undefined;
    } catch {
      return null; // an id that is not a valid key (path tricks) is simply unknown
    }
    if (!info) return null;
    const finished = isFinished(info);
    const st = await stat(this.dataPath(id)).catch(() => null);
    if (!finished && !st) return null;
    return {
      id,
      slotPath: info.metadata?.['hfs-slot'] ?? null,
      offset: finished ? info.size! : (st?.size ?? 0),
      size: typeof info.size === 'number' ? info.size : null,
      finished,
      createdAt: info.creation_date ?? null,
      lastActivityAt: st ? new Date(st.mtimeMs).toISOString() : null,
    };
  }

  /** Records that every byte arrived; from here on the upload is finished whatever happens to its data file. */
  async markFinished(id: string): Promise<void> {
    const info = await this.record(id);
    if (!info) throw ERRORS.FILE_NOT_FOUND;
    if (isFinished(info)) return;
    const st = await stat(this.dataPath(id));
    if (typeof info.size !== 'number' || st.size !== info.size) throw new Error(`upload ${id} holds ${st.size} of ${info.size ?? 'an undeclared number of'} bytes`);
    await this.configstore.set(id, { ...info, offset: info.size } as unknown as Upload);
  }

  /** Removes unfinished uploads older than the expiration period. Finished ones are kept. */
  override async deleteExpired(now = Date.now()): Promise<number> {
    const expiration = this.getExpiration();
    if (expiration <= 0 || !this.configstore.list) return 0;
    let removed = 0;
    for (const id of await this.configstore.list()) {
      const info = (await this.configstore.get(id)) as StoredUpload | undefined;
      if (!info || isFinished(info) || !info.creation_date) continue;
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

/** Upload ids are single path segments (@tus/server names them; FileStore resolves them inside its directory). */
const SAFE_ID = /^(?!\.\.?$)[\w.-]+$/;

/** The stored record's offset stays 0 while bytes arrive (FileStore never updates it); markFinished sets it to size. */
function isFinished(info: StoredUpload): info is StoredUpload & { size: number } {
  return typeof info.size === 'number' && info.offset === info.size;
}
