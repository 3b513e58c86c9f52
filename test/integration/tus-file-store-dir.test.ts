/** TusFileStore.create makes its directory once, and again when it disappeared meanwhile. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Upload } from '@tus/utils';
import { TusFileStore } from '../../src/storage/tus-file-store.js';

describe('TusFileStore directory', () => {
  it('creates uploads into a missing directory, also after it was removed between creations', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tus-dir-'));
    try {
      const dir = join(root, 'tus');
      const store = new TusFileStore(dir, 60_000);
      await store.create(new Upload({ id: 'first', size: 10, offset: 0 }));
      await rm(dir, { recursive: true });
      await store.create(new Upload({ id: 'second', size: 10, offset: 0 }));
      assert.deepEqual((await readdir(dir)).sort(), ['second', 'second.json']);
      assert.equal((await store.record('second'))?.size, 10);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
