/**
 * The top of a data directory: the entries a server makes there, and whatever else someone put
 * there. The usual stranger is the Go HMAC File Server's storage: its `storage_path` is read as
 * `storage.data_dir`, and it kept each file at `<storage_path>/<URL path>`, while this server
 * serves `files/<slot path>` only. Such files are not served until moved under `files/`
 * (docs/go-migration.md); the server says so at start instead of answering 404 in silence.
 */
import { readdir } from 'node:fs/promises';
import { S3_SCRATCH_DIR } from './s3-scratch.js';

/** What a server makes at the top of its data directory (and an offline command's lock). */
export const DATA_DIR_ENTRIES: readonly string[] = ['server.lock', 'server.lock-journal', 'server.json', 'secret', 'tus', 'files', 'meta', 'queue', 'incoming', 'cas', 'quarantine', S3_SCRATCH_DIR, 'instances'];

/** Entries of the data directory's top level that no server made (hidden ones and lost+found left out): their count and the first few names. */
export async function foreignEntries(dataDir: string, sampleSize = 5): Promise<{ count: number; sample: string[] }> {
  let names: string[];
  try {
    names = await readdir(dataDir);
  } catch {
    return { count: 0, sample: [] };
  }
  const ours = new Set(DATA_DIR_ENTRIES);
  const foreign = names.filter((n) => !ours.has(n) && !n.startsWith('.') && n !== 'lost+found').sort();
  return { count: foreign.length, sample: foreign.slice(0, sampleSize) };
}
