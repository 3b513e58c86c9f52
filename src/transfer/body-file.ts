/**
 * The file an upload body is written into (a PUT's incoming file, a tus upload's data file).
 * Two differences from a plain fs.createWriteStream, both for ingest speed (docs/performance.md):
 * - a larger buffer (BODY_FILE_BUFFER): while one write runs on the libuv pool, the next socket
 *   chunks queue and go out together in one writev, instead of one pool round trip per 64 KiB
 *   chunk with reading stopped in between (the default 16 KiB buffer is full after one chunk);
 * - early writeback: every WRITEBACK_BYTES written, an fdatasync is started without waiting for
 *   it, so the disk writes while the body still arrives. Publishing still fsyncs the whole file
 *   before anyone is told it is stored (job-admission.ts); that final sync then has only the
 *   tail left. Without it the page cache held the whole body and the final fsync wrote all of
 *   it after the last byte, with the client waiting (~0.15 s per 128 MiB here).
 * Nothing is read back and nothing else changes: a failed early sync is ignored (the final
 * fsync reports the disk's errors).
 */
import { fdatasync, WriteStream } from 'node:fs';

/** Bytes queued per body before the stream asks the socket to wait. */
export const BODY_FILE_BUFFER = 256 * 1024;
/** An early fdatasync after this many bytes written since the last one started. */
export const WRITEBACK_BYTES = 16 * 1024 * 1024;

export interface BodyFileOptions {
  /** 'wx' (a new file, PUT) or 'r+' (append to a tus data file at `start`). */
  flags: 'wx' | 'r+';
  mode?: number;
  start?: number;
  /** 0 turns early writeback off. */
  writebackBytes?: number;
}

type WriteCallback = (error?: Error | null) => void;

export class BodyFileStream extends WriteStream {
  readonly #every: number;
  #sinceSync = 0;
  #syncing = false;
  /** Early fdatasyncs started so far (tests, diagnostics). */
  earlySyncs = 0;

  constructor(path: string, options: BodyFileOptions) {
    // WriteStream's constructor is typed as not taking arguments; it does take (path, options).
    super(...([path, { flags: options.flags, mode: options.mode, start: options.start, highWaterMark: BODY_FILE_BUFFER }] as unknown as []));
    this.#every = options.writebackBytes ?? WRITEBACK_BYTES;
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: WriteCallback): void {
    super._write(chunk, encoding, (err) => {
      if (!err) this.#written(chunk.length);
      callback(err);
    });
  }

  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, callback: WriteCallback): void {
    super._writev!(chunks, (err) => {
      if (!err) this.#written(chunks.reduce((n, c) => n + c.chunk.length, 0));
      callback(err);
    });
  }

  #written(bytes: number): void {
    if (this.#every <= 0) return;
    this.#sinceSync += bytes;
    const fd = (this as unknown as { fd: number | null }).fd;
    if (this.#sinceSync < this.#every || this.#syncing || typeof fd !== 'number') return;
    this.#sinceSync = 0;
    this.#syncing = true;
    this.earlySyncs++;
    // Not awaited: the stream goes on writing. The callback is not this stream's business either
    // way (a failure shows again in the final fsync; EBADF if the stream closed meanwhile).
    fdatasync(fd, () => {
      this.#syncing = false;
    });
  }
}

export function createBodyFile(path: string, options: BodyFileOptions): BodyFileStream {
  return new BodyFileStream(path, options);
}
