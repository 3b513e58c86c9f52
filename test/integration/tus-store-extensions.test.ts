/**
 * The store side of the tus extensions on a real file system: checksummed chunks all or
 * nothing, the concatenation join (idempotent after an interruption), deleting a published file
 * for good (tombstone, content-store release) and a finalization job cancelled by that deletion
 * whether it was queued or running.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Upload } from '@tus/utils';
import { AppError } from '../../src/errors.js';
import { ContentAddressedStore, FilePublishedStore, TusFileStore, TusRequestScope, type ChunkCheck } from '../../src/storage/index.js';
import { gate, slot, fileStore, startHarness } from './finalize-harness.js';

const check = (alg: 'sha1' | 'sha256', data: Buffer | string, declaredBytes?: number): ChunkCheck => ({
  algorithm: alg,
  digest: createHash(alg).update(data).digest(),
  declaredBytes,
});

describe('TusFileStore', () => {
  let dir: string;
  let store: TusFileStore;
  const scope = new TusRequestScope();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-tus-store-'));
    store = new TusFileStore(dir, 60_000, { scope: () => scope.current() });
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const newUpload = async (id: string, size: number, extra: Record<string, unknown> = {}) =>
    scope.run({ newRecord: { slotPath: `d/${id}`, contentType: 'application/octet-stream', ...extra } }, () => store.create(new Upload({ id, size, offset: 0 })));

  it('a checksummed chunk counts only when it verifies; a mismatch or a short body is truncated away', async () => {
    await newUpload('chunky', 10);
    assert.equal(await store.writeChecked(Readable.from([Buffer.from('01234')]), 'chunky', 0, check('sha1', '01234', 5)), 5);
    await assert.rejects(store.writeChecked(Readable.from([Buffer.from('56789')]), 'chunky', 5, check('sha1', 'other', 5)), (err: unknown) => AppError.is(err, 'ERR_CHUNK_CHECKSUM_MISMATCH'));
    assert.equal((await stat(store.dataPath('chunky'))).size, 5, 'the offset stays at 5');
    assert.equal(await store.writeChecked(Readable.from([Buffer.from('567')]), 'chunky', 5, check('sha256', '56789', 5)), 5, 'cut short: discarded');
    assert.equal((await stat(store.dataPath('chunky'))).size, 5);
    // Through write(), as @tus/server calls it, with the request's scope.
    assert.equal(await scope.run({ chunkCheck: check('sha256', '56789', 5) }, () => store.write(Readable.from([Buffer.from('56789')]), 'chunky', 5)), 10);
    assert.equal(await readFile(store.dataPath('chunky'), 'utf8'), '0123456789');
  });

  it('keeps the running sha256 of uploads that declared one, across writes, and drops it after a discarded chunk', async () => {
    const hex = createHash('sha256').update('abcdef').digest('hex');
    await newUpload('digest', 6, { expectedSha256: hex });
    await store.write(Readable.from([Buffer.from('abc')]), 'digest', 0);
    await store.write(Readable.from([Buffer.from('def')]), 'digest', 3);
    assert.equal(store.runningSha256('digest', 6), hex);

    await newUpload('digest2', 6, { expectedSha256: hex });
    await store.write(Readable.from([Buffer.from('abc')]), 'digest2', 0);
    await store.writeChecked(Readable.from([Buffer.from('xyz')]), 'digest2', 3, check('sha1', 'def', 3)).catch(() => {});
    await store.write(Readable.from([Buffer.from('def')]), 'digest2', 3);
    assert.equal(store.runningSha256('digest2', 6), undefined, 'the hash saw rejected bytes: the caller hashes the file');
  });

  it('joins parts: the first is hard-linked, the rest appended; a repeat after an interruption gives the same file', async () => {
    const parts = [Buffer.from('first-'), Buffer.from('second-'), Buffer.from('third')];
    const ids = ['p1', 'p2', 'p3'];
    for (const [i, id] of ids.entries()) {
      await newUpload(id, parts[i]!.length, { concat: { kind: 'partial' } });
      await store.write(Readable.from([parts[i]!]), id, 0);
    }
    const spec = ids.map((id, i) => ({ id, size: parts[i]!.length }));
    await store.concatenate('joined', spec);
    const [first, joined] = await Promise.all([stat(store.dataPath('p1')), stat(store.dataPath('joined'))]);
    assert.equal(first.ino, joined.ino, 'the first part is not copied');
    assert.equal(await readFile(store.dataPath('joined'), 'utf8'), 'first-second-third');
    await truncate(store.dataPath('joined'), 9); // an interrupted append
    await store.concatenate('joined', spec);
    assert.equal(await readFile(store.dataPath('joined'), 'utf8'), 'first-second-third');
    await store.concatenate('joined', spec);
    assert.equal((await stat(store.dataPath('joined'))).size, 18, 'idempotent');
  });

  it('the slot index of partials never answers as an upload', async () => {
    await store.setPartialsOf('d/x', [{ id: 'p1', size: 6 }]);
    assert.deepEqual(await store.partialsOf('d/x'), [{ id: 'p1', size: 6 }]);
    const key = (await store.configstore.list?.()) ?? [];
    assert.ok(!key.some((k) => k.startsWith('concat.')), 'not listed as an upload');
    await assert.rejects(store.getUpload('concat.0123'), (e: unknown) => (e as { status_code?: number }).status_code === 404);
  });
});

describe('deleting a published file for good', () => {
  it('tombstone: stat null, deletedAt set, publishing it again is withdrawn; another upload\u2019s file is refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hfs-tomb-'));
    try {
      const published = new FilePublishedStore(dir);
      await published.init();
      const cas = new ContentAddressedStore(join(dir, 'cas'));
      await cas.init();
      const content = join(dir, 'content');
      await writeFile(content, 'bytes');
      const sha = createHash('sha256').update('bytes').digest('hex');
      const entry = await cas.adopt(content, sha, 5);
      const record = { contentType: 'text/plain', uploadId: 'u1', sha256: sha, size: 5, protocol: 'tus', receivedAtMs: 0 };
      assert.equal(await published.publishLinked('a/f.txt', entry.path, record), 'published');
      assert.deepEqual(await published.deleteForGood('a/f.txt', 'someone-else', 1), { kind: 'foreign' });
      assert.ok(await published.stat('a/f.txt'), 'untouched');
      assert.deepEqual(await published.deleteForGood('a/f.txt', 'u1', 1000), { kind: 'deleted', sha256: sha });
      assert.equal(await published.stat('a/f.txt'), null);
      assert.equal(await published.deletedAt('a/f.txt'), 1000);
      assert.equal(await cas.release(sha), false, 'the content file still links it');
      await rm(content);
      assert.equal(await cas.release(sha), true);
      await assert.rejects(stat(entry.path), { code: 'ENOENT' });
      await writeFile(content, 'bytes');
      assert.equal(await published.publishLinked('a/f.txt', content, record), 'withdrawn');
      assert.deepEqual(await published.deleteForGood('a/f.txt', 'u1', 2000), { kind: 'deleted', sha256: sha }, 'idempotent');
      assert.equal(await published.deletedAt('a/f.txt'), 1000, 'keeps the first deletion time');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a queued and a running finalization job are cancelled by the deletion: done, nothing published, no dead letter', async () => {
    const hold = gate();
    let reached!: () => void;
    const held = new Promise<void>((resolve) => (reached = resolve));
    const h = await startHarness(fileStore, {
      workers: 1,
      onStep: async (step, jobId) => {
        if (step !== 'hashed' || jobId !== 'put-running') return;
        reached();
        await hold.wait(); // the only worker is busy: the next job stays queued
      },
    });
    try {
      const [running, queued] = [slot('running.bin'), slot('queued.bin')];
      assert.equal(await h.put(running, Buffer.from('first'), { uploadId: 'running' }), 'accepted');
      await held;
      assert.equal(await h.put(queued, Buffer.from('second'), { uploadId: 'queued' }), 'accepted');
      for (const [path, id] of [[running, 'running'], [queued, 'queued']] as const) {
        assert.equal((await h.published.deleteForGood(path, id, Date.now())).kind, 'deleted');
      }
      hold.open();
      for (const id of ['put-running', 'put-queued']) await h.waitLog((l) => l.msg === 'Finalization job done' && l.jobId === id);
      for (const path of [running, queued]) {
        assert.equal(await h.published.stat(path), null);
        assert.notEqual(await h.published.deletedAt(path), null, 'the tombstone stays');
      }
      const counts = await h.service.admin.counts();
      assert.equal(counts.dead.high + counts.dead.medium + counts.dead.low, 0);
      assert.ok(!h.lines.some((l) => l.msg === 'File published'));
      const sha = createHash('sha256').update('first').digest('hex');
      await assert.rejects(stat(join(h.dir, 'cas', sha.slice(0, 2), sha)), { code: 'ENOENT' }, 'the cancelled job kept no content');
    } finally {
      hold.open();
      await h.dispose();
    }
  });
});
