/**
 * The body path's file and stage (transfer/body-file.ts, transfer/byte-limit.ts): bytes land
 * exactly, in order, whether chunks go out one by one or batched in one writev, with early
 * writeback syncs started while writing; the single PUT stage counts, caps and hashes.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { AppError } from '../../src/errors.js';
import { ByteLimit } from '../../src/transfer/byte-limit.js';
import { BODY_FILE_BUFFER, createBodyFile } from '../../src/transfer/body-file.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hfs-body-file-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** 64 KiB chunks like a socket's, `count` of them. */
const chunks = (count: number) => Array.from({ length: count }, () => randomBytes(64 * 1024));

describe('createBodyFile', () => {
  it('writes every byte in order, batching queued chunks, and starts early syncs as it goes', async () => {
    const parts = chunks(64); // 4 MiB: more than the buffer, so writes queue and go out as writev
    const path = join(dir, 'new.part');
    const file = createBodyFile(path, { flags: 'wx', mode: 0o640, writebackBytes: 256 * 1024 });
    assert.equal(file.writableHighWaterMark, BODY_FILE_BUFFER);
    await pipeline(Readable.from(parts), file);
    assert.deepEqual(await readFile(path), Buffer.concat(parts));
    assert.ok(file.earlySyncs >= 1, `early syncs started: ${file.earlySyncs}`);
  });

  it('refuses an existing file with wx, and appends at an offset with r+', async () => {
    const path = join(dir, 'data');
    await writeFile(path, 'prefix');
    await assert.rejects(pipeline(Readable.from([Buffer.from('x')]), createBodyFile(path, { flags: 'wx' })), { code: 'EEXIST' });
    const parts = chunks(8);
    const file = createBodyFile(path, { flags: 'r+', start: 6, writebackBytes: 0 });
    await pipeline(Readable.from(parts), file);
    assert.deepEqual(await readFile(path), Buffer.concat([Buffer.from('prefix'), ...parts]));
    assert.equal(file.earlySyncs, 0, 'writeback off');
  });
});

describe('ByteLimit with hashes', () => {
  it('counts, passes and hashes every byte up to the limit', async () => {
    const parts = chunks(4);
    const digest = createHash('sha256');
    const limit = new ByteLimit(4 * 64 * 1024, [digest]);
    const out: Buffer[] = [];
    await pipeline(Readable.from(parts), limit, async (source: AsyncIterable<Buffer>) => {
      for await (const c of source) out.push(c);
    });
    assert.equal(limit.bytes, 4 * 64 * 1024);
    assert.deepEqual(Buffer.concat(out), Buffer.concat(parts));
    assert.equal(digest.digest('hex'), createHash('sha256').update(Buffer.concat(parts)).digest('hex'));
  });

  it('fails with ERR_TOO_LARGE past the limit and hashes nothing beyond it', async () => {
    const digest = createHash('sha256');
    const limit = new ByteLimit(100, [digest]);
    await assert.rejects(pipeline(Readable.from([Buffer.alloc(60), Buffer.alloc(60)]), limit, async (s: AsyncIterable<Buffer>) => {
      for await (const _ of s);
    }), (err: unknown) => AppError.is(err) && err.code === 'ERR_TOO_LARGE');
    assert.equal(digest.digest('hex'), createHash('sha256').update(Buffer.alloc(60)).digest('hex'));
  });
});
