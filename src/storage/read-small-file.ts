/**
 * Reads a small file (an upload record, a few hundred bytes) in three trips to the libuv pool:
 * open, read, close. fs.promises.readFile takes four (open, fstat, read, close) and builds a
 * FileHandle and several promises per read; under a thousand concurrent uploads every request
 * reads records several times, and each trip waits behind the pool's queue of body writes and
 * fsyncs (docs/performance.md, concurrency). A regular file's read returns fewer bytes than
 * asked only at its end, so a short read needs no second one.
 */
import { close, open, read } from 'node:fs';

const FIRST_READ = 16 * 1024;

export function readSmallFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    open(path, 'r', (openErr, fd) => {
      if (openErr) return reject(openErr);
      const chunks: Buffer[] = [];
      const finish = (err: Error | null) =>
        close(fd, (closeErr) => {
          const failure = err ?? closeErr;
          if (failure) reject(failure);
          else resolve(Buffer.concat(chunks).toString('utf8'));
        });
      const next = (position: number, size: number) => {
        const buffer = Buffer.allocUnsafe(size);
        read(fd, buffer, 0, size, position, (readErr, bytes) => {
          if (readErr) return finish(readErr);
          chunks.push(buffer.subarray(0, bytes));
          if (bytes < size) return finish(null);
          next(position + bytes, size * 2); // larger than asked for: read on
        });
      };
      next(0, FIRST_READ);
    });
  });
}
