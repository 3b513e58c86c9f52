/**
 * tus uploads whose every byte arrived and whose data file is still in the tus directory: after
 * a crash, these are the uploads that may have been finished without reaching finalization
 * (the process died between recording completion and admitting the job).
 */
import type { TusFileStore } from './tus-file-store.js';
import { isFinishedRecord, serverStateOf, type UploadServerState } from './tus-upload-record.js';

export interface FinishedTusUpload {
  id: string;
  size: number;
  /** The server's state (slot, type…); null for an upload not created through a slot. */
  state: UploadServerState | null;
  dataFile: string;
}

/** Reads records one at a time (the tus directory may hold many uploads). Partials of a concatenation are never published on their own: skipped. */
export async function* finishedTusUploads(store: TusFileStore): AsyncGenerator<FinishedTusUpload> {
  // FileKvStore.list() returns only ids that have both a data file and a record.
  const ids = (await store.configstore.list?.()) ?? [];
  for (const id of ids) {
    const info = await store.record(id);
    // TusFileStore.markFinished sets offset = size at completion; unfinished records keep offset 0.
    if (info === null || !isFinishedRecord(info)) continue;
    const state = serverStateOf(info);
    if (state?.concat?.kind === 'partial') continue;
    yield { id, size: info.size, state, dataFile: store.dataPath(id) };
  }
}
