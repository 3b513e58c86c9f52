/**
 * Making small files and directory entries durable, in as few trips to the libuv pool as the
 * syscalls need, on callbacks: under a thousand concurrent uploads every trip is a dispatch on
 * the event loop and a wake-up of a pool thread, and a FileHandle adds an object, a close
 * request and several promises per file (docs/performance.md, concurrency).
 */
import { close, constants, fsync, open, write } from 'node:fs';

/** Opened with O_SYNC: each write returns once its data and the file's metadata are on disk, as after an fsync. */
const SYNCED_WRITE = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_SYNC;

/** Writes `data` to `path` (created or truncated), durably: open, write, close. */
export function writeDurably(path: string, data: Buffer | string, mode: number): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  return new Promise((resolve, reject) => {
    open(path, SYNCED_WRITE, mode, (openErr, fd) => {
      if (openErr) return reject(openErr);
      const finish = (err: Error | null) => closeThen(fd, err, resolve, reject);
      const writeFrom = (offset: number): void => {
        if (offset >= bytes.length) return finish(null);
        write(fd, bytes, offset, bytes.length - offset, null, (writeErr, written) => (writeErr ? finish(writeErr) : writeFrom(offset + written)));
      };
      writeFrom(0);
    });
  });
}

/** Creates an empty file that must not exist yet (EEXIST otherwise): open, close, no FileHandle. */
export function createEmptyFile(path: string, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    open(path, 'wx', mode, (openErr, fd) => (openErr ? reject(openErr) : closeThen(fd, null, resolve, reject)));
  });
}

/** fsync of an existing file or directory: open, fsync, close. */
export function fsyncPath(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    open(path, 'r', (openErr, fd) => {
      if (openErr) return reject(openErr);
      fsync(fd, (syncErr) => closeThen(fd, syncErr, resolve, reject));
    });
  });
}

/** fsync of a directory after an entry was added or removed; some filesystems refuse it, the entry stands either way. */
export async function fsyncDir(dir: string): Promise<void> {
  await fsyncPath(dir).catch(() => {});
}

function closeThen(fd: number, err: Error | null, resolve: () => void, reject: (err: Error) => void): void {
  close(fd, (closeErr) => {
    const failure = err ?? closeErr;
    if (failure) reject(failure);
    else resolve();
  });
}
