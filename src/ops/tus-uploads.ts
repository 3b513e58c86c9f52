/** What operations do to a tus upload directly. */
import type { TusUploadStore } from '../storage/index.js';

/** Removes a tus upload's record and data; tolerates either being gone. */
export async function discardTusUpload(store: TusUploadStore, id: string): Promise<void> {
  await store.discard(id);
}
