/**
 * A request body into a new file, all or nothing. On failure the file is removed, but only once
 * its stream has closed: pipeline() rejects as soon as the body fails (a client reset), while the
 * file's asynchronous open may still be running; an unlink at that moment finds nothing, and the
 * open then leaves a 0-byte file behind (issue 9.11: `incoming/*.part` seen under fuzzing).
 */
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export type OpenFile = (path: string) => Writable;

const createExclusive: OpenFile = (path) => createWriteStream(path, { flags: 'wx' });

/** Streams `body` through `steps` (limit, hashing) into a file created at `path`; rejects with the body's error, the file gone. */
export async function receiveToFile(body: Readable, steps: readonly Transform[], path: string, open: OpenFile = createExclusive): Promise<void> {
  const file = open(path);
  try {
    await pipeline([body, ...steps, file]);
  } catch (err) {
    // pipeline() destroyed the file stream; its 'close' comes after the open finished and the fd is closed.
    if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()));
    await unlink(path).catch(() => {});
    throw err;
  }
}
