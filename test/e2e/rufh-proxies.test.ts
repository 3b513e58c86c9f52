/**
 * IETF Resumable Uploads behind real reverse proxies (nginx, Caddy, HAProxy from Debian): what
 * each does with our `104 Upload Resumption Supported`, and that with the server's defaults no
 * client behind any of them breaks.
 *
 * - Defaults (loopback peers count as proxies, none passes 1xx): no 104 through any of them;
 *   the upgraded PUT gets its 201 with Location, careful creation works, a repeated PUT after
 *   a cut starts over and completes.
 * - `proxies_passing_1xx = ["127.0.0.1"]`: Caddy and HAProxy forward the 104 at once and a cut
 *   upload resumes through them; nginx (HTTP/1.1 upstream) takes the 104 for the final answer,
 *   holds the client until its read timeout and never delivers the 201 (desynchronised); with
 *   nginx's default HTTP/1.0 upstream no 104 is sent at all (RFC 9110), so it stays correct.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { NGINX_READ_TIMEOUT_S, startReverseProxy, type ProxyKind, type ReverseProxy } from '../helpers/reverse-proxies.js';
import { rufhRequest } from '../helpers/rufh-client.js';
import { startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';

const KiB = 1024;
const PARTIAL = 'application/partial-upload';
const V8 = { 'Upload-Draft-Interop-Version': '8' };
const SERVER_CONFIG = '[tus]\nlock_drain_timeout = "1s"\n';

const slotFor = (server: SpawnedServer, name: string, size: number) => signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/${name}`, baseUrl: server.uploadUrl, size });
const upgradeHeaders = (size: number) => ({ ...V8, 'Upload-Complete': '?1', 'Upload-Length': String(size), 'Content-Length': String(size) });
const pathIn = (location: string) => new URL(location).pathname;

/** The next log line matching `pred` that was not there before (upload ids differ per case). */
async function nextLog(server: SpawnedServer, pred: (l: LogLine) => boolean): Promise<LogLine> {
  const seen = new Set(server.logs.filter(pred));
  return server.waitForLog((l) => pred(l) && !seen.has(l), 20_000);
}

async function published(proxy: ReverseProxy, slotUrl: string, data: Buffer): Promise<void> {
  const got = await rawRequest(proxy.baseUrl, new URL(slotUrl).pathname);
  assert.equal(got.status, 200);
  assert.equal(sha256(got.body), sha256(data));
}

