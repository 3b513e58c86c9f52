/**
 * @tus/file-store with two fixes this server relies on (field-notes.md):
 * - a finished upload never answers 410 and is never removed by expiry: its record is
 *   rewritten with offset = size at completion, and expiry skips such records;
 * - after its bytes are published, the upload's data file is gone but HEAD still answers
 *   200 with Upload-Offset = Upload-Length, so a client that resumes a finished upload sees
 *   it finished instead of starting over.
 * Records are replaced atomically (atomic-file-kv-store.ts) and every call reads the record and
 * the data file's size afresh: nothing is cached per process, so instances sharing the directory
 * (cluster mode) all see one state.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FileStore } from '@tus/file-store';
import { ERRORS, Upload } from '@tus/utils';
import { AtomicFileKvStore } from './atomic-file-kv-store.js';

export interface UploadSummary {
  id: string;
  slotPath: string | null;
  offset: number;
  /** null while the length is deferred. */
  size: number | null;
  finished: boolean;
  createdAt: string | null;
  /** Last write to the data file. */
  lastActivityAt: string | null;
}

interface StoredUpload {
  id: string;
  size?: number;
  offset: number;
  metadata?: Record<string, string | null>;
  creation_date?: string;
}

export class TusFileStore extends FileStore {
  constructor(private readonly dir: string, expirationMs: number) {
    // Records are replaced atomically (several requests, and in cluster mode several instances, read them).
    super({ directory: dir, expirationPeriodInMilliseconds: expirationMs, configstore: new AtomicFileKvStore(dir) });
  }

  dataPath(id: string): string {
    return join(this.dir, id);
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
    const info = (await this.configstore.get(id)) as StoredUpload | undefined;
    if (!info) throw ERRORS.FILE_NOT_FOUND;
    const st = await stat(this.dataPath(id));
    await this.configstore.set(id, { ...info, size: info.size ?? st.size, offset: info.size ?? st.size } as unknown as Upload);
  }

  /** Removes unfinished uploads older than the expiration period. Finished ones are kept. */
  override async deleteExpired(): Promise<number> {
    const expiration = this.getExpiration();
    if (expiration <= 0 || !this.configstore.list) return 0;
    let removed = 0;
    const now = Date.now();
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

/** The stored record's offset stays 0 while bytes arrive (FileStore never updates it); markFinished sets it to size. */
function isFinished(info: StoredUpload): info is StoredUpload & { size: number } {
  return typeof info.size === 'number' && info.offset === info.size;
}
