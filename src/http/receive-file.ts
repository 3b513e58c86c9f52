/**
 * A request body into a new file, all or nothing. On failure the file is removed, but only once
 * its stream has closed: pipeline() rejects as soon as the body fails (a client reset), while the
 * file's asynchronous open may still be running; an unlink at that moment finds nothing, and the
 * open then leaves a 0-byte file behind (issue 9.11: `incoming/*.part` seen under fuzzing).
 */
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { Writable } from 'node:stream';

export type OpenFile = (path: string) => Writable;

const createExclusive: OpenFile = (path) => createWriteStream(path, { flags: 'wx' });

/**
 * Creates the file at `path` and runs `receive` (which streams a body into it); when that fails,
 * rejects with its error once the file stream closed and the file is gone.
 */
export async function receiveToFile(path: string, receive: (file: Writable) => Promise<void>, open: OpenFile = createExclusive): Promise<void> {
  const file = open(path);
  try {
    await receive(file);
  } catch (err) {
    // The stream was destroyed by the failed pipeline; its 'close' comes after the open finished and the fd is closed.
    if (!file.closed) await new Promise<void>((resolve) => file.once('close', () => resolve()));
    await unlink(path).catch(() => {});
    throw err;
  }
}
