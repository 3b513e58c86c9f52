/** The file storage implementations against the storage conformance suites. */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { randomBytes } from 'node:crypto';
import { ContentAddressedStore, FilePublishedStore, TusFileStore, fileSource, inlineReads, pooledReads } from '../../src/storage/index.js';
import { describePublishedStore } from '../conformance/published-store.suite.js';
import { describeTusStore } from '../conformance/tus-store.suite.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'hfs-storage-file-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

// Both ways of reading records and stats (metadata-reads.ts): inline single-node, pooled in cluster mode.
for (const [how, reads] of [['pooled', pooledReads], ['inline', inlineReads]] as const) {
  describePublishedStore(`FilePublishedStore (${how} metadata reads)`, {
    largeBytes: 8 * 1024 * 1024,
    async open() {
      const dir = await mkdtemp(join(root, 'published-'));
      const store = new FilePublishedStore(dir, undefined, { reads });
      await store.init();
      const content = new ContentAddressedStore(join(dir, 'cas'));
      await content.init();
      return {
        store,
        content,
        async makeSource(bytes) {
          const path = join(dir, `source-${randomBytes(6).toString('hex')}`);
          await writeFile(path, bytes);
          return fileSource(path, bytes.length);
        },
      };
    },
  });

  const tusDir = () => join(root, `tus-${how}`);
  describeTusStore(`TusFileStore (${how} metadata reads)`, {
    async open({ expirationMs }) {
      return new TusFileStore(tusDir(), expirationMs, { reads });
    },
    async residue(id) {
      return (await readdir(tusDir())).filter((n) => n === id || n.startsWith(`${id}.`));
    },
  });
}
