/**
 * A tus record that is no JSON record (a disk error, a hand edit) answers as no upload, so no
 * pass would ever remove it: the file store names such records (start-up warning), the expiry
 * sweep removes them once the record file is older than the expiration, and discard (recover)
 * removes them with their bytes at once.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { newUploadId } from '../../src/auth/index.js';
import { TusFileStore } from '../../src/storage/tus-file-store.js';

const EXPIRATION_MS = 60_000;

describe('tus file store: unreadable records', () => {
  let dir: string;
  let store: TusFileStore;
  const [old, fresh, notObject, good] = [newUploadId(), newUploadId(), newUploadId(), newUploadId()];
  const exists = (name: string) => existsSync(join(dir, name));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tus-unreadable-'));
    store = new TusFileStore(dir, EXPIRATION_MS);
    for (const id of [old, fresh, notObject, good]) await writeFile(join(dir, id), Buffer.alloc(4));
    await writeFile(join(dir, `${old}.json`), '{"id":"cut-sh');
    await writeFile(join(dir, `${fresh}.json`), '\0\0\0\0');
    await writeFile(join(dir, `${notObject}.json`), 'null');
    await writeFile(join(dir, `${good}.json`), JSON.stringify({ id: good, size: 10, offset: 0, creation_date: new Date().toISOString() }));
    const longAgo = (Date.now() - 2 * EXPIRATION_MS) / 1000;
    await utimes(join(dir, `${old}.json`), longAgo, longAgo);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('names them; each answers as no upload', async () => {
    assert.deepEqual((await store.unreadableRecords()).sort(), [old, fresh, notObject].sort());
    for (const id of [old, fresh, notObject]) assert.equal(await store.record(id), null, id);
    assert.equal(await store.isUnreadable(good), false);
  });

  it('the expiry sweep removes one older than the expiration, with its bytes; younger ones stay', async () => {
    assert.equal(await store.deleteExpired(Date.now()), 1);
    assert.equal(exists(old) || exists(`${old}.json`), false, 'the old record and its bytes are gone');
    for (const id of [fresh, notObject, good]) assert.ok(exists(id) && exists(`${id}.json`), id);
  });

  it('discard removes one at once (recover)', async () => {
    await store.discard(fresh);
    await store.discard(notObject);
    for (const id of [fresh, notObject]) assert.equal(exists(id) || exists(`${id}.json`), false, id);
    assert.deepEqual(await store.unreadableRecords(), []);
    assert.ok(exists(good) && exists(`${good}.json`), 'a readable upload is untouched');
  });
});
