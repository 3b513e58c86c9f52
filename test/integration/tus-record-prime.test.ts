/**
 * Start-up priming of the tus records (AtomicFileKvStore.prime, docs/performance.md): while
 * primed, reads answer from one synchronous pass over the directory; a write or delete of a
 * record is never answered from the stale copy; after unprime() every read goes to the file.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Upload } from '@tus/utils';
import { AtomicFileKvStore } from '../../src/storage/atomic-file-kv-store.js';
import { inlineReads } from '../../src/storage/metadata-reads.js';
import { TusFileStore } from '../../src/storage/tus-file-store.js';

const upload = (id: string, offset: number) => new Upload({ id, size: 10, offset });

describe('AtomicFileKvStore priming', () => {
  it('answers from the primed pass, forgets a key on set and delete, reads files again after unprime', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tus-prime-'));
    try {
      const kv = new AtomicFileKvStore(dir);
      await kv.set('a', upload('a', 1));
      await kv.set('b', upload('b', 2));
      await writeFile(join(dir, 'cut.json'), '{"id":"cu'); // a cut record reads as none, primed or not
      kv.prime();
      await writeFile(join(dir, 'a.json'), JSON.stringify(upload('a', 9))); // behind the store's back: the primed copy answers
      assert.equal((await kv.get('a'))?.offset, 1);
      const first = await kv.get('b');
      first!.offset = 99;
      assert.equal((await kv.get('b'))?.offset, 2, 'each read is a fresh object');
      assert.equal(await kv.get('cut'), undefined);
      await kv.set('b', upload('b', 5));
      assert.equal((await kv.get('b'))?.offset, 5, 'a write is never answered from the stale copy');
      await kv.delete('b');
      assert.equal(await kv.get('b'), undefined, 'nor a delete');
      assert.equal((await kv.get('new'))?.offset, undefined, 'a key the pass did not see is read from disk');
      kv.unprime();
      assert.equal((await kv.get('a'))?.offset, 9, 'unprimed: the file answers');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('primes the list and the data file sizes for the start-up passes, and drops what a removal or a write changes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tus-prime-'));
    try {
      const store = new TusFileStore(dir, 60_000);
      const now = new Date().toISOString();
      for (const [id, stored] of [['up1', 3], ['up2', 5], ['done1', 10]] as const) {
        await writeFile(join(dir, id), Buffer.alloc(stored));
        const offset = id === 'done1' ? 10 : 0; // markFinished sets offset = size
        await writeFile(join(dir, `${id}.json`), JSON.stringify({ id, size: 10, offset, creation_date: now }));
      }
      await writeFile(join(dir, 'orphan.json'), JSON.stringify({ id: 'orphan', size: 10, offset: 0, creation_date: now })); // no data file: no upload
      store.primeRecords();
      assert.deepEqual((await store.configstore.list!()).sort(), ['done1', 'up1', 'up2']);
      await writeFile(join(dir, 'up1'), Buffer.alloc(7)); // behind the store's back: the primed size answers
      const offsets = async () => Object.fromEntries((await store.listUnfinished()).map((u) => [u.id, u.offset]));
      assert.deepEqual(await offsets(), { up1: 3, up2: 5 });
      await store.discardFrom('up2', 2); // the store's own change to the data file is never answered from the primed size
      await store.remove('up1');
      assert.deepEqual(await offsets(), { up2: 2 }, 'removed upload gone, changed size read again');
      store.unprimeRecords();
      await writeFile(join(dir, 'up2'), Buffer.alloc(4));
      assert.deepEqual(await offsets(), { up2: 4 }, 'unprimed: the files answer');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lists many unfinished uploads on synchronous reads in batches, letting the event loop turn between them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tus-list-'));
    try {
      const store = new TusFileStore(dir, 60_000, { reads: inlineReads });
      const now = new Date().toISOString();
      const ids = Array.from({ length: 300 }, (_, i) => `up${i}`);
      for (const id of ids) {
        await writeFile(join(dir, id), Buffer.alloc(1));
        await writeFile(join(dir, `${id}.json`), JSON.stringify({ id, size: 10, offset: 0, creation_date: now }));
      }
      await writeFile(join(dir, 'orphan.json'), '{}'); // a record without data, and a data file without record: no upload
      await writeFile(join(dir, 'stray'), '');
      assert.deepEqual(await store.configstore.list!(), [...ids].sort(), 'unprimed list pairs data and record files');
      // The most records summarized within one turn of the event loop (an admin listing blocked
      // every request of the process for seconds when it read them all in one turn).
      let inTurn = 0;
      let most = 0;
      const summarize = store.summarize.bind(store);
      store.summarize = (id) => {
        most = Math.max(most, ++inTurn);
        return summarize(id);
      };
      let listing = true;
      const turn = () => {
        inTurn = 0;
        if (listing) setImmediate(turn);
      };
      setImmediate(turn);
      const listed = await store.listUnfinished();
      listing = false;
      assert.equal(listed.length, 300);
      assert.ok(most <= 64, `at most one batch of records per turn, saw ${most}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
