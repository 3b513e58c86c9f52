/**
 * What every quarantine store must do (src/storage/quarantine-store.ts); run against the file and
 * the S3 implementations by test/integration/quarantine-stores.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import type { QuarantineRecord, QuarantineStore, UploadSource } from '../../src/storage/index.js';
import { bufferSource } from './published-store.suite.js';

export interface QuarantineStoreUnderTest {
  readonly store: QuarantineStore;
  /**
   * Another store on the same place, as a restarted server, the offline CLI or (S3) another
   * instance of a cluster opens it: it must see what `store` did.
   */
  reopen(): Promise<QuarantineStore>;
  /** A source of the store's own backend (a finished upload, a staged PUT body) holding `bytes`; `gone`: already removed. */
  makeSource(bytes: Buffer, options?: { gone?: boolean }): Promise<UploadSource>;
  /** True while the source's bytes are still where makeSource put them. */
  sourceExists(source: UploadSource): Promise<boolean>;
}

export interface QuarantineStoreFixture {
  /** A fresh, empty store (its own directory, bucket or key prefix). */
  open(): Promise<QuarantineStoreUnderTest>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function recordFor(bytes: Buffer, over: Partial<QuarantineRecord> = {}): QuarantineRecord {
  const id = over.id ?? `put-${randomBytes(6).toString('hex')}`;
  return {
    id,
    slotPath: `${randomBytes(4).toString('hex')}/évil file.exe`,
    size: bytes.length,
    sha256: sha256(bytes),
    contentType: 'application/x-msdownload',
    protocol: 'put',
    uploadId: id.slice(4),
    receivedAtMs: 1_700_000_000_000,
    quarantinedAtMs: 1_700_000_001_000,
    reason: 'infected',
    signature: 'Hfs.Test.Evil.UNOFFICIAL',
    ...over,
  };
}

export function describeQuarantineStore(name: string, fixture: QuarantineStoreFixture): void {
  describe(`${name} conforms to QuarantineStore`, () => {
    it('knows nothing of an id or slot never quarantined, and answers null (not an error) for a malformed id', async () => {
      const { store } = await fixture.open();
      assert.equal(await store.get('put-nothing'), null);
      assert.equal(await store.get('../../etc/passwd'), null);
      assert.equal(await store.bySlot('a/nothing.bin'), null);
      assert.equal(await store.remove('put-nothing'), false);
      assert.deepEqual(await store.list(), []);
    });

    it('admits a source of its own backend: the record by id and by slot, the bytes kept, the source moved or left for the caller', async () => {
      const { store, makeSource, sourceExists } = await fixture.open();
      const bytes = randomBytes(70_000);
      const record = recordFor(bytes);
      const source = await makeSource(bytes);
      const how = await store.admit(record, source);
      assert.ok(how === 'moved' || how === 'copied');
      assert.equal(await sourceExists(source), how === 'copied', "'moved' takes the source away; 'copied' leaves it to the caller");
      assert.deepEqual(await store.get(record.id), record);
      assert.deepEqual(await store.bySlot(record.slotPath), record);
      assert.deepEqual(await store.list(), [record]);
      assert.ok((await buffer(store.content(record).open())).equals(bytes));
      assert.ok((await buffer(store.content(record).open({ start: 10, end: 19 }))).equals(bytes.subarray(10, 20)), 'by range');
    });

    it('copies in a source held elsewhere (streamed), and the caller removes it', async () => {
      const { store } = await fixture.open();
      const bytes = randomBytes(20_000);
      const record = recordFor(bytes, { protocol: 'tus', id: 'tus-elsewhere', uploadId: 'elsewhere', reason: 'oversize', signature: null });
      assert.equal(await store.admit(record, bufferSource(bytes)), 'copied');
      assert.deepEqual(await store.get(record.id), record);
      assert.ok((await buffer(store.content(record).open())).equals(bytes));
    });

    it('is idempotent: a repeat after a crash finishes the move; with neither source nor bytes it rejects ENOENT', async () => {
      const { store, makeSource } = await fixture.open();
      const bytes = Buffer.from('quarantined twice');
      const record = recordFor(bytes);
      const source = await makeSource(bytes);
      await store.admit(record, source);
      await store.admit(record, source); // the source may be gone now: the bytes are in
      assert.ok((await buffer(store.content(record).open())).equals(bytes));
      assert.equal((await store.list()).length, 1);

      await assert.rejects(store.admit(recordFor(bytes, { id: 'put-gone' }), await makeSource(bytes, { gone: true })), { code: 'ENOENT' });
    });

    it('lists oldest first, and a store opened afterwards on the same place sees every entry', async () => {
      const { store, makeSource, reopen } = await fixture.open();
      const a = recordFor(Buffer.from('a'), { id: 'put-b-later', quarantinedAtMs: 3_000 });
      const b = recordFor(Buffer.from('b'), { id: 'put-a-first', quarantinedAtMs: 1_000 });
      const c = recordFor(Buffer.from('c'), { id: 'put-c-middle', quarantinedAtMs: 2_000 });
      for (const r of [a, b, c]) await store.admit(r, await makeSource(Buffer.from(r.id.slice(4, 5))));
      assert.deepEqual((await store.list()).map((r) => r.id), ['put-a-first', 'put-c-middle', 'put-b-later']);
      const other = await reopen();
      assert.deepEqual((await other.list()).map((r) => r.id), ['put-a-first', 'put-c-middle', 'put-b-later']);
      assert.deepEqual(await other.bySlot(c.slotPath), c);
      assert.equal((await buffer(other.content(c).open())).toString(), 'c');
    });

    it('removes an entry with its bytes: unknown by id and by slot, its bytes unreadable, the others kept', async () => {
      const { store, makeSource, reopen } = await fixture.open();
      const keep = recordFor(Buffer.from('keep'));
      const drop = recordFor(Buffer.from('drop'));
      await store.admit(keep, await makeSource(Buffer.from('keep')));
      await store.admit(drop, await makeSource(Buffer.from('drop')));
      assert.equal(await store.remove(drop.id), true);
      assert.equal(await store.get(drop.id), null);
      assert.equal(await store.bySlot(drop.slotPath), null);
      await assert.rejects(buffer(store.content(drop).open()), 'the bytes are gone');
      assert.equal(await store.remove(drop.id), false, 'a second remove finds nothing');
      assert.deepEqual((await store.list()).map((r) => r.id), [keep.id]);
      const other = await reopen();
      assert.equal(await other.get(drop.id), null);
      assert.deepEqual(await other.bySlot(keep.slotPath), keep);
    });

    it('refuses an id that is not a job id (no path escapes)', async () => {
      const { store } = await fixture.open();
      const record = recordFor(Buffer.from('x'), { id: '../escape' });
      await assert.rejects(store.admit(record, bufferSource(Buffer.from('x'))), TypeError);
      assert.throws(() => store.content(record), TypeError);
    });
  });
}
