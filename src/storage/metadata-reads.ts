/**
 * How the stores read small metadata: upload records (a few hundred bytes), publish records and
 * the stat of a data file. Every tus request reads several of them.
 *
 * - `pooledReads`: through the libuv pool, as any fs call. Each trip costs the event loop a
 *   dispatch and a completion, and wakes a pool thread on another core: measured here 55-115 µs
 *   of CPU per record read (open, read, close) against 21 µs for the same three syscalls made
 *   directly, and every trip waits behind the pool's queue of body writes and fsyncs.
 * - `inlineReads`: the syscalls made on the event loop. On a local filesystem these files are in
 *   the page cache (written by this process moments before), so a read blocks the loop for
 *   microseconds. Never on a network filesystem: a slow or hung server would stall every
 *   request of the process, so cluster mode (a shared data directory) keeps the pool.
 *
 * Writes, fsyncs and directory changes always go through the pool: they wait for the disk.
 * Both forms reject with the fs error (ENOENT…), as fs.promises does.
 */
import { readFileSync, statSync, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { readSmallFile } from './read-small-file.js';

export interface MetadataReads {
  /** The whole file as UTF-8. */
  text(path: string): Promise<string>;
  stat(path: string): Promise<Stats>;
  /** The stat, or undefined when nothing is there (ENOENT), without an error object for the common miss. */
  statIfAny(path: string): Promise<Stats | undefined>;
}

export const pooledReads: MetadataReads = {
  text: readSmallFile,
  stat: (path) => stat(path),
  statIfAny: (path) => stat(path).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err))),
};

export const inlineReads: MetadataReads = {
  // The executor's throw becomes the rejection: callers see the same promise either way.
  text: (path) => new Promise((resolve) => resolve(readFileSync(path, 'utf8'))),
  stat: (path) => new Promise((resolve) => resolve(statSync(path))),
  statIfAny: (path) => new Promise((resolve) => resolve(statSync(path, { throwIfNoEntry: false }))),
};

/** Inline on a data directory of this instance alone; through the pool on one shared by instances. */
export function metadataReadsFor(sharedDataDir: boolean): MetadataReads {
  return sharedDataDir ? pooledReads : inlineReads;
}