describe('RUFH behind nginx, Caddy and HAProxy with the defaults: no 104, nothing breaks', () => {
  let server: SpawnedServer;
  const proxies = new Map<ProxyKind, ReverseProxy>();

  before(async () => {
    server = await startServer({ config: SERVER_CONFIG });
    for (const kind of ['nginx', 'caddy', 'haproxy'] as const) proxies.set(kind, await startReverseProxy(kind, server.baseUrl));
  });
  after(async () => {
    for (const p of proxies.values()) await p.stop();
    await server?.dispose();
  });

  for (const kind of ['nginx', 'caddy', 'haproxy'] as const) {
    it(`${kind}: an upgraded PUT sees no 1xx and gets 201 with the resource's Location; the file is published`, async () => {
      const proxy = proxies.get(kind)!;
      const data = randomData(200 * KiB + 3);
      const slot = slotFor(server, `${kind}.bin`, data.length);
      const withheld = nextLog(server, (l) => l.msg === 'Upload resumption not offered (no 104 to this client)');
      const res = await rufhRequest(proxy.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: upgradeHeaders(data.length), body: data });
      assert.deepEqual(res.interim, []);
      assert.equal(res.final?.status, 201, res.final?.body);
      assert.match(res.final!.headers.location!, /\/files\/[A-Za-z0-9_-]{32}$/);
      assert.equal(res.final!.headers['upload-complete'], '?1');
      assert.equal((await withheld).reason, 'proxy');
      await published(proxy, slot.url, data);
    });

    it(`${kind}: careful creation (POST, PATCH, HEAD, PATCH) works through it`, async () => {
      const proxy = proxies.get(kind)!;
      const data = randomData(120 * KiB);
      const slot = slotFor(server, `careful-${kind}.bin`, data.length);
      const v6 = { 'Upload-Draft-Interop-Version': '6' };
      const created = await rufhRequest(proxy.baseUrl, { method: 'POST', target: '/files/', headers: { ...v6, 'Upload-Complete': '?0', 'Upload-Length': String(data.length), 'Upload-Slot': slot.url } });
      assert.equal(created.final?.status, 201, created.final?.body);
      assert.deepEqual(created.interim, []);
      const path = pathIn(created.final!.headers.location!);
      const half = 50 * KiB;
      const first = await rufhRequest(proxy.baseUrl, { method: 'PATCH', target: path, headers: { ...v6, 'Upload-Complete': '?0', 'Upload-Offset': '0', 'Content-Type': PARTIAL }, body: data.subarray(0, half) });
      assert.equal(first.final?.status, 204);
      assert.equal(first.final!.headers['upload-offset'], String(half));
      const head = await rufhRequest(proxy.baseUrl, { method: 'HEAD', target: path, headers: v6 });
      assert.equal(head.final?.status, 204);
      assert.equal(head.final!.headers['upload-offset'], String(half));
      const rest = await rufhRequest(proxy.baseUrl, { method: 'PATCH', target: path, headers: { ...v6, 'Upload-Complete': '?1', 'Upload-Offset': String(half), 'Content-Type': PARTIAL }, body: data.subarray(half) });
      assert.equal(rest.final?.status, 201, rest.final?.body);
      await published(proxy, slot.url, data);
    });

    it(`${kind}: a cut upgraded PUT, then the same PUT again: it starts over and completes`, async () => {
      const proxy = proxies.get(kind)!;
      const data = randomData(300 * KiB);
      const slot = slotFor(server, `again-${kind}.bin`, data.length);
      // The client cuts once the resource exists (the proxy forwarded the request), then the cut reaches the server.
      const created = nextLog(server, (l) => l.msg === 'Resumable upload resource created');
      const first = await rufhRequest(proxy.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: upgradeHeaders(data.length), body: data, cutAfter: 100 * KiB, cut: 'half-open', waitFor104: false });
      const id = (await created).uploadId;
      const ended = nextLog(server, (l) => l.msg === 'Resumable upload body ended early; received bytes kept' && l.uploadId === id);
      first.socket?.destroy();
      await ended;
      const replaced = nextLog(server, (l) => l.msg === 'Unfinished upload of the slot replaced: its client cannot be sent to resume it');
      const again = await rufhRequest(proxy.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: upgradeHeaders(data.length), body: data });
      assert.deepEqual(again.interim, []);
      assert.equal(again.final?.status, 201, again.final?.body);
      assert.equal((await replaced).reason, 'proxy');
      await published(proxy, slot.url, data);
    });
  }
});

