/** What operations do to a tus upload directly. */
import type { TusFileStore } from '../storage/index.js';

/** Removes a tus upload's record and data; tolerates either being gone. */
export async function discardTusUpload(store: TusFileStore, id: string): Promise<void> {
  await store.remove(id).catch(async () => {
    // remove() refuses when the data file is gone; drop the record alone then.
    await store.configstore.delete(id).catch(() => {});
  });
}
