/**
 * SHA-256 of a file without blocking the event loop: files from `inlineBelowBytes` up are
 * hashed in a worker thread (the main thread only waits for one message), smaller ones are
 * streamed on the main thread, where each chunk costs microseconds and starting a thread would
 * cost more than the hash.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';

export interface HashOptions {
  readonly signal?: AbortSignal;
  /** Default 4 MiB. 0 hashes every file in a worker thread. */
  readonly inlineBelowBytes?: number;
}

const WORKER_URL = new URL('./hash-worker.js', import.meta.url);

/** Rejects with the fs error (ENOENT, …) or the signal's reason. */
export async function sha256File(path: string, options: HashOptions = {}): Promise<string> {
  const { signal, inlineBelowBytes = 4 * 1024 * 1024 } = options;
  signal?.throwIfAborted();
  const { size } = await stat(path);
  signal?.throwIfAborted(); // aborted while stat ran: an 'abort' listener added now would never fire
  if (size < inlineBelowBytes) {
    const hash = createHash('sha256');
    await pipeline(createReadStream(path, { highWaterMark: 64 * 1024 }), hash, signal ? { signal } : {});
    return hash.digest('hex');
  }
  return hashInWorker(path, signal);
}

function hashInWorker(path: string, signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL, { workerData: { path } });
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => {
      finish(() => reject(signal?.reason));
      void worker.terminate();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (msg: { ok: true; hex: string } | { ok: false; message: string; code: string }) => {
      finish(() => {
        if (msg.ok) resolve(msg.hex);
        else reject(Object.assign(new Error(msg.message), { code: msg.code }));
      });
    });
    worker.once('error', (err) => finish(() => reject(err)));
    worker.once('exit', (code) => finish(() => reject(new Error(`hash worker exited with code ${code}`))));
  });
}

/** SHA-256 of a stream (an S3 object): hashing costs far less than the download feeding it, so it stays on the main thread. */
export async function sha256Stream(bytes: NodeJS.ReadableStream, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(bytes, hash, signal ? { signal } : {});
  return hash.digest('hex');
}