describe('RUFH behind proxies declared to pass 1xx (proxies_passing_1xx): Caddy and HAProxy forward the 104, nginx does not', () => {
  let server: SpawnedServer;
  const proxies = new Map<ProxyKind, ReverseProxy>();

  before(async () => {
    server = await startServer({ config: `${SERVER_CONFIG}[rufh]\nproxies_passing_1xx = ["127.0.0.1"]\n` });
    for (const kind of ['nginx', 'nginx-http10', 'caddy', 'haproxy'] as const) proxies.set(kind, await startReverseProxy(kind, server.baseUrl));
  });
  after(async () => {
    for (const p of proxies.values()) await p.stop();
    await server?.dispose();
  });

  for (const [kind, cut] of [['caddy', 'close'], ['haproxy', 'close'], ['caddy', 'half-open'], ['haproxy', 'half-open']] as const) {
    it(`${kind}: the 104 is forwarded during the body; cut (${cut}), HEAD and PATCH through it resume the upload`, async () => {
      const proxy = proxies.get(kind)!;
      const data = randomData(600 * KiB + 11);
      const slot = slotFor(server, `resume-${kind}-${cut}.jpg`, data.length);
      // The cut waits for the 104: it arrives while the body is still being sent.
      const first = await rufhRequest(proxy.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: upgradeHeaders(data.length), body: data, cutAfter: 200 * KiB, cut });
      const interim = first.interim.filter((h) => h.status === 104);
      assert.equal(interim.length, 1);
      const location = interim[0]!.headers.location!;
      assert.equal(new URL(location).origin, proxy.baseUrl, 'the Location names the proxy (Host passed on)');
      assert.match(interim[0]!.headers['upload-limit']!, new RegExp(`max-size=${data.length}`));

      const head = await rufhRequest(proxy.baseUrl, { method: 'HEAD', target: pathIn(location), headers: V8 });
      first.socket?.destroy();
      assert.equal(head.final?.status, 204);
      const offset = Number(head.final!.headers['upload-offset']);
      assert.ok(offset > 0 && offset <= 200 * KiB, `offset ${offset}`);
      const patch = await rufhRequest(proxy.baseUrl, {
        method: 'PATCH',
        target: pathIn(location),
        headers: { ...V8, 'Upload-Complete': '?1', 'Upload-Offset': String(offset), 'Content-Type': PARTIAL },
        body: data.subarray(offset),
      });
      assert.equal(patch.final?.status, 201, patch.final?.body);
      assert.equal(patch.final!.headers['upload-offset'], String(data.length));
      await published(proxy, slot.url, data);
    });
  }

  for (const kind of ['caddy', 'haproxy'] as const) {
    it(`${kind}: a repeated PUT for the slot is not sent to the old resource (the proxy would answer 502) but starts over`, async () => {
      const proxy = proxies.get(kind)!;
      const data = randomData(150 * KiB);
      const slot = slotFor(server, `again-${kind}.bin`, data.length);
      const first = await rufhRequest(proxy.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: upgradeHeaders(data.length), body: data, cutAfter: 40 * KiB });
      const oldLocation = first.interim.find((h) => h.status === 104)!.headers.location!;
      const again = await rufhRequest(proxy.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: upgradeHeaders(data.length), body: data });
      const interim = again.interim.filter((h) => h.status === 104);
      assert.equal(interim.length, 1);
      assert.notEqual(interim[0]!.headers.location, oldLocation);
      assert.equal(again.final?.status, 201, again.final?.body);
      await published(proxy, slot.url, data);
    });
  }

  it('nginx, HTTP/1.1 upstream: the 104 desynchronises the request (relayed as the final head after the read timeout, the 201 lost)', async () => {
    const proxy = proxies.get('nginx')!;
    const data = randomData(20 * KiB);
    const slot = slotFor(server, 'nginx-broken.bin', data.length);
    const answered = nextLog(server, (l) => l.msg === 'Request finished' && l.method === 'PUT' && typeof l.path === 'string' && slot.url.includes(l.path));
    const res = await rufhRequest(proxy.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: upgradeHeaders(data.length), body: data, timeoutMs: (NGINX_READ_TIMEOUT_S + 30) * 1000 });
    assert.equal((await answered).status, 201, 'the server stored the upload and answered 201');
    // nginx took the 104 for the final response head (it adds its own Server and Connection:
    // keep-alive), then waited for a body that never ends until its read timeout, and closed.
    assert.deepEqual(res.interim.map((h) => h.status), [104]);
    assert.match(res.interim[0]!.headers.server ?? '', /^nginx/);
    assert.equal(res.final, null, 'the 201 never reaches the client');
    await proxy.waitForOutput(/upstream timed out .* while reading upstream/);
  });

  it("nginx, its default HTTP/1.0 upstream: no 104 is sent (RFC 9110), the PUT gets its 201", async () => {
    const proxy = proxies.get('nginx-http10')!;
    const data = randomData(20 * KiB);
    const slot = slotFor(server, 'nginx-http10.bin', data.length);
    const withheld = nextLog(server, (l) => l.msg === 'Upload resumption not offered (no 104 to this client)');
    const res = await rufhRequest(proxy.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: upgradeHeaders(data.length), body: data });
    assert.deepEqual(res.interim, []);
    assert.equal(res.final?.status, 201, res.final?.body);
    assert.equal((await withheld).reason, 'http/1.0');
    await published(proxy, slot.url, data);
  });
});
