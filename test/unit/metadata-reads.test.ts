/** The two ways the file stores read records and stats, and the durable small-file writes. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fsyncDir, fsyncPath, inlineReads, metadataReadsFor, pooledReads, writeDurably } from '../../src/storage/index.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hfs-metadata-reads-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('metadata reads', () => {
  it('single-node reads inline, a data dir shared by instances through the pool', () => {
    assert.equal(metadataReadsFor(false), inlineReads);
    assert.equal(metadataReadsFor(true), pooledReads);
  });

  for (const [how, reads] of [['pooled', pooledReads], ['inline', inlineReads]] as const) {
    it(`${how}: the whole text, also past the first read's 16 KiB, and the stat`, async () => {
      const file = join(dir, `${how}.json`);
      const text = `{"k":"${'é'.repeat(20_000)}"}`;
      await writeFile(file, text);
      assert.equal(await reads.text(file), text);
      const st = await reads.stat(file);
      assert.equal(st.size, Buffer.byteLength(text));
      assert.ok(st.isFile());
    });

    it(`${how}: a missing file rejects with ENOENT, never throws synchronously`, async () => {
      const missing = join(dir, 'missing.json');
      let textCall: Promise<string> | undefined;
      assert.doesNotThrow(() => (textCall = reads.text(missing)));
      await assert.rejects(textCall!, { code: 'ENOENT' });
      await assert.rejects(reads.stat(missing), { code: 'ENOENT' });
    });
  }
});

describe('durable files', () => {
  it('writeDurably creates or truncates with the mode given and the bytes given', async () => {
    const file = join(dir, 'durable.json');
    await writeDurably(file, 'a longer first version', 0o600);
    await writeDurably(file, Buffer.from('second'), 0o600);
    assert.equal(await readFile(file, 'utf8'), 'second');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });

  it('fsyncPath syncs a file and a directory and rejects for a missing path; fsyncDir never rejects', async () => {
    await fsyncPath(join(dir, 'durable.json'));
    await fsyncPath(dir);
    await assert.rejects(fsyncPath(join(dir, 'nope')), { code: 'ENOENT' });
    await fsyncDir(join(dir, 'nope'));
  });

  it('writeDurably into a missing directory rejects with ENOENT', async () => {
    await assert.rejects(writeDurably(join(dir, 'no-dir', 'x.json'), 'x', 0o644), { code: 'ENOENT' });
  });
});
