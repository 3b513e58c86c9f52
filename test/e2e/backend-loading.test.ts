/**
 * A server on the file backend never loads the S3 backend's libraries (the AWS SDK and
 * @tus/s3-store cost ~0.2 s and ~25 MiB at every start): they load only for storage.backend = "s3"
 * (app-storage-s3.ts, storage/s3.ts).
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startServer } from '../helpers/server.js';
import { putFile, tusCreate } from '../helpers/ops.js';
import { rawRequest } from '../helpers/http.js';

const PRELOAD = fileURLToPath(new URL('../fixtures/loaded-packages.js', import.meta.url));

describe('backend loading', () => {
  it('the file backend serves PUT, tus and downloads without loading the AWS SDK or @tus/s3-store', async () => {
    const list = join(tmpdir(), `hfs-loaded-${randomBytes(6).toString('hex')}.txt`);
    const server = await startServer({ env: { NODE_OPTIONS: `--import ${PRELOAD}`, HFS_TEST_LOADED_PACKAGES: list } });
    try {
      assert.equal((await putFile(server, 'load/a.txt', 'hello')).status, 201);
      await tusCreate(server, 'load/b.txt', Buffer.from('tus bytes'));
      assert.equal((await rawRequest(server.baseUrl, '/upload/load/a.txt')).status, 200);
      assert.equal(await server.stop(), 0);
      const packages = (await readFile(list, 'utf8')).split('\n');
      assert.ok(packages.includes('koa'), `the preload saw the server's packages: ${packages.join(' ')}`);
      assert.deepEqual(packages.filter((p) => p.startsWith('@aws-sdk/') || p.startsWith('@smithy/') || p === '@tus/s3-store'), []);
    } finally {
      await server.dispose();
      await rm(list, { force: true });
    }
  });
});
