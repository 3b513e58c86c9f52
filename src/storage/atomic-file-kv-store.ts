/**
 * The tus upload records (`<id>.json` beside each upload's bytes), written atomically. @tus/utils'
 * FileKvStore rewrites a record in place (truncate, then write): a reader in between, another
 * request or another instance on the shared directory, finds an empty or cut record, which
 * reads as "no such upload" (a HEAD answers 404 and tus-js-client starts over from byte 0), and
 * a crash in between loses the record. Here a record is written to a temp file, fsynced and
 * renamed over the old one, so every reader sees the old record or the new one. Reads stay
 * FileKvStore's: every get() reads the file, nothing is cached per process.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ERRORS, FileKvStore, isPathInsideDirectory, type Upload } from '@tus/utils';

export class AtomicFileKvStore extends FileKvStore<Upload> {
  override async set(key: string, value: Upload): Promise<void> {
    const file = resolve(this.directory, `${key}.json`);
    if (!isPathInsideDirectory(this.directory, file)) throw ERRORS.FILE_NOT_FOUND;
    // A dot name: list() pairs a data file with its record by name, a temp file pairs with nothing.
    const tmp = join(dirname(file), `.${key}.json.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(JSON.stringify(value));
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, file);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }
}
