/**
 * TLS on the listener itself ([server] tls_certificate / tls_key) with a self-signed certificate
 * made by openssl: HTTPS with HTTP/1.1, so a phone reaches the server with no proxy in between
 * and the RUFH 104 reaches it (upgraded PUT, cut, HEAD, PATCH, GET over TLS); tus Locations
 * say https; a missing key file or a key without a certificate refuses the start naming the key.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { rufhRequest } from '../helpers/rufh-client.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';
import { missingBinaryError } from '../helpers/service.js';

const KiB = 1024;
const PARTIAL = 'application/partial-upload';

async function selfSigned(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'server.crt');
  const key = join(dir, 'server.key');
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' ? missingBinaryError('openssl', 'openssl') : err;
  });
  return { cert, key };
}

/** One HTTPS request verified against `ca`; the status, headers and body. */
function httpsGet(url: string, ca: Buffer, options: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    // Offers h2 first, as browsers and URLSession do: the server picks http/1.1.
    const req = httpsRequest(url, { ca, method: options.method ?? 'GET', headers: options.headers, agent: false, ALPNProtocols: ['h2', 'http/1.1'] } as RequestOptions, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), alpn: (res.socket as { alpnProtocol?: string | false }).alpnProtocol ?? null }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('TLS on the listener ([server] tls_certificate, tls_key)', () => {
  let dir: string;
  let ca: Buffer;
  let server: SpawnedServer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-tls-'));
    const { cert, key } = await selfSigned(dir);
    ca = await readFile(cert);
    // The test client is on loopback, which [rufh] counts as a proxy by default.
    server = await startServer({ config: `[server]\ntls_certificate = "${cert}"\ntls_key = "${key}"\n\n[tus]\nlock_drain_timeout = "1s"\n\n[rufh]\nproxy_addresses = []\n` });
  });
  after(async () => {
    await server?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('listens with HTTPS (a client offering h2 gets HTTP/1.1 by ALPN) and says so in its URLs', async () => {
    assert.match(server.baseUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await httpsGet(`${server.baseUrl}/health`, ca, { headers: { Connection: 'close' } });
    assert.equal(res.status, 200);
    assert.equal(res.alpn, 'http/1.1');
  });

  it('an upgraded slot PUT over TLS gets its 104 with an https Location; cut, HEAD, PATCH, GET byte-identical', async () => {
    const data = randomData(400 * KiB + 5);
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/phone.jpg`, baseUrl: server.uploadUrl, size: data.length });
    const v = { 'Upload-Draft-Interop-Version': '8' };
    const first = await rufhRequest(server.baseUrl, {
      method: 'PUT',
      target: pathOf(slot.url),
      headers: { ...v, 'Upload-Complete': '?1', 'Upload-Length': String(data.length), 'Content-Length': String(data.length) },
      body: data,
      cutAfter: 100 * KiB,
      ca,
    });
    const location = first.interim.find((h) => h.status === 104)?.headers.location;
    assert.match(location ?? '', /^https:\/\/127\.0\.0\.1:\d+\/files\/[A-Za-z0-9_-]{32}$/);
    const path = new URL(location!).pathname;
    const head = await rufhRequest(server.baseUrl, { method: 'HEAD', target: path, headers: v, ca });
    assert.equal(head.final?.status, 204);
    const offset = Number(head.final!.headers['upload-offset']);
    assert.ok(offset > 0 && offset <= 100 * KiB, `offset ${offset}`);
    const patch = await rufhRequest(server.baseUrl, { method: 'PATCH', target: path, headers: { ...v, 'Upload-Complete': '?1', 'Upload-Offset': String(offset), 'Content-Type': PARTIAL }, body: data.subarray(offset), ca });
    assert.equal(patch.final?.status, 201, patch.final?.body);
    const got = await httpsGet(`${server.baseUrl}${new URL(slot.url).pathname}`, ca);
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), sha256(data));
  });

  it('a tus creation over TLS answers an https Location', async () => {
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/t.bin`, baseUrl: server.uploadUrl, size: 10 });
    const res = await httpsGet(`${server.tusUrl}`, ca, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '10', 'Upload-Slot': slot.url } });
    assert.equal(res.status, 201);
    assert.match(String(res.headers.location), /^https:\/\/127\.0\.0\.1:\d+\/files\/[A-Za-z0-9_-]{32}$/);
  });

  it('a certificate file that cannot be read refuses the start naming the key', async () => {
    await assert.rejects(
      startServer({ config: `[server]\ntls_certificate = "${join(dir, 'missing.crt')}"\ntls_key = "${join(dir, 'server.key')}"\n` }),
      /server\.tls_certificate: cannot read/,
    );
  });
});

describe('connection_pool_size over TLS', () => {
  let dir: string;
  let ca: Buffer;
  let server: SpawnedServer;
  let metricsUrl = '';
  const open: TLSSocket[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-tls-pool-'));
    const { cert, key } = await selfSigned(dir);
    ca = await readFile(cert);
    server = await startServer({ config: `[server]\ntls_certificate = "${cert}"\ntls_key = "${key}"\nconnection_pool_size = 2\n[metrics]\nlisten = "127.0.0.1:0"\n` });
    metricsUrl = String((await server.waitForLog((l) => l.msg === 'Metrics listening')).address);
  });
  after(async () => {
    for (const s of open) s.destroy();
    await server?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  const openConnections = async () => Number(/^hmac_open_connections (\d+)$/m.exec((await rawRequest(metricsUrl, '/metrics')).text)?.[1]);

  it('connections answered and closed are forgotten: with every open one busy, a new one is refused (closed ones were taken for idle and let it in)', async () => {
    const url = new URL(server.baseUrl);
    for (let i = 0; i < 4; i++) assert.equal((await httpsGet(`${server.baseUrl}/health`, ca, { headers: { Connection: 'close' } })).status, 200);
    const deadline = Date.now() + 10_000;
    while ((await openConnections()) !== 0) {
      assert.ok(Date.now() < deadline, 'the answered connections closed');
      await new Promise((r) => setTimeout(r, 20));
    }
    // Two uploads in flight fill the pool.
    for (let i = 0; i < 2; i++) {
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/busy.bin`, baseUrl: server.uploadUrl, size: 1000 });
      const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca, servername: 'localhost' });
      socket.on('error', () => {});
      socket.once('secureConnect', () => socket.write(`PUT ${pathOf(slot.url)} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: 1000\r\n\r\n0123456789`));
      open.push(socket);
    }
    const streaming = async () => Number(/^hmac_active_uploads (\d+)$/m.exec((await rawRequest(metricsUrl, '/metrics')).text)?.[1]);
    while ((await streaming()) !== 2) {
      assert.ok(Date.now() < deadline, 'the uploads are in flight');
      await new Promise((r) => setTimeout(r, 20));
    }
    const refused = await httpsGet(`${server.baseUrl}/health`, ca).then((r) => r.status, (err: NodeJS.ErrnoException) => err.code ?? 'error');
    assert.notEqual(refused, 200, 'the pool is full of busy connections');
    const text = (await rawRequest(metricsUrl, '/metrics')).text;
    assert.match(text, /^hmac_connections_refused_total\{limit="pool"\} 1$/m);
    assert.match(text, /^hmac_idle_connections_closed_total 0$/m);
  });
});
