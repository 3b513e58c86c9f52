/**
 * The tus upload records (`<id>.json` beside each upload's bytes), written atomically. @tus/utils'
 * FileKvStore rewrites a record in place (truncate, then write): a reader in between, another
 * request or another instance on the shared directory, finds an empty or cut record, which
 * reads as "no such upload" (a HEAD answers 404 and tus-js-client starts over from byte 0), and
 * a crash in between loses the record. Here a record is written to a temp file (O_SYNC) and
 * renamed over the old one, so every reader sees the old record or the new one. Every get()
 * reads the file (metadata-reads.ts: inline on a local data dir, through the pool on a shared
 * one), nothing is cached per process, except during start-up (prime()), before any request is
 * taken.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, rename, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ERRORS, FileKvStore, isPathInsideDirectory, type Upload } from '@tus/utils';
import { writeDurably } from './durable-files.js';
import { pooledReads, type MetadataReads } from './metadata-reads.js';
import { tempSuffix } from './temp-name.js';

export class AtomicFileKvStore extends FileKvStore<Upload> {
  readonly #reads: MetadataReads;
  /** Record texts read by prime(), by key; null when not primed. */
  #primed: Map<string, string> | null = null;
  /** list()'s answer from prime()'s directory read (ids with a data file and a record); null when not primed. */
  #primedIds: Set<string> | null = null;

  /** `fileMode`: of the record files ([storage] file_mode): they name upload ids, which are capabilities. */
  constructor(directory: string, reads: MetadataReads = pooledReads, private readonly fileMode = 0o640) {
    super(directory);
    this.#reads = reads;
  }

  /**
   * Start-up only, before the server takes requests: reads every record once, synchronously.
   * Start-up reads all of them three times (recovery, the slot index, the space account); for
   * 10,000 records each pass took about a second through async reads, the synchronous pass
   * takes about 0.1 s (docs/performance.md). get() answers from it until unprime().
   */
  prime(): void {
    const primed = new Map<string, string>();
    const names = readdirSync(this.directory);
    for (const name of names) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      try {
        primed.set(name.slice(0, -'.json'.length), readFileSync(join(this.directory, name), 'utf8'));
      } catch {
        // Gone or unreadable now: get() reads it again, as without priming.
      }
    }
    this.#primed = primed;
    this.#primedIds = new Set(pairedKeys(names));
  }

  unprime(): void {
    this.#primed = null;
    this.#primedIds = null;
  }

  /** The keys prime() found, while primed. */
  primedKeys(): ReadonlySet<string> | null {
    return this.#primedIds;
  }

  override async list(): Promise<string[]> {
    return this.#primedIds ? [...this.#primedIds] : pairedKeys(await readdir(this.directory));
  }

  /** Called before each write or delete of a key (TusFileStore drops the request's copy). */
  onWrite: (key: string) => void = () => {};

  override async get(key: string): Promise<Upload | undefined> {
    try {
      // Primed: a fresh object each time, like a read.
      return JSON.parse((await this.getText(key)) ?? '') as Upload;
    } catch {
      return undefined; // missing, or a cut record: none (FileKvStore.get)
    }
  }

  /** The record's text; undefined when missing or unreadable. */
  async getText(key: string): Promise<string | undefined> {
    try {
      return this.#primed?.get(key) ?? (await this.#reads.text(this.#fileOf(key)));
    } catch {
      return undefined;
    }
  }

  override async delete(key: string): Promise<void> {
    this.onWrite(key);
    this.#primed?.delete(key);
    this.#primedIds?.delete(key);
    await super.delete(key);
  }

  /** The record file of `key` (FileKvStore's own resolve is private); outside the directory: FILE_NOT_FOUND. */
  #fileOf(key: string): string {
    const file = resolve(this.directory, `${key}.json`);
    if (!isPathInsideDirectory(this.directory, file)) throw ERRORS.FILE_NOT_FOUND;
    return file;
  }

  override async set(key: string, value: Upload): Promise<void> {
    this.onWrite(key);
    this.#primed?.delete(key);
    // A key prime() did not see (a new upload or index entry): list() reads the directory again.
    if (this.#primedIds && !this.#primedIds.has(key)) this.#primedIds = null;
    const file = this.#fileOf(key);
    // A dot name: list() pairs a data file with its record by name, a temp file pairs with nothing.
    const tmp = join(dirname(file), `.${key}.json.${tempSuffix()}.tmp`);
    await writeDurably(tmp, JSON.stringify(value), this.fileMode);
    try {
      await rename(tmp, file);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }
}

/**
 * The keys with a data file beside their record, as FileKvStore.list() pairs them, sorted by code
 * unit. FileKvStore sorts with localeCompare: about 0.1 s of blocked event loop for 20,000 names,
 * and the order carries no meaning.
 */
function pairedKeys(names: readonly string[]): string[] {
  const present = new Set(names);
  const keys: string[] = [];
  for (const name of names) {
    if (name.endsWith('.json') && !name.startsWith('.') && present.has(name.slice(0, -'.json'.length))) keys.push(name.slice(0, -'.json'.length));
  }
  return keys.sort();
}
