/**
 * Downloads from S3 (issue 12.4): streamed through the server with Range and the validators, and
 * with `[storage.s3] presigned_downloads` a 302 to a short-lived presigned GET that RadosGW serves
 * with the type and disposition this server chose. On the S3 backend only (helpers/backends.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { storageBackends } from '../helpers/backends.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

for (const backend of storageBackends().filter((b) => b.name === 's3')) {
  describe('downloads from S3, streamed', () => {
    let server: SpawnedServer;
    before(async () => {
      server = await startServer({ config: await backend.config() });
    });
    after(async () => server.dispose());

    it('Range, ETag, If-None-Match and If-Range work on a file held in the bucket', async () => {
      const data = randomData(6 * 1024 * 1024 + 3);
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/clip.mp4`, baseUrl: server.uploadUrl, size: data.length });
      assert.equal((await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body: data, headers: { 'Content-Type': 'video/mp4' } })).status, 201);
      const full = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
      assert.equal(full.status, 200);
      assert.equal(sha256(full.body), sha256(data));
      const etag = String(full.headers.etag);
      const part = await rawRequest(server.baseUrl, pathOf(slot.getUrl), { headers: { Range: 'bytes=5000000-5000099' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers['content-range'], `bytes 5000000-5000099/${data.length}`);
      assert.ok(part.body.equals(data.subarray(5_000_000, 5_000_100)));
      assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl), { headers: { 'If-None-Match': etag } })).status, 304);
      const stale = await rawRequest(server.baseUrl, pathOf(slot.getUrl), { headers: { Range: 'bytes=0-9', 'If-Range': '"other"' } });
      assert.equal(stale.status, 200, 'If-Range with another validator: the whole file');
    });
  });

  describe('downloads from S3, presigned (presigned_downloads = true)', () => {
    let server: SpawnedServer;
    before(async () => {
      const config = (await backend.config()).replace('[storage.s3]\n', '[storage.s3]\npresigned_downloads = true\npresigned_ttl = "2m"\n');
      server = await startServer({ config });
    });
    after(async () => server.dispose());

    it('GET answers 302 to a presigned URL that serves the bytes with the chosen type; HEAD and 304 stay local', async () => {
      const data = randomData(70_000);
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/page.html`, baseUrl: server.uploadUrl, size: data.length });
      assert.equal((await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body: data, headers: { 'Content-Type': 'text/html' } })).status, 201);
      const get = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
      assert.equal(get.status, 302);
      assert.equal(get.headers['cache-control'], 'no-store');
      const location = new URL(String(get.headers.location));
      assert.match(location.search, /X-Amz-Expires=120/);
      const fromS3 = await fetch(location);
      assert.equal(fromS3.status, 200);
      assert.equal(sha256(Buffer.from(await fromS3.arrayBuffer())), sha256(data));
      // HTML is never served inline: the presigned answer carries the same type and disposition.
      assert.equal(fromS3.headers.get('content-type'), 'application/octet-stream');
      assert.match(String(fromS3.headers.get('content-disposition')), /^attachment/);
      const ranged = await fetch(location, { headers: { Range: 'bytes=10-19' } });
      assert.equal(ranged.status, 206);
      assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(10, 20)));
      const head = await rawRequest(server.baseUrl, pathOf(slot.getUrl), { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(Number(head.headers['content-length']), data.length);
      assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl), { headers: { 'If-None-Match': String(head.headers.etag) } })).status, 304);
      assert.equal((await rawRequest(server.baseUrl, `/upload/${slotDir()}/missing.bin`)).status, 404, 'no redirect for what is not published');
    });
  });
}
