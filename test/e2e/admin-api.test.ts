/** Admin API (bearer token) for uploads, /ready, and the admin/metrics side listeners. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, rawRequest, slotDir } from '../helpers/http.js';
import { startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';

const TOKEN = 'admin-token-for-tests-0123456789';
const TUS = { 'Tus-Resumable': '1.0.0' };
const auth = { Authorization: `Bearer ${TOKEN}` };

describe('admin API on the main listener', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer({ env: { HFS_ADMIN_TOKEN: TOKEN } });
  });
  after(async () => server.dispose());

  const createPartial = async (sent: number) => {
    const path = `${slotDir()}/partial.bin`;
    const slot = signSlotUrl({ secret: TEST_SECRET, path, baseUrl: server.uploadUrl, size: 1000 });
    const res = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': '1000', 'Upload-Slot': slot.url } });
    const location = pathOf(String(res.headers.location));
    if (sent > 0) {
      await rawRequest(server.baseUrl, location, { method: 'PATCH', headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body: Buffer.alloc(sent) });
    }
    return { id: location.split('/').pop()!, location, path };
  };

  it('401 without or with a wrong token, revealing nothing', async () => {
    for (const headers of [{} as Record<string, string>, { Authorization: 'Bearer wrong' }, { Authorization: TOKEN }, { Authorization: 'Basic abc' }]) {
      const res = await rawRequest(server.baseUrl, '/admin/uploads', { headers });
      assert.equal(res.status, 401);
      assert.equal(res.json().code, 'ERR_UNAUTHORIZED');
      assert.match(String(res.headers['www-authenticate']), /^Bearer/);
    }
    assert.equal((await rawRequest(server.baseUrl, '/admin/no-such-thing')).status, 401, 'unknown admin paths are not revealed either');
  });

  it('lists, shows and terminates incomplete uploads', async () => {
    const u = await createPartial(300);
    const list = await rawRequest(server.baseUrl, '/admin/uploads', { headers: auth });
    assert.equal(list.status, 200);
    const entry = list.json<{ uploads: Array<Record<string, unknown>> }>().uploads.find((x) => x.id === u.id);
    assert.ok(entry, 'listed');
    assert.equal(entry.slotPath, u.path);
    assert.equal(entry.offset, 300);
    assert.equal(entry.size, 1000);
    assert.equal(typeof entry.ageSeconds, 'number');
    assert.ok(entry.lastActivityAt);
    const one = await rawRequest(server.baseUrl, `/admin/uploads/${u.id}`, { headers: auth });
    assert.equal(one.json().offset, 300);
    assert.equal(typeof one.json().ageSeconds, 'number', 'shown with its age, as listed');
    const del = await rawRequest(server.baseUrl, `/admin/uploads/${u.id}`, { method: 'DELETE', headers: auth });
    assert.equal(del.status, 200, del.text);
    assert.equal((await rawRequest(server.baseUrl, u.location, { method: 'HEAD', headers: TUS })).status, 404);
    assert.equal((await rawRequest(server.baseUrl, `/admin/uploads/${u.id}`, { headers: auth })).status, 404);
  });

  it('bad input: unknown id 404, path tricks 404/400, wrong method 405, finished upload 409', async () => {
    assert.equal((await rawRequest(server.baseUrl, '/admin/uploads/does-not-exist', { headers: auth })).status, 404);
    assert.equal((await rawRequest(server.baseUrl, '/admin/uploads/..%2F..%2Fsecret', { headers: auth })).status, 404);
    assert.equal((await rawRequest(server.baseUrl, '/admin/uploads/%zz', { headers: auth })).status, 400);
    const wrong = await rawRequest(server.baseUrl, '/admin/uploads', { method: 'POST', headers: auth });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.allow, 'GET');
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/done.bin`, baseUrl: server.uploadUrl, size: 2 });
    const done = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': '2', 'Upload-Slot': slot.url, 'Content-Type': 'application/offset+octet-stream' }, body: 'ok' });
    const id = String(done.headers.location).split('/').pop()!;
    const del = await rawRequest(server.baseUrl, `/admin/uploads/${id}`, { method: 'DELETE', headers: auth });
    assert.equal(del.status, 409);
    assert.equal(del.json().code, 'ERR_UPLOAD_FINISHED');
  });

  it('/ready names each check', async () => {
    const res = await rawRequest(server.baseUrl, '/ready');
    assert.equal(res.status, 200);
    const body = res.json<{ ready: boolean; checks: Array<{ name: string; ok: boolean }> }>();
    assert.equal(body.ready, true);
    assert.ok(body.checks.some((c) => c.name === 'data_dir_writable' && c.ok));
  });
});

it('no admin token configured: the admin API does not exist', async () => {
  const server = await startServer();
  try {
    assert.equal((await rawRequest(server.baseUrl, '/admin/uploads', { headers: auth })).status, 404);
  } finally {
    await server.dispose();
  }
});

it('admin API and metrics on their own listeners', async () => {
  const server = await startServer({ env: { HFS_ADMIN_TOKEN: TOKEN }, config: '[admin]\nlisten = "127.0.0.1:0"\n[metrics]\nlisten = "127.0.0.1:0"\n' });
  try {
    const addr = async (msg: string) => String((await server.waitForLog((l: LogLine) => l.msg === msg)).address);
    const adminUrl = await addr('Admin API listening');
    const metricsUrl = await addr('Metrics listening');
    assert.equal((await rawRequest(adminUrl, '/uploads', { headers: auth })).status, 200);
    assert.equal((await rawRequest(adminUrl, '/uploads')).status, 401);
    assert.equal((await rawRequest(server.baseUrl, '/admin/uploads', { headers: auth })).status, 404, 'not on the main listener');
    assert.match((await rawRequest(metricsUrl, '/metrics')).text, /hmac_http_requests_total/);
    assert.equal((await rawRequest(server.baseUrl, '/metrics')).status, 404, 'not on the main listener');
  } finally {
    await server.dispose();
  }
});

describe('metrics on the main listener answer scrapers on this host only', () => {
  it('a loopback scraper reads them; a request that came through a proxy gets 403 JSON naming the setting', async () => {
    const server = await startServer();
    try {
      const local = await rawRequest(server.baseUrl, '/metrics');
      assert.equal(local.status, 200);
      assert.match(local.text, /hmac_dedup_hits_total/);
      for (const header of ['X-Forwarded-For', 'Forwarded', 'X-Real-IP', 'Via']) {
        const proxied = await rawRequest(server.baseUrl, '/metrics', { headers: { [header]: header === 'Forwarded' ? 'for=203.0.113.9' : '203.0.113.9' } });
        assert.equal(proxied.status, 403, header);
        assert.match(String(proxied.headers['content-type']), /application\/json/);
        assert.equal((JSON.parse(proxied.text) as { code: string }).code, 'ERR_METRICS_LOCAL_ONLY');
        assert.doesNotMatch(proxied.text, /hmac_/);
      }
    } finally {
      await server.dispose();
    }
  });

  it('[metrics] public = true serves them through a proxy too', async () => {
    const server = await startServer({ config: '[metrics]\npublic = true\n' });
    try {
      const proxied = await rawRequest(server.baseUrl, '/metrics', { headers: { 'X-Forwarded-For': '203.0.113.9' } });
      assert.equal(proxied.status, 200);
      assert.match(proxied.text, /hmac_dedup_hits_total/);
    } finally {
      await server.dispose();
    }
  });
});
