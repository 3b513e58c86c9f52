/**
 * tus uploads whose every byte arrived and whose data file is still in the tus directory: after
 * a crash, these are the uploads that may have been finished without reaching finalization
 * (the process died between recording completion and admitting the job).
 */
import type { TusFileStore } from './tus-file-store.js';

export interface FinishedTusUpload {
  id: string;
  size: number;
  metadata: Record<string, string | null>;
  dataFile: string;
}

interface StoredInfo {
  size?: number;
  offset?: number;
  metadata?: Record<string, string | null>;
}

/** Reads records one at a time (the tus directory may hold many uploads). */
export async function* finishedTusUploads(store: TusFileStore): AsyncGenerator<FinishedTusUpload> {
  // FileKvStore.list() returns only ids that have both a data file and a record.
  const ids = (await store.configstore.list?.()) ?? [];
  for (const id of ids) {
    const info = (await store.configstore.get(id)) as StoredInfo | undefined;
    // TusFileStore.markFinished sets offset = size at completion; unfinished records keep offset 0.
    if (info === undefined || typeof info.size !== 'number' || info.offset !== info.size) continue;
    yield { id, size: info.size, metadata: info.metadata ?? {}, dataFile: store.dataPath(id) };
  }
}
