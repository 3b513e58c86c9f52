/**
 * What every tus upload store must do (src/storage/upload-store.ts); run against the file store
 * and the S3 store by test/integration/storage-stores.test.ts. Drives the store through the
 * DataStore calls @tus/server makes (create, write, declareUploadLength, getUpload).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { Upload } from '@tus/utils';
import { LEGACY_SLOT_KEY, LEGACY_TYPE_KEY, type TusUploadStore } from '../../src/storage/index.js';

export interface TusStoreFixture {
  /**
   * A store over the fixture's one backend (a second call sees the same uploads: a restart).
   * `expirationMs` 0 turns expiry off.
   */
  open(options: { expirationMs: number }): Promise<TusUploadStore>;
  /** Whatever the backend still holds for `id` (files, objects, multipart uploads): [] once it is gone. */
  residue(id: string): Promise<string[]>;
  close?(): Promise<void>;
}

/**
 * Metadata that names the upload's slot the way records did before the server state moved to
 * `hfs` (tus-upload-record.ts): the one way to give a store a slot through the bare DataStore calls.
 */
const slot = (path: string) => ({ [LEGACY_SLOT_KEY]: path, [LEGACY_TYPE_KEY]: 'application/octet-stream' });

/** S3 parts are at least 5 MiB: sizes around it cover the incomplete-part path too. */
const MIB = 1024 * 1024;

