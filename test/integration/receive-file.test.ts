/**
 * receiveToFile (src/http/receive-file.ts), issue 9.11: a body that fails while the file's
 * asynchronous open is still running must not leave the file behind. pipeline() rejects at once
 * in that case (checked: it does not wait for the destination's close), so the cleanup has to.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { receiveToFile } from '../../src/http/receive-file.js';

/**
 * A file stream whose open (construct) completes only when `release()` is called, creating the
 * file then, as fs.WriteStream's open does on the thread pool. It calls `onWaitedFor` when
 * someone starts waiting for its 'close' after it was destroyed.
 */
class LateOpenFile extends Writable {
  #destroyCalled = false;
  release!: () => void;
  readonly #opened = new Promise<void>((resolve) => (this.release = resolve));

  constructor(readonly path: string, onWaitedFor: () => void) {
    super();
    this.on('error', () => {}); // the destroy error surfaces through receiveToFile, not here
    this.on('newListener', (event) => {
      if (event === 'close' && this.#destroyCalled) onWaitedFor();
    });
  }

  override _construct(callback: (err?: Error) => void): void {
    void this.#opened.then(() => {
      writeFileSync(this.path, '');
      callback();
    });
  }

  override _write(_chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error) => void): void {
    callback();
  }

  override destroy(err?: Error): this {
    this.#destroyCalled = true;
    return super.destroy(err);
  }
}

describe('receiveToFile', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-receive-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('writes the whole body', async () => {
    const path = join(dir, 'ok.part');
    await receiveToFile(path, (file) => pipeline(Readable.from([Buffer.from('hello '), Buffer.from('world')]), new PassThrough(), file));
    assert.equal(await readFile(path, 'utf8'), 'hello world');
  });

  it('refuses to overwrite an existing file', async () => {
    const path = join(dir, 'taken.part');
    writeFileSync(path, 'first');
    await assert.rejects(receiveToFile(path, (file) => pipeline(Readable.from([Buffer.from('x')]), file)), { code: 'EEXIST' });
  });

  it('a body that fails before the file is even open: settles only after the open, and the file is gone', async () => {
    const path = join(dir, 'late.part');
    const body = new Readable({ read() {} });
    body.on('error', () => {}); // expected: the client reset
    let file!: LateOpenFile;
    let closedWhenSettled: boolean | null = null;
    const received = receiveToFile(path, (f) => pipeline(body, new PassThrough(), f), (p) => (file = new LateOpenFile(p, () => file.release())));
    const settled = received.then(
      () => assert.fail('resolved'),
      (err: Error) => {
        closedWhenSettled = file.closed;
        return err;
      },
    );
    body.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    // The open completes when receiveToFile waits for it, or, if it does not wait, once it gave up.
    void settled.then(() => file.release());
    assert.equal((await settled).message, 'aborted');
    if (!file.closed) await new Promise((resolve) => file.once('close', resolve)); // (once() would reject on the destroy error)
    assert.equal(closedWhenSettled, true, 'rejected only after the file stream closed');
    assert.equal(existsSync(path), false, 'no file left behind');
  });
});
