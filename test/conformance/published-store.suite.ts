/**
 * What every published store (and its content store, where dedup is offered) must do
 * (src/storage/published-store.ts); run against the file and the S3 implementations by
 * test/integration/storage-stores.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { hasClaims, type ContentStore, type PublishRecord, type PublishedStore, type UploadSource } from '../../src/storage/index.js';

export interface PublishedStoreUnderTest {
  readonly store: PublishedStore;
  /** Dedup, when the backend offers it. */
  readonly content?: ContentStore;
  /** A source of the store's own backend (a finished upload, a staged PUT body) holding `bytes`. */
  makeSource(bytes: Buffer): Promise<UploadSource>;
}

export interface PublishedStoreFixture {
  /** A fresh, empty store (its own directory, bucket or key prefix). */
  open(): Promise<PublishedStoreUnderTest>;
  /** Bytes above which the store publishes differently (S3: multipart copy); a case covers one. */
  readonly largeBytes: number;
  close?(): Promise<void>;
}

/** A source no backend knows: the store must stream it. */
export function bufferSource(bytes: Buffer, ref = `mem:${randomBytes(6).toString('hex')}`): UploadSource {
  return {
    ref,
    size: bytes.length,
    open: (range) => {
      const out = new PassThrough();
      out.end(range ? bytes.subarray(range.start, range.end + 1) : bytes);
      return out;
    },
  };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function recordFor(bytes: Buffer, uploadId: string, contentType = 'image/png'): PublishRecord {
  return { contentType, uploadId, sha256: sha256(bytes), size: bytes.length, protocol: 'tus', receivedAtMs: 1_700_000_000_000 };
}

const read = (s: Readable) => buffer(s);

export function describePublishedStore(name: string, fixture: PublishedStoreFixture): void {
  describe(`${name} conforms to PublishedStore`, () => {
    it('knows nothing of a path never published', async () => {
      const { store } = await fixture.open();
      assert.equal(await store.stat('nope/file.txt'), null);
      assert.equal(await store.record('nope/file.txt'), null);
      assert.equal(await store.remove('nope/file.txt'), false);
      await assert.rejects(read(store.read('nope/file.txt')), 'reading a missing file errors on the stream');
    });

    it('the ETag is per path: identical bytes at two paths have two strong ETags, each stable', async () => {
      const { store, makeSource } = await fixture.open();
      const bytes = randomBytes(20_000);
      assert.equal(await store.publish('etag/a.bin', await makeSource(bytes), recordFor(bytes, 'up-a')), 'published');
      assert.equal(await store.publish('etag/b.bin', await makeSource(bytes), recordFor(bytes, 'up-b')), 'published');
      const [a, b] = [await store.stat('etag/a.bin'), await store.stat('etag/b.bin')];
      assert.ok(a && b);
      assert.match(a.etag, /^"[^"]+"$/, 'strong');
      assert.notEqual(a.etag, b.etag, 'one path does not reveal that another holds the same bytes');
      assert.equal((await store.stat('etag/a.bin'))?.etag, a.etag, 'stable across stats');
      assert.ok(!a.etag.includes(recordFor(bytes, 'x').sha256), 'not the bare content hash');
    });

    it('publishes a source of its own backend with its record, and serves it whole and by range', async () => {
      const { store, makeSource } = await fixture.open();
      const bytes = randomBytes(70_000);
      const source = await makeSource(bytes);
      const record = recordFor(bytes, 'up-1');
      assert.equal(await store.publish('dir/sub/photo 1 ü.png', source, record), 'published');
      const file = await store.stat('dir/sub/photo 1 ü.png');
      assert.ok(file);
      assert.equal(file.size, bytes.length);
      assert.equal(file.contentType, 'image/png');
      assert.match(file.etag, /^"[^"]+"$/);
      assert.ok(Math.abs(file.mtimeMs - Date.now()) < 10 * 60_000);
      const stored = await store.record('dir/sub/photo 1 ü.png');
      assert.equal(stored?.uploadId, 'up-1');
      assert.equal(stored?.sha256, record.sha256);
      assert.equal(stored?.size, bytes.length);
      assert.equal(stored?.protocol, 'tus');
      assert.equal(stored?.receivedAtMs, record.receivedAtMs);
      assert.equal(typeof stored?.publishedAt, 'string');
      assert.ok((await read(store.read('dir/sub/photo 1 ü.png'))).equals(bytes));
      assert.ok((await read(store.read('dir/sub/photo 1 ü.png', { start: 100, end: 1099 }))).equals(bytes.subarray(100, 1100)));
      assert.ok((await read(store.read('dir/sub/photo 1 ü.png', { start: bytes.length - 1, end: bytes.length - 1 }))).equals(bytes.subarray(-1)));
      assert.equal(await store.stat('dir/sub'), null, 'a directory is not a file');
      assert.ok((await read(source.open())).equals(bytes), 'the source is left in place');
    });

    it('publishes an empty file', async () => {
      const { store, makeSource } = await fixture.open();
      assert.equal(await store.publish('empty.txt', await makeSource(Buffer.alloc(0)), recordFor(Buffer.alloc(0), 'up-e', 'text/plain')), 'published');
      assert.equal((await store.stat('empty.txt'))?.size, 0);
      assert.equal((await read(store.read('empty.txt'))).length, 0);
    });

    it('streams a source of another backend', async () => {
      const { store } = await fixture.open();
      const bytes = randomBytes(200_000);
      assert.equal(await store.publish('foreign.bin', bufferSource(bytes), recordFor(bytes, 'up-f', 'application/octet-stream')), 'published');
      assert.ok((await read(store.read('foreign.bin'))).equals(bytes));
      assert.equal((await store.record('foreign.bin'))?.sha256, sha256(bytes));
    });

    it('never overwrites: the same upload again is "already", another is "taken"', async () => {
      const { store, makeSource } = await fixture.open();
      const bytes = randomBytes(1000);
      const other = randomBytes(1000);
      assert.equal(await store.publish('once.bin', await makeSource(bytes), recordFor(bytes, 'up-a')), 'published');
      assert.equal(await store.publish('once.bin', await makeSource(bytes), recordFor(bytes, 'up-a')), 'already');
      assert.equal(await store.publish('once.bin', await makeSource(other), recordFor(other, 'up-b')), 'taken');
      assert.equal(await store.publish('once.bin', bufferSource(other), recordFor(other, 'up-c')), 'taken');
      assert.ok((await read(store.read('once.bin'))).equals(bytes));
      assert.equal((await store.record('once.bin'))?.uploadId, 'up-a');
    });

    it('lets exactly one of two concurrent publishers of a path win', async () => {
      const { store, makeSource } = await fixture.open();
      const a = randomBytes(50_000);
      const b = randomBytes(50_000);
      const [sa, sb] = [await makeSource(a), await makeSource(b)];
      const outcomes = await Promise.all([store.publish('race.bin', sa, recordFor(a, 'up-a')), store.publish('race.bin', sb, recordFor(b, 'up-b'))]);
      assert.deepEqual([...outcomes].sort(), ['published', 'taken']);
      const winner = outcomes[0] === 'published' ? a : b;
      assert.ok((await read(store.read('race.bin'))).equals(winner));
      assert.equal((await store.record('race.bin'))?.sha256, sha256(winner), 'the record belongs to the bytes');
    });

    it('publishes a large file intact', async () => {
      const { store, makeSource } = await fixture.open();
      const bytes = randomBytes(fixture.largeBytes + 1_234_567);
      assert.equal(await store.publish('large.bin', await makeSource(bytes), recordFor(bytes, 'up-l', 'video/mp4')), 'published');
      assert.equal((await store.stat('large.bin'))?.size, bytes.length);
      assert.equal(sha256(await read(store.read('large.bin'))), sha256(bytes));
      const start = fixture.largeBytes - 10;
      assert.ok((await read(store.read('large.bin', { start, end: start + 99 }))).equals(bytes.subarray(start, start + 100)));
    });

    it('lists every published file and forgets removed ones', async () => {
      const { store, makeSource } = await fixture.open();
      const files = new Map([['a.txt', 3], ['x/y/z.txt', 5], ['x/w.txt', 1]]);
      for (const [path, size] of files) {
        const bytes = randomBytes(size);
        await store.publish(path, await makeSource(bytes), recordFor(bytes, `up-${path}`));
      }
      const listed = async () => {
        const out: Array<[string, number]> = [];
        for await (const e of store.list()) out.push([e.path, e.size]);
        return out.sort();
      };
      assert.deepEqual(await listed(), [...files].sort());
      assert.equal(await store.remove('x/y/z.txt'), true);
      assert.equal(await store.stat('x/y/z.txt'), null);
      assert.equal(await store.record('x/y/z.txt'), null);
      assert.deepEqual(await listed(), [['a.txt', 3], ['x/w.txt', 1]]);
      const again = randomBytes(2);
      assert.equal(await store.publish('x/y/z.txt', await makeSource(again), recordFor(again, 'up-new')), 'published', 'a removed path can be published again');
    });

    it('claims kept apart from files (ClaimedPaths, S3): a published path is no unpublished claim, and its claim is not released', async (t) => {
      const { store, makeSource } = await fixture.open();
      if (!hasClaims(store)) return t.skip('this store keeps no claims apart from its files');
      const bytes = randomBytes(10);
      assert.equal(await store.publish('claimed/a.txt', await makeSource(bytes), recordFor(bytes, 'up-c')), 'published');
      const unpublished: string[] = [];
      for await (const c of store.unpublishedClaims()) unpublished.push(c.path);
      assert.deepEqual(unpublished, []);
      assert.equal(await store.releaseClaim('claimed/a.txt'), false, 'a file is there');
      const other = randomBytes(11);
      assert.equal(await store.publish('claimed/a.txt', await makeSource(other), recordFor(other, 'up-d')), 'taken', 'still claimed');
    });

    it('dedups identical content into one entry that publishes like any source', async (t) => {
      const { store, content, makeSource } = await fixture.open();
      if (!content) return t.skip('no content store');
      const bytes = randomBytes(30_000);
      const digest = sha256(bytes);
      const first = await content.adoptSource(await makeSource(bytes), digest, bytes.length);
      assert.equal(first.fresh, true);
      const second = await content.adoptSource(await makeSource(bytes), digest, bytes.length);
      assert.equal(second.fresh, false, 'identical content is found, not stored again');
      const foreign = await content.adoptSource(bufferSource(bytes), digest, bytes.length);
      assert.equal(foreign.fresh, false);
      assert.equal(second.source.ref, first.source.ref);
      assert.ok((await read(second.source.open())).equals(bytes));
      await assert.rejects(content.adoptSource(bufferSource(bytes.subarray(1)), digest, bytes.length - 1), /expected/);
      assert.equal(await store.publish('dedup/1.bin', first.source, recordFor(bytes, 'up-1')), 'published');
      assert.equal(await store.publish('dedup/2.bin', second.source, recordFor(bytes, 'up-2')), 'published');
      assert.ok((await read(store.read('dedup/2.bin'))).equals(bytes));
      assert.ok((await read(first.source.open())).equals(bytes), 'the entry stays after publishing');
    });

    it('a re-run of an adoption by the same source is still its own (fresh) after a crash', async (t) => {
      const { content, makeSource } = await fixture.open();
      if (!content) return t.skip('no content store');
      const bytes = randomBytes(1000);
      const source = await makeSource(bytes);
      const digest = sha256(bytes);
      assert.equal((await content.adoptSource(source, digest, bytes.length)).fresh, true);
      assert.equal((await content.adoptSource(source, digest, bytes.length)).fresh, true);
    });
  });
}
