/** readSmallFile (storage/read-small-file.ts): the whole file, whatever its size against the first read. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readSmallFile } from '../../src/storage/read-small-file.js';

describe('readSmallFile', () => {
  it('reads empty, small, exactly-one-read and multi-read files whole; a missing file rejects with ENOENT', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'read-small-'));
    try {
      for (const size of [0, 300, 16 * 1024, 16 * 1024 + 1, 100_000]) {
        const text = Array.from({ length: size }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
        await writeFile(join(dir, `f${size}`), text);
        assert.equal(await readSmallFile(join(dir, `f${size}`)), text, `${size} bytes`);
      }
      await assert.rejects(readSmallFile(join(dir, 'missing')), { code: 'ENOENT' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
