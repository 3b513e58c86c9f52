/**
 * Worker-thread entry of hashFile: streams one file through SHA-256 off the main thread and
 * posts the hex digest (or an error message) back. workerData: { path: string }.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parentPort, workerData } from 'node:worker_threads';

const { path } = workerData as { path: string };
const hash = createHash('sha256');
try {
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), hash);
  parentPort?.postMessage({ ok: true, hex: hash.digest('hex') });
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  parentPort?.postMessage({ ok: false, message: e.message, code: e.code ?? 'ERR_INTERNAL' });
}