export function describeTusStore(name: string, fixture: TusStoreFixture): void {
  describe(`${name} conforms to TusUploadStore`, () => {
    const newId = () => `u${randomBytes(8).toString('hex')}`;
    const create = async (store: TusUploadStore, size: number | undefined, metadata: Record<string, string> = {}) => {
      const id = newId();
      await store.datastore.create(new Upload({ id, offset: 0, ...(size !== undefined && { size }), metadata }));
      return id;
    };
    const write = (store: TusUploadStore, id: string, bytes: Buffer, offset: number) => store.datastore.write(Readable.from([bytes]), id, offset);
    const read = async (s: Readable) => buffer(s);

    it('stores bytes written in several requests and reads them back once finished', async () => {
      const store = await fixture.open({ expirationMs: 0 });
      const body = randomBytes(6 * MIB + 123);
      const id = await create(store, body.length, { ...slot('a/b.bin'), filetype: 'application/octet-stream' });
      assert.equal(await store.declaredSize(id), body.length);
      assert.equal((await store.metadata(id))?.filetype, 'application/octet-stream');
      assert.equal(await write(store, id, body.subarray(0, 1000), 0), 1000);
      assert.equal((await store.datastore.getUpload(id)).offset, 1000);
      assert.equal(await store.source(id), null, 'no source before the last byte');
      assert.equal(await write(store, id, body.subarray(1000), 1000), body.length);
      await store.markFinished(id);
      await store.markFinished(id); // idempotent
      const summary = await store.summarize(id);
      assert.equal(summary?.finished, true);
      assert.equal(summary?.offset, body.length);
      assert.equal(summary?.slotPath, 'a/b.bin');
      const source = await store.source(id);
      assert.ok(source);
      assert.equal(source.size, body.length);
      assert.ok((await read(source.open())).equals(body));
      assert.ok((await read(source.open({ start: 10, end: 19 }))).equals(body.subarray(10, 20)));
      await store.discard(id);
    });

    it('resumes from the stored offset in a new store instance (a restart)', async () => {
      const body = randomBytes(5 * MIB + 77);
      const first = await fixture.open({ expirationMs: 0 });
      const id = await create(first, body.length);
      await write(first, id, body.subarray(0, 4096), 0);
      const second = await fixture.open({ expirationMs: 0 });
      const offset = (await second.datastore.getUpload(id)).offset;
      assert.equal(offset, 4096);
      assert.equal(await write(second, id, body.subarray(offset), offset), body.length);
      await second.markFinished(id);
      assert.ok((await read((await second.source(id))!.open())).equals(body));
      await second.discard(id);
    });

    it('accepts a deferred length declared before the last byte', async () => {
      const store = await fixture.open({ expirationMs: 0 });
      const body = randomBytes(3000);
      const id = await create(store, undefined);
      assert.equal(await store.declaredSize(id), undefined);
      assert.equal((await store.summarize(id))?.size, null);
      await write(store, id, body.subarray(0, 1000), 0);
      await store.datastore.declareUploadLength(id, body.length);
      assert.equal(await store.declaredSize(id), body.length);
      await write(store, id, body.subarray(1000), 1000);
      await store.markFinished(id);
      assert.ok((await read((await store.source(id))!.open())).equals(body));
      await store.discard(id);
    });

    it('lists unfinished uploads for operators and finished ones for recovery', async () => {
      const store = await fixture.open({ expirationMs: 0 });
      const open = await create(store, 100, slot('open.bin'));
      await write(store, open, Buffer.alloc(10, 1), 0);
      const done = await create(store, 5, slot('done.bin'));
      await write(store, done, Buffer.from('hello'), 0);
      await store.markFinished(done);
      const unfinished = (await store.listUnfinished()).filter((u) => u.id === open || u.id === done);
      assert.deepEqual(unfinished.map((u) => [u.id, u.offset, u.size, u.finished, u.slotPath]), [[open, 10, 100, false, 'open.bin']]);
      const finished: string[] = [];
      for await (const u of store.finished()) {
        if (u.id !== done && u.id !== open) continue;
        finished.push(u.id);
        assert.equal(u.size, 5);
        assert.equal(u.state?.slotPath, 'done.bin', 'the slot of an upload created with the legacy metadata keys');
        assert.equal((await read(u.source.open())).toString(), 'hello');
      }
      assert.deepEqual(finished, [done]);
      await store.discard(open);
      await store.discard(done);
    });

    it('keeps a finished upload answering HEAD as complete after its bytes are released', async () => {
      const store = await fixture.open({ expirationMs: 1 });
      const id = await create(store, 5, slot('kept.bin'));
      await write(store, id, Buffer.from('bytes'), 0);
      await store.markFinished(id);
      await store.releaseData(id);
      await store.releaseData(id); // idempotent
      assert.equal(await store.source(id), null);
      const before = Date.now();
      const upload = await fixture.open({ expirationMs: 1 }).then((s) => s.datastore.getUpload(id));
      assert.equal(upload.offset, 5);
      assert.equal(upload.size, 5);
      // The handlers answer 410 once creation_date + expiration has passed: a finished upload must never look old.
      assert.ok(upload.creation_date === undefined || Date.parse(upload.creation_date) >= before, `creation date ${upload.creation_date}`);
      assert.equal((await store.summarize(id))?.finished, true);
      let listed = false;
      for await (const u of store.finished()) listed ||= u.id === id;
      assert.equal(listed, false, 'released bytes are not offered for recovery');
      assert.equal(await store.deleteExpired(Date.now() + 60_000), 0, 'a finished upload never expires');
      assert.equal((await store.summarize(id))?.finished, true);
      await store.discard(id);
    });

    it('terminates an unfinished upload leaving nothing behind', async () => {
      const store = await fixture.open({ expirationMs: 0 });
      const id = await create(store, 6 * MIB);
      await write(store, id, randomBytes(5 * MIB + 10), 0); // one full part and an incomplete one on S3
      await store.remove(id);
      assert.equal(await store.summarize(id), null);
      await assert.rejects(store.datastore.getUpload(id));
      assert.deepEqual(await fixture.residue(id), []);
      await assert.rejects(store.remove(id), 'an unknown upload cannot be terminated');
    });

    it('discards finished and unfinished uploads entirely, and tolerates repeats', async () => {
      const store = await fixture.open({ expirationMs: 0 });
      const done = await create(store, 3);
      await write(store, done, Buffer.from('abc'), 0);
      await store.markFinished(done);
      const open = await create(store, 10);
      await write(store, open, Buffer.from('abc'), 0);
      for (const id of [done, open]) {
        await store.discard(id);
        await store.discard(id);
        assert.equal(await store.summarize(id), null);
        assert.deepEqual(await fixture.residue(id), []);
      }
    });

    it('expires unfinished uploads older than the period, never finished ones', async () => {
      const store = await fixture.open({ expirationMs: 60_000 });
      const stale = await create(store, 10);
      await write(store, stale, Buffer.from('abc'), 0);
      const done = await create(store, 3);
      await write(store, done, Buffer.from('abc'), 0);
      await store.markFinished(done);
      assert.equal(await store.deleteExpired(Date.now()), 0, 'nothing is old yet');
      assert.ok((await store.summarize(stale)) !== null);
      assert.ok((await store.deleteExpired(Date.now() + 120_000)) >= 1);
      assert.equal(await store.summarize(stale), null);
      assert.deepEqual(await fixture.residue(stale), []);
      assert.ok((await store.source(done)) !== null, 'the finished upload stays');
      await store.discard(done);
    });

    it('answers unknown ids with nothing, never a crash', async () => {
      const store = await fixture.open({ expirationMs: 0 });
      for (const id of [newId(), '../etc/passwd']) {
        assert.equal(await store.summarize(id), null);
        assert.equal(await store.metadata(id), null);
        assert.equal(await store.declaredSize(id), undefined);
        assert.equal(await store.source(id), null);
        await store.discard(id);
      }
      await assert.rejects(store.markFinished(newId()));
    });

    it('refuses to mark an incomplete upload finished', async () => {
      const store = await fixture.open({ expirationMs: 0 });
      const id = await create(store, 10);
      await write(store, id, Buffer.from('abc'), 0);
      await assert.rejects(store.markFinished(id));
      assert.equal((await store.summarize(id))?.finished, false);
      await store.discard(id);
    });
  });
}
