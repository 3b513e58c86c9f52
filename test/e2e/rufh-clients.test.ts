/**
 * tus-js-client 4 in its IETF modes ('ietf-draft-03' = interop 5, 'ietf-draft-05' = interop 6)
 * against the tus endpoint: careful creation, chunked appends, a connection cut by the fault
 * proxy mid-chunk, resumption through HEAD, and the published bytes identical to the source.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { signSlotUrl } from '../../src/index.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

// tus-js-client 4.3.1 reads `protocol` at run time; its type definitions do not list it.
const ietf = (protocol: 'ietf-draft-03' | 'ietf-draft-05') => ({ protocol }) as unknown as tus.UploadOptions;
const KiB = 1024;
const MiB = 1024 * KiB;

function upload(data: Buffer, options: tus.UploadOptions): Promise<tus.Upload> {
  return new Promise<tus.Upload>((resolve, reject) => {
    const u: tus.Upload = new tus.Upload(data, { retryDelays: [0, 200, 500, 1000], ...options, onSuccess: () => resolve(u), onError: reject });
    u.start();
  });
}

describe('tus-js-client 4 in IETF Resumable Uploads modes', () => {
  let server: SpawnedServer;
  const slotFor = (name: string, size: number) => signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/${name}`, baseUrl: server.uploadUrl, size });

  before(async () => {
    // The test client reaches the server on loopback, which [rufh] counts as a proxy by default.
    server = await startServer({ config: '[tus]\nlock_drain_timeout = "1s"\n[rufh]\nproxy_addresses = []\n' });
  });
  after(async () => {
    await server?.dispose();
  });

  for (const { protocol, interop } of [
    { protocol: 'ietf-draft-05', interop: 6 },
    { protocol: 'ietf-draft-03', interop: 5 },
  ] as const) {
    it(`${protocol} (interop ${interop}): chunked, cut mid-chunk by the proxy, resumed, bytes identical after publishing`, async () => {
      const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port) }).start();
      try {
        const data = randomData(2 * MiB + 11);
        const slot = slotFor(`${protocol}.bin`, data.length);
        const since = server.logs.length;
        proxy.cutAfter(900 * KiB);
        const done = await upload(data, { endpoint: `${proxy.url}/files/`, ...ietf(protocol), headers: { 'Upload-Slot': slot.url }, chunkSize: 512 * KiB });
        assert.ok(proxy.connections.some((c) => c.killed), 'a connection was cut mid-upload');
        assert.match(done.url!, /\/files\/[A-Za-z0-9_-]{32}$/);
        const got = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
        assert.equal(got.status, 200);
        assert.equal(sha256(got.body), sha256(data));
        const mine = server.logs.slice(since).filter((l) => l.msg === 'Request finished');
        assert.ok(mine.some((l) => l.method === 'HEAD' && l.status === 204), 'the client asked for the offset after the cut');
        assert.equal(mine.filter((l) => l.method === 'POST' && l.status === 201).length, 1, 'one creation: resumed, not restarted');
        const created = server.logs.slice(since).find((l) => l.msg === 'Resumable upload resource created');
        assert.equal(created?.interop, interop);
      } finally {
        await proxy.close();
      }
    });
  }

  it('ietf-draft-05 with data during creation, then a new client resuming from the stored URL', async () => {
    const data = randomData(1 * MiB + 5);
    const slot = slotFor('resume-url.bin', data.length);
    let url: string | undefined;
    const first = new tus.Upload(data, {
      endpoint: server.tusUrl,
      ...ietf('ietf-draft-05'),
      headers: { 'Upload-Slot': slot.url },
      chunkSize: 256 * KiB,
      uploadDataDuringCreation: true,
    });
    // Stop after the first chunk: the creation with data has answered, so the URL exists.
    await new Promise<void>((resolve, reject) => {
      first.options.onChunkComplete = (_c, sent) => {
        url = first.url ?? undefined;
        if (sent >= 256 * KiB) void first.abort().then(resolve, reject);
      };
      first.options.onError = reject;
      first.start();
    });
    assert.ok(url);
    const head = await rawRequest(server.baseUrl, pathOf(url), { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': '6' } });
    assert.equal(head.headers['upload-complete'], '?0');
    const offset = Number(head.headers['upload-offset']);
    assert.ok(offset >= 256 * KiB && offset < data.length, `offset ${offset}`);
    await upload(data, { uploadUrl: url, ...ietf('ietf-draft-05'), chunkSize: 256 * KiB });
    assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
  });
});
