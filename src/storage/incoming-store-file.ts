/**
 * PUT bodies in temp files on the published files' filesystem (the file backend): the body is
 * written to a new file created exclusively, and finalization later links it into place. A failed
 * body's file is removed only once its stream closed: pipeline() rejects as soon as the body fails
 * (a client reset) while the file's asynchronous open may still be running; an unlink at that
 * moment finds nothing and the open then leaves a 0-byte file behind (issue 9.11).
 */
import { stat, unlink } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { LocalIncoming } from './published-store.js';
import type { IncomingStore, IncomingUpload } from './incoming-store.js';
import { fileSource } from './upload-source.js';
import { createBodyFile } from '../transfer/body-file.js';

export type OpenFile = (path: string) => Writable;

// A larger write buffer and early writeback (transfer/body-file.ts).
const createExclusive = (mode: number): OpenFile => (path) => createBodyFile(path, { flags: 'wx', mode });

export class FileIncomingStore implements IncomingStore {
  readonly #open: OpenFile;

  /** `dir` gives fresh temp file names and sweeps them (FilePublishedStore). */
  constructor(
    private readonly dir: LocalIncoming & { sweepIncoming(): Promise<number> },
    options: { fileMode?: number; open?: OpenFile } = {},
  ) {
    this.#open = options.open ?? createExclusive(options.fileMode ?? 0o640);
  }

  begin(_id: string): IncomingUpload {
    const path = this.dir.newIncomingFile();
    const sink = this.#open(path);
    return {
      sink,
      complete: async () => fileSource(path, (await stat(path)).size),
      abort: async () => {
        if (!sink.destroyed) sink.destroy();
        if (!sink.closed) await new Promise<void>((resolve) => sink.once('close', () => resolve()));
        await unlink(path).catch(() => {});
      },
    };
  }

  sweep(): Promise<number> {
    return this.dir.sweepIncoming();
  }
}
