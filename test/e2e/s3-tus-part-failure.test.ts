/**
 * A tus PATCH whose part upload fails on S3 (here: the bucket quota, RadosGW 403 QuotaExceeded):
 * the upload keeps every byte an earlier PATCH confirmed, no later bytes take their place, and a
 * resume once there is room publishes the file byte for byte (tus-js-client).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { storageBackends } from '../helpers/backends.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const MiB = 1024 * 1024;
const TUS = { 'Tus-Resumable': '1.0.0' };

for (const backend of storageBackends().filter((b) => b.name === 's3')) describe('a tus part refused by S3 mid-upload (bucket quota, part size 5 MiB)', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer({ config: await backend.config() });
  });
  after(async () => server.dispose());

  it('HEAD keeps the confirmed offset after the refusal (507, or 503); the resume once the quota is raised publishes the same bytes', async () => {
    await backend.limitBucket(server, 20 * MiB);
    const data = randomData(30 * MiB + 1);
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/quota.bin`, baseUrl: server.uploadUrl, size: data.length });
    const created = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': data.length, 'Upload-Slot': slot.url } });
    assert.equal(created.status, 201, created.text);
    const location = pathOf(String(created.headers.location));
    const patch = (from: number, to: number) =>
      rawRequest(server.baseUrl, location, {
        method: 'PATCH',
        headers: { ...TUS, 'Upload-Offset': from, 'Content-Type': 'application/offset+octet-stream' },
        body: data.subarray(from, to),
      });
    const head = async () => Number((await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: TUS })).headers['upload-offset']);

    // Three parts sent, 2,271,360 bytes kept as the trailing `.part`.
    const first = await patch(0, 18_000_000);
    assert.equal(first.status, 204, first.text);
    assert.equal(first.headers['upload-offset'], '18000000');
    // The next part (that tail + new bytes) goes over the quota; the bytes after it fit in a `.part`.
    const refused = await patch(18_000_000, 21_000_000);
    // RadosGW answers 403 QuotaExceeded (507 here), or under load may reset the part's connection
    // before its answer is read (503 here, storage unavailable): either way the client retries.
    const logs = () => JSON.stringify(server.logs.filter((l) => (l.level ?? 30) >= 40).slice(-5));
    assert.ok([503, 507].includes(refused.status), `${refused.status} ${refused.text} ${logs()}`);
    assert.equal(await head(), 18_000_000, 'the offset a 204 confirmed');

    await backend.limitBucket(server, 256 * MiB);
    await new Promise<void>((resolve, reject) => {
      new tus.Upload(data, { uploadUrl: `${server.baseUrl}${location}`, retryDelays: [], onSuccess: () => resolve(), onError: reject }).start();
    });
    await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === location.split('/').pop());
    assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
  });
});
