/**
 * QuarantineStore on the local filesystem (same filesystem as the uploads, so bytes move in by
 * rename, without a copy):
 *   <dataDir>/quarantine/<id>.json   the record
 *   <dataDir>/quarantine/<id>.bin    the bytes (mode 0600: never served, not for other users)
 * Lookups by slot (every GET of an unpublished path) and by id (every tus HEAD and PATCH) use an
 * index built by init() and kept by this instance: one process owns a data directory (the
 * server, or an offline command). Before init() they read the directory.
 */
import { chmod, mkdir, open, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { QuarantineRecord, QuarantineStore } from './quarantine-store.js';
import { isS3NotFound } from './s3-errors.js';
import { fileSource, localPathOf, type UploadSource } from './upload-source.js';
import { tempSuffix } from './temp-name.js';

const ID = /^[A-Za-z0-9_-]{1,200}$/;

export class FileQuarantineStore implements QuarantineStore {
  readonly #dir: string;
  /** slot path -> entry id */
  readonly #bySlot = new Map<string, string>();
  /** Entry ids; null until init(). */
  #ids: Set<string> | null = null;

  constructor(dataDir: string) {
    this.#dir = join(dataDir, 'quarantine');
  }

  /** Creates the directory and reads the slot index. */
  async init(): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    this.#bySlot.clear();
    this.#ids = null;
    const records = await this.list();
    for (const record of records) this.#bySlot.set(record.slotPath, record.id);
    this.#ids = new Set(records.map((r) => r.id));
  }

  async admit(record: QuarantineRecord, source: UploadSource): Promise<'moved' | 'copied'> {
    const id = checkedId(record.id);
    const recordFile = join(this.#dir, `${id}.json`);
    const tmp = `${recordFile}.${tempSuffix()}.tmp`;
    await writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
    await fsync(tmp);
    await rename(tmp, recordFile);
    this.#bySlot.set(record.slotPath, id);
    this.#ids?.add(id);
    const content = this.#contentFile(id);
    const sourceFile = localPathOf(source);
    try {
      if (sourceFile !== null) await rename(sourceFile, content);
      else if (!(await exists(content))) await this.#copyIn(source, content);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await stat(content); // moved by an earlier run, or ENOENT: the bytes are gone
    }
    await chmod(content, 0o600);
    await fsync(this.#dir);
    return sourceFile !== null ? 'moved' : 'copied';
  }

  /** A source held elsewhere (S3) is copied in whole, then renamed into place; the caller removes the source. */
  async #copyIn(source: UploadSource, content: string): Promise<void> {
    const tmp = `${content}.${tempSuffix()}.tmp`;
    try {
      await pipeline(source.open(), createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
      await fsync(tmp);
      await rename(tmp, content);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      if (isS3NotFound(err)) throw Object.assign(new Error('the quarantined upload source is gone'), { code: 'ENOENT', cause: err });
      throw err;
    }
  }

  async get(id: string): Promise<QuarantineRecord | null> {
    if (!ID.test(id) || (this.#ids !== null && !this.#ids.has(id))) return null;
    try {
      return JSON.parse(await readFile(join(this.#dir, `${id}.json`), 'utf8')) as QuarantineRecord;
    } catch {
      return null;
    }
  }

  async bySlot(slotPath: string): Promise<QuarantineRecord | null> {
    const id = this.#bySlot.get(slotPath);
    return id === undefined ? null : this.get(id);
  }

  async list(): Promise<QuarantineRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const records: QuarantineRecord[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const record = await this.get(name.slice(0, -'.json'.length));
      if (record !== null) records.push(record);
    }
    return records.sort((a, b) => a.quarantinedAtMs - b.quarantinedAtMs || a.id.localeCompare(b.id));
  }

  content(record: QuarantineRecord): UploadSource {
    return fileSource(this.#contentFile(record.id), record.size);
  }

  #contentFile(id: string): string {
    return join(this.#dir, `${checkedId(id)}.bin`);
  }

  async remove(id: string): Promise<boolean> {
    const record = await this.get(id);
    if (record === null) return false;
    await unlinkIfThere(this.#contentFile(id));
    await unlinkIfThere(join(this.#dir, `${id}.json`));
    if (this.#bySlot.get(record.slotPath) === id) this.#bySlot.delete(record.slotPath);
    this.#ids?.delete(id);
    return true;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function checkedId(id: string): string {
  if (!ID.test(id)) throw new TypeError(`not a quarantine id: ${JSON.stringify(id)}`);
  return id;
}

async function unlinkIfThere(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

async function fsync(path: string): Promise<void> {
  try {
    const fh = await open(path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is in place either way.
  }
}
