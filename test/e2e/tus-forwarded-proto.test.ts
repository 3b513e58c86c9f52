/**
 * X-Forwarded-Proto never breaks a tus request: @tus/server refuses any value but exactly "http"
 * or "https" with 400, even when it ignores the header. Chained proxies send lists, some send
 * upper case. Without trust_proxy the header is ignored; with it, the first value names the scheme
 * of the upload URLs (http/forwarded-proto.ts).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, rawRequest, slotDir } from '../helpers/http.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const TUS = { 'Tus-Resumable': '1.0.0' };

async function uploadThrough(server: SpawnedServer, proto: string): Promise<string> {
  const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/f.txt`, baseUrl: server.uploadUrl, size: 5 });
  const created = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': '5', 'Upload-Slot': slot.url, 'X-Forwarded-Proto': proto } });
  assert.equal(created.status, 201, `${proto}: ${created.text}`);
  const location = String(created.headers.location);
  const head = await rawRequest(server.baseUrl, pathOf(location), { method: 'HEAD', headers: { ...TUS, 'X-Forwarded-Proto': proto } });
  assert.equal(head.status, 200, proto);
  const patch = await rawRequest(server.baseUrl, pathOf(location), {
    method: 'PATCH',
    headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'X-Forwarded-Proto': proto },
    body: Buffer.from('hello'),
  });
  assert.equal(patch.status, 204, `${proto}: ${patch.text}`);
  return location;
}

it('without trust_proxy any X-Forwarded-Proto is ignored: lists, upper case, empty, nonsense', async () => {
  const server = await startServer();
  try {
    for (const proto of ['https, http', 'HTTPS', '', 'gopher']) assert.match(await uploadThrough(server, proto), /^http:\/\//, proto);
  } finally {
    await server.dispose();
  }
});

it('with trust_proxy the first value names the scheme of the upload URL; anything else falls back to http', async () => {
  const server = await startServer({ config: '[server]\ntrust_proxy = true\n' });
  try {
    assert.match(await uploadThrough(server, 'https, http'), /^https:\/\//);
    assert.match(await uploadThrough(server, 'HTTPS'), /^https:\/\//);
    assert.match(await uploadThrough(server, 'gopher'), /^http:\/\//);
  } finally {
    await server.dispose();
  }
});

it('with trust_proxy every upload URL reads RFC 7239 Forwarded and the first of an X-Forwarded-Host list, the first creation and a repeated one alike', async () => {
  const server = await startServer({ config: '[server]\ntrust_proxy = true\n' });
  try {
    for (const [headers, origin] of [
      [{ Forwarded: 'for=1.2.3.4;host=fw.example;proto=https' }, 'https://fw.example'],
      [{ 'X-Forwarded-Host': 'a.example, b.example', 'X-Forwarded-Proto': 'https' }, 'https://a.example'],
    ] as const) {
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/fw.txt`, baseUrl: server.uploadUrl, size: 5 });
      const create = () => rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': '5', 'Upload-Slot': slot.url, ...headers } });
      const first = await create();
      assert.equal(first.status, 201, first.text);
      assert.match(String(first.headers.location), new RegExp(`^${origin}/files/[A-Za-z0-9_-]+$`));
      const again = await create(); // a client whose 201 was lost: sent to the same upload
      assert.equal(again.status, 200, again.text);
      assert.equal(again.headers.location, first.headers.location);
    }
  } finally {
    await server.dispose();
  }
});
