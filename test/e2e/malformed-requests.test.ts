/**
 * Issues 9.10 and 10.6: no malformed request gets a 5xx. A seeded generator (deterministic: the
 * same requests on every run) sends 600 requests over raw sockets to every route: tus
 * POST/PATCH/HEAD/DELETE/OPTIONS/GET, PUT, GET/HEAD downloads, /health, /ready, /metrics,
 * /admin/*, the upload page, IETF Resumable Uploads on the same routes; absolute-form targets,
 * bad authorities, invalid percent-encoding, bad tus headers, broken framing. Every answer is below 500, every 4xx carries a JSON body with
 * a code (HEAD: no body), every request leaves exactly one log line, and the server still serves.
 * The reviewed cases are asserted one by one first.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, slotDir } from '../helpers/http.js';
import { ADMIN_TOKEN, putFile, tusCreate } from '../helpers/ops.js';
import { sendRaw, type RawExchange } from '../helpers/raw-http.js';
import { startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';
import { withTimeout } from '../helpers/service.js';

const SEED = 0x9e3779b9;
const REQUESTS = 600;
const PARALLEL = 6;

/** mulberry32: a small seeded PRNG, so every run sends the same requests. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Fixtures {
  port: number;
  uploadUrl: string;
  unfinishedId: string;
  finishedId: string;
  publishedPath: string;
}

interface Spec {
  label: string;
  method: string;
  bytes: Buffer;
}

/** Builds request `n` of the battery from the generator. */
function generator(f: Fixtures) {
  const random = prng(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const chance = (p: number) => random() < p;
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join('');

  const tusTargets = () => [
    '/files/',
    '/files',
    `/files/${f.unfinishedId}`,
    `/files/${f.finishedId}`,
    `/files/${hex(32)}`,
    '/files/%ZZ',
    '/files/%E0%A4%A',
    '/files/%c0%ae%c0%ae%c0%af',
    '/files/..%2f..%2fetc%2fpasswd',
    '/files/a/b',
    `/files/${'x'.repeat(300)}`,
    '/files/%00',
    `/files/${f.unfinishedId}?x=%ZZ`,
  ];
  const uploadTargets = () => [
    `/upload/${f.publishedPath}`,
    `/upload/${f.publishedPath}?v=${hex(64)}`,
    '/upload/',
    '/upload/%ZZ',
    '/upload/a/%2e%2e/b',
    '/upload/a/../../etc/passwd',
    `/upload/${'d/'.repeat(40)}x`,
    `/upload/${hex(8)}/new.bin?v=${hex(64)}`,
    `/upload/${hex(8)}/n.bin?v2=zz&expires=abc`,
    `/upload/${hex(8)}/n.bin?v3=${hex(64)}&expires=99999999999999999999`,
    `/upload/${hex(8)}/n.bin?token=${hex(10)}&v=`,
    `/upload/${hex(8)}/%E2%82%AC%20x.txt`,
  ];
  const otherTargets = () => [
    '/health',
    '/ready',
    '/metrics',
    '/admin',
    '/admin/',
    '/admin/uploads',
    '/admin/uploads/%ZZ',
    `/admin/uploads/${f.unfinishedId}`,
    '/admin/queue',
    '/admin/queue/jobs?state=nope&limit=-1',
    '/admin/queue/jobs/%E0',
    '/admin/dead-letters?limit=abc',
    '/admin/status/data',
    '/admin/workers',
    '/',
    '/page-assets/app.js',
    '/page-assets/../package.json',
    '/page-assets/config.json',
    '/%ZZ',
    '//',
    '/?x=%',
    '*',
  ];
  const absolute = (target: string) =>
    pick([
      `http://127.0.0.1:${f.port}${target}`,
      `http://x:99999${target}`,
      `http://[::1${target}`,
      `https://[zz]:1${target}`,
      `ftp://h${target}`,
      `http://${target}`,
      `http://user@h${target}`,
      `HTTP://LOCALHOST${target}`,
    ]);
  const slotUrl = (size: number) =>
    chance(0.5)
      ? signSlotUrl({ secret: TEST_SECRET, path: `${hex(8)}/s.bin`, baseUrl: f.uploadUrl, size }).url
      : pick(['garbage', '/upload/%ZZ?v=1', 'http://[::1/upload/x?v=1', `${f.uploadUrl}${hex(4)}/q.bin`, '']);
  const headerPool = (): Array<[string, () => string]> => [
    ['Tus-Resumable', () => pick(['1.0.0', '1.0.0', '0.2.2', '', 'x'])],
    ['Upload-Length', () => pick(['5', '-5', '1e3', '99999999999999999999', ' 5', 'abc', '0', String(2 ** 53)])],
    ['Upload-Offset', () => pick(['0', '5', '-1', 'abc', '1.5', '999999999999'])],
    ['Upload-Metadata', () => pick(['filename aGVsbG8=', 'filename', 'a b c', ',', 'filename !!!', `k ${'QUFB'.repeat(500)}`, 'filetype dGV4dC9odG1s'])],
    ['Upload-Concat', () => pick(['partial', 'final;/files/a /files/b', 'final;', 'garbage', 'final; http://[::1/x'])],
    ['Upload-Defer-Length', () => pick(['1', '0', 'yes'])],
    ['Upload-Checksum', () => pick(['sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=', 'md5', 'nope !!'])],
    ['Content-Type', () => pick(['application/offset+octet-stream', 'text/plain', 'image/png, text/html', 'image/jpeg;text/html', '', 'a/b/c'])],
    ['Range', () => pick(['bytes=0-1', 'bytes=-', 'bytes=5-1', 'bytes=0-0,2-3', 'items=0-1', 'bytes=99999999999999999999-'])],
    ['If-Range', () => pick(['"x"', 'Wed, 21 Oct 2015 07:28:00 GMT', 'garbage'])],
    ['If-None-Match', () => pick(['*', '"x"', 'W/"y"', ','])],
    ['If-Modified-Since', () => pick(['garbage', 'Wed, 21 Oct 2015 07:28:00 GMT', ''])],
    ['Authorization', () => pick([`Bearer ${ADMIN_TOKEN}`, 'Bearer wrong', 'Basic Zm9vOmJhcg==', 'Bearer'])],
    ['Upload-Slot', () => slotUrl(pick([0, 5, 11]))],
    ['Origin', () => pick(['https://evil.example', 'null', 'http://127.0.0.1'])],
    ['Access-Control-Request-Method', () => pick(['PATCH', 'PUT', 'DELETE'])],
    ['Expect', () => '100-continue'],
    ['X-HTTP-Method-Override', () => pick(['DELETE', 'PATCH', 'GET'])],
    ['X-Forwarded-Proto', () => pick(['https', 'gopher'])],
    ['Repr-Digest', () => pick(['sha-256=:abc:', 'garbage'])],
    // IETF Resumable Uploads (rufh-uploads.ts) shares the tus and PUT routes.
    ['Upload-Draft-Interop-Version', () => pick(['3', '5', '6', '8', '99', 'x'])],
    ['Upload-Complete', () => pick(['?1', '?0', 'yes'])],
    ['Upload-Incomplete', () => pick(['?0', '?1', '1'])],
  ];

  /** Requests the HTTP parser itself must refuse (answered through clientError). */
  const brokenFraming = (): Buffer =>
    Buffer.from(
      pick([
        'GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
        'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
        'PUT /upload/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
        'PATCH /files/abc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
        'FOO /health HTTP/1.1\r\nHost: x\r\n\r\n',
        'get /health HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET /health HTTP/9.9\r\nHost: x\r\n\r\n',
        'GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n',
        `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
        'GET /health HTTP/1.1\r\nHost: x\r\nX-Nul: a\u0000b\r\n\r\n',
        'GET\r\n\r\n',
      ]),
      'latin1',
    );

  return (n: number): Spec => {
    if (chance(0.08)) {
      const bytes = brokenFraming();
      return { label: `#${n} framing ${JSON.stringify(bytes.subarray(0, 60).toString('latin1'))}`, method: 'GET', bytes };
    }
    const route = pick(['tus', 'tus', 'tus', 'upload', 'upload', 'other']);
    let target = pick(route === 'tus' ? tusTargets() : route === 'upload' ? uploadTargets() : otherTargets());
    const method = pick(
      route === 'tus'
        ? ['POST', 'PATCH', 'PATCH', 'HEAD', 'DELETE', 'OPTIONS', 'GET', 'PUT']
        : route === 'upload'
          ? ['GET', 'HEAD', 'PUT', 'PUT', 'OPTIONS', 'DELETE', 'POST', 'PATCH']
          : ['GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS', 'PUT', 'PROPFIND'],
    );
    if (chance(0.2)) target = absolute(target);
    const headers: Array<[string, string]> = [];
    if (!chance(0.03)) headers.push(['Host', pick([`127.0.0.1:${f.port}`, 'x', '[::1', 'a b'])]);
    if (route === 'tus' && chance(0.8)) headers.push(['Tus-Resumable', '1.0.0']);
    const pool = headerPool();
    for (let i = Math.floor(random() * 6); i > 0; i--) {
      const [name, value] = pick(pool);
      headers.push([name, value()]);
    }
    const body = chance(0.5) ? Buffer.from(Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256))) : Buffer.alloc(0);
    if (chance(0.1) && body.length > 0) {
      headers.push(['Transfer-Encoding', 'chunked']);
      const framed = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
      return finish(n, method, target, headers, framed);
    }
    if (body.length > 0 || ['PUT', 'PATCH', 'POST'].includes(method)) headers.push(['Content-Length', String(body.length)]);
    return finish(n, method, target, headers, body);
  };

  function finish(n: number, method: string, target: string, headers: Array<[string, string]>, body: Buffer): Spec {
    headers.push(['Connection', 'close']);
    const head = `${method} ${target} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
    return { label: `#${n} ${method} ${target} ${JSON.stringify(headers.slice(0, -1))}`, method, bytes: Buffer.concat([Buffer.from(head, 'latin1'), body]) };
  }
}

/** What is wrong with an answer, or null. */
function verdict(spec: Spec, res: RawExchange): string | null {
  if (res.status === 0) return 'closed without an answer';
  if (res.status >= 500) return `answered ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`;
  if (res.status < 400) return null;
  if (spec.method === 'HEAD') return res.body.length === 0 ? null : 'HEAD answered with a body';
  if (!/^application\/json/.test(res.headers['content-type'] ?? '')) return `${res.status} with Content-Type ${res.headers['content-type']}: ${res.body.toString('utf8').slice(0, 100)}`;
  try {
    const body = JSON.parse(res.body.toString('utf8')) as { code?: unknown; message?: unknown };
    return typeof body.code === 'string' && /^ERR_[A-Z_]+$/.test(body.code) && typeof body.message === 'string' ? null : `${res.status} JSON without code: ${res.body}`;
  } catch {
    return `${res.status} body is not JSON: ${res.body.toString('utf8').slice(0, 100)}`;
  }
}

describe('malformed requests', () => {
  let server: SpawnedServer;
  let fixtures: Fixtures;
  const send = (text: string) => sendRaw('127.0.0.1', fixtures.port, Buffer.from(text, 'latin1'));
  const requestLines = () => server.logs.filter((l: LogLine) => l.msg === 'Request finished' || l.msg === 'Malformed HTTP request refused').length;

  before(async () => {
    server = await startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN } });
    const published = `${slotDir()}/p.txt`;
    assert.equal((await putFile(server, published, 'published')).status, 201);
    const unfinished = await tusCreate(server, `${slotDir()}/u.bin`, randomData(100), { sent: 10 });
    const finished = await tusCreate(server, `${slotDir()}/f.bin`, randomData(20));
    // The finished fixture answers 409 only once its data file was handed to the publisher.
    await server.waitForLog((l) => l.msg === 'File published' && (l.jobId === `tus-${finished.id}` || l.uploadId === finished.id));
    assert.equal((await rawRequest(server.baseUrl, `/upload/${published}`)).status, 200);
    fixtures = { port: Number(new URL(server.baseUrl).port), uploadUrl: server.uploadUrl, unfinishedId: unfinished.id, finishedId: finished.id, publishedPath: published };
  });
  after(async () => server?.dispose());

  const T = 'Tus-Resumable: 1.0.0\r\n';
  const slot = (size: number) => signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/c.bin`, baseUrl: fixtures.uploadUrl, size }).url;
  const reviewed: Array<[name: string, request: () => string, status: number, code: string]> = [
    ['PATCH /files/%ZZ', () => `PATCH /files/%ZZ HTTP/1.1\r\nHost: x\r\n${T}Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 400, 'ERR_BAD_REQUEST'],
    ['PATCH /files/%E0%A4%A', () => `PATCH /files/%E0%A4%A HTTP/1.1\r\nHost: x\r\n${T}Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 400, 'ERR_BAD_REQUEST'],
    ['DELETE /files/%c0%ae%c0%ae', () => `DELETE /files/%c0%ae%c0%ae HTTP/1.1\r\nHost: x\r\n${T}Connection: close\r\n\r\n`, 400, 'ERR_BAD_REQUEST'],
    ['PATCH http://x:99999/files/', () => `PATCH http://x:99999/files/ HTTP/1.1\r\nHost: x\r\n${T}Content-Length: 0\r\nConnection: close\r\n\r\n`, 400, 'ERR_BAD_REQUEST'],
    ['DELETE http://x:99999/files/', () => `DELETE http://x:99999/files/ HTTP/1.1\r\nHost: x\r\n${T}Connection: close\r\n\r\n`, 400, 'ERR_BAD_REQUEST'],
    ['GET http://[::1/upload', () => 'GET http://[::1/upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_REQUEST'],
    ['GET http://[::1/health', () => 'GET http://[::1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_REQUEST'],
    ['PATCH unknown id with Upload-Length: -5', () => `PATCH /files/${'A'.repeat(32)} HTTP/1.1\r\nHost: x\r\n${T}Upload-Length: -5\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 400, 'ERR_TUS_INVALID_HEADER'],
    ['zero-byte PATCH at the end of a finished upload', () => `PATCH /files/${fixtures.finishedId} HTTP/1.1\r\nHost: x\r\n${T}Upload-Offset: 20\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 409, 'ERR_UPLOAD_COMPLETE'],
    ['Upload-Concat: malformed', () => `POST /files/ HTTP/1.1\r\nHost: x\r\n${T}Upload-Slot: ${slot(5)}\r\nUpload-Concat: final; http://[::1/x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 400, 'ERR_CONCAT_MALFORMED'],
    ['Upload-Concat: garbage', () => `POST /files/ HTTP/1.1\r\nHost: x\r\n${T}Upload-Slot: ${slot(5)}\r\nUpload-Concat: garbage\r\nUpload-Length: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 400, 'ERR_CONCAT_MALFORMED'],
    ['no Tus-Resumable (412)', () => `HEAD /files/${'A'.repeat(32)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 412, ''],
    ['PATCH without Tus-Resumable (412)', () => `PATCH /files/${'A'.repeat(32)} HTTP/1.1\r\nHost: x\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 412, 'ERR_TUS_RESUMABLE_REQUIRED'],
    ['PATCH with Content-Type text/plain', () => `PATCH /files/${fixtures.unfinishedId} HTTP/1.1\r\nHost: x\r\n${T}Upload-Offset: 10\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 400, 'ERR_TUS_INVALID_HEADER'],
    ['a header the parser refuses', () => 'GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n', 400, 'ERR_BAD_REQUEST'],
    ['two Host lines (RFC 9112 §3.2)', () => 'GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_REQUEST'],
    ['a Host with a space', () => 'GET /health HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_REQUEST'],
    ['CONNECT (a tunnel request: this server is no proxy)', () => 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405, 'ERR_METHOD_NOT_ALLOWED'],
    ['an expectation other than 100-continue', () => `PUT /upload/x/y.txt HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`, 417, 'ERR_EXPECTATION_FAILED'],
  ];
  for (const [name, request, status, code] of reviewed) {
    it(`${name}: ${status}${code ? ` ${code}` : ''} as JSON, logged`, async () => {
      const linesBefore = requestLines();
      const res = await send(request());
      assert.equal(res.status, status, res.body.toString());
      if (code) {
        assert.match(res.headers['content-type'] ?? '', /^application\/json/);
        assert.equal((JSON.parse(res.body.toString()) as { code: string }).code, code);
      }
      if (status === 412) assert.equal(res.headers['tus-version'], '1.0.0');
      await server.waitForLog(() => requestLines() > linesBefore, 10_000);
    });
  }

  it('a refusal before @tus/server still carries its CORS headers (a browser client can read the 4xx)', async () => {
    const linesBefore = requestLines();
    const res = await send(`PATCH /files/${'A'.repeat(32)} HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\nTus-Resumable: 0.2.2\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 412);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.match(res.headers['access-control-expose-headers'] ?? '', /X-Request-Id/);
    assert.equal(res.headers['tus-resumable'], '1.0.0');
    // Its log line lands before the battery below starts counting.
    await server.waitForLog(() => requestLines() > linesBefore, 10_000);
  });

  it('CONNECT pipelined behind requests is answered after them (their answers were lost); reset right after its 405, the server goes on', async () => {
    const { connect } = await import('node:net');
    const pipelined = connect({ host: '127.0.0.1', port: fixtures.port });
    pipelined.on('error', () => {});
    let got = '';
    pipelined.on('data', (d: Buffer) => (got += d.toString('latin1')));
    pipelined.write('GET /health HTTP/1.1\r\nHost: a\r\n\r\nGET /health HTTP/1.1\r\nHost: a\r\n\r\nCONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n');
    await new Promise((resolve) => pipelined.once('close', resolve));
    assert.deepEqual([...got.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]), ['200', '200', '405'], got); // answers follow bodies directly
    const reset = connect({ host: '127.0.0.1', port: fixtures.port });
    reset.on('error', () => {});
    reset.write('CONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n');
    await new Promise((resolve) => reset.once('data', resolve)); // the 405; the server lingers now
    reset.resetAndDestroy();
    await new Promise((resolve) => reset.once('close', resolve));
    const linesBefore = requestLines();
    assert.equal((await rawRequest(server.baseUrl, '/health')).status, 200, 'still serving');
    assert.equal(server.proc.exitCode, null);
    await server.waitForLog(() => requestLines() > linesBefore, 10_000); // before the battery counts
  });

  it('a connection pipelining more requests than it waits answers for is closed; what it queued is dropped, others are served', async () => {
    const { connect } = await import('node:net');
    const socket = connect({ host: '127.0.0.1', port: fixtures.port });
    socket.on('error', () => {});
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.write('GET /health HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(2_000));
    await new Promise((resolve) => socket.once('close', resolve));
    const answered = [...got.matchAll(/HTTP\/1\.1 200 /g)].length;
    assert.ok(answered <= 32, `${answered} of 2,000 answered before the close`);
    const warned = await server.waitForLog((l) => l.msg === 'Connection closed: too many pipelined requests waiting for their answers', 10_000);
    assert.equal(warned.limit, 32);
    assert.equal((await rawRequest(server.baseUrl, '/health', { method: 'HEAD' })).status, 200, 'still serving');
    // Its line comes after those of the requests handled before the close: then the battery below counts only its own.
    await server.waitForLog((l) => l.msg === 'Request finished' && l.method === 'HEAD' && l.path === '/health', 10_000);
  });

  it('a GET declaring a body it trickles is answered and its connection closed (Node waited for the whole body, past every timeout)', async () => {
    const { connect } = await import('node:net');
    const socket = connect({ host: '127.0.0.1', port: fixtures.port });
    socket.on('error', () => {});
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.write('GET /health HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000\r\n\r\nx');
    const trickle = setInterval(() => socket.writable && socket.write('x'), 200);
    try {
      await withTimeout(new Promise((resolve) => socket.once('close', resolve)), 10_000, 'the connection was kept open for the body');
    } finally {
      clearInterval(trickle);
    }
    assert.match(got, /^HTTP\/1\.1 200 /);
    assert.match(got, /\r\nConnection: close\r\n/i);
    // Its line comes before this one: the battery below counts only its own.
    const heads = () => server.logs.filter((l) => l.msg === 'Request finished' && l.method === 'HEAD' && l.path === '/health').length;
    const before = heads();
    assert.equal((await rawRequest(server.baseUrl, '/health', { method: 'HEAD' })).status, 200);
    await server.waitForLog(() => heads() > before, 10_000);
  });

  it('a creation pipelined behind an answer that closes the connection is never handled and leaves its slot free', async () => {
    const { connect } = await import('node:net');
    const target = slot(7);
    const socket = connect({ host: '127.0.0.1', port: fixtures.port });
    socket.on('error', () => {});
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.write(`GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nPOST /files/ HTTP/1.1\r\nHost: a\r\n${T}Upload-Length: 7\r\nUpload-Slot: ${target}\r\nContent-Length: 0\r\n\r\n`);
    await new Promise((resolve) => socket.once('close', resolve));
    assert.equal([...got.matchAll(/^HTTP\/1\.1 /gm)].length, 1, 'one answer: the connection closed after it');
    const linesBefore = requestLines();
    const created = await withTimeout(rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '7', 'Upload-Slot': target } }), 10_000, 'the slot is stuck');
    assert.equal(created.status, 201, created.text);
    await server.waitForLog(() => requestLines() > linesBefore, 10_000); // before the battery counts
  });

  it('garbage pipelined behind a whole PUT: the PUT is answered 201 (its file is published), then the connection closes', async () => {
    const put = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/pipelined.txt`, baseUrl: fixtures.uploadUrl, size: 5 });
    const res = await send(`PUT ${pathOf(put.url)} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloEXTRA-GARBAGE\r\n\r\n`);
    assert.equal(res.status, 201, res.body.toString());
    assert.equal((await rawRequest(server.baseUrl, pathOf(put.getUrl))).text, 'hello');
    await server.waitForLog((l) => l.msg === 'Malformed HTTP request refused after a complete request; its answer is delivered first');
    // Both requests' log lines land before the battery below starts counting.
    const finished = (method: string, status: number) => (l: LogLine) => l.msg === 'Request finished' && l.method === method && l.status === status && l.path === pathOf(put.getUrl);
    await server.waitForLog(finished('PUT', 201));
    await server.waitForLog(finished('GET', 200));
  });

  it('a broken chunked body of an IETF creation or upgraded PUT is 400 and frees its permit and slot (they stayed held for ever)', async () => {
    const linesBefore = requestLines();
    let reads = 0;
    const active = async () => {
      reads++;
      return Number(/^hmac_active_uploads (\S+)$/m.exec((await rawRequest(server.baseUrl, '/metrics')).text)?.[1]);
    };
    const path = `${slotDir()}/broken-chunked.bin`;
    const slotUrl = signSlotUrl({ secret: TEST_SECRET, path, baseUrl: fixtures.uploadUrl, size: 10 }).url;
    const creation = await send(`POST /files/ HTTP/1.1\r\nHost: x\r\nUpload-Draft-Interop-Version: 8\r\nUpload-Complete: ?0\r\nUpload-Length: 10\r\nUpload-Slot: ${slotUrl}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`);
    assert.equal(creation.status, 400);
    const upgraded = await send(`PUT ${pathOf(slotUrl)} HTTP/1.1\r\nHost: x\r\nUpload-Draft-Interop-Version: 8\r\nUpload-Complete: ?1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`);
    assert.equal(upgraded.status, 400);
    // Each request's last log line comes once its handler let go of everything it held.
    const deadline = Date.now() + 10_000;
    while ((await active()) !== 0) {
      assert.ok(Date.now() < deadline, `hmac_active_uploads stays ${await active()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // The slot is usable: its unfinished resource answers, a plain PUT of it is not left hanging.
    const put = await withTimeout(rawRequest(server.baseUrl, pathOf(slotUrl), { method: 'PUT', body: randomData(10) }), 10_000, 'a PUT of the slot');
    assert.ok(put.status < 500, put.text);
    // Every line of these requests is written before the battery below counts its own: three
    // requests and the /metrics reads, one line each (a line can follow its answer).
    await server.waitForLog(() => requestLines() >= linesBefore + 3 + reads, 10_000);
  });

  it(`a seeded battery of ${REQUESTS} malformed requests over every route: no 5xx, JSON 4xx, one log line each`, async () => {
    const next = generator(fixtures);
    const specs = Array.from({ length: REQUESTS }, (_, n) => next(n));
    const linesBefore = requestLines();
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let cursor = 0;
    const worker = async () => {
      while (cursor < specs.length) {
        const spec = specs[cursor++]!;
        const res = await sendRaw('127.0.0.1', fixtures.port, spec.bytes);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const wrong = verdict(spec, res);
        if (wrong) failures.push(`${spec.label}: ${wrong}`);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    assert.deepEqual(failures.slice(0, 15), [], `${failures.length} of ${REQUESTS} wrong`);
    // Every route and class of answer was reached (the generator is not stuck on one kind).
    assert.ok([...statuses.keys()].some((s) => s >= 200 && s < 300), JSON.stringify([...statuses]));
    for (const s of [400, 403, 404, 405, 412]) assert.ok(statuses.has(s), `no ${s} in ${JSON.stringify([...statuses])}`);
    await server.waitForLog(() => requestLines() - linesBefore >= REQUESTS, 30_000);
    assert.equal(requestLines() - linesBefore, REQUESTS, 'exactly one log line per request');
    assert.deepEqual(server.logs.filter((l) => l.msg === 'Request failed' || l.msg === 'tus request failed'), [], 'no internal error');
  });

  it('the server is alive and serving afterwards; no temp file is left behind', async () => {
    assert.equal(server.proc.exitCode, null);
    assert.equal((await rawRequest(server.baseUrl, '/health')).status, 200);
    const path = `${slotDir()}/after.txt`;
    const slot = signSlotUrl({ secret: TEST_SECRET, path, baseUrl: server.uploadUrl, size: 5 });
    assert.equal((await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body: 'still' })).status, 201);
    assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).text, 'still');
    assert.deepEqual(await readdir(join(server.dataDir, 'incoming')), []);
  });
});

describe('a CONNECT pipelined behind a download its client never reads', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer({ config: '[server]\nupload_stall_timeout = "2s"\n' });
  });
  after(async () => server?.dispose());

  it('the connection is closed once the idle timeout passes (it was held for ever)', async () => {
    const path = `${slotDir()}/big.bin`;
    assert.equal((await putFile(server, path, randomData(16 * 1024 * 1024))).status, 201);
    assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`, { method: 'HEAD' })).status, 200);
    const { connect } = await import('node:net');
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(server.baseUrl).port) });
    socket.on('error', () => {});
    socket.pause(); // never reads: the 16 MiB answer cannot be written out
    socket.write(`GET /upload/${path} HTTP/1.1\r\nHost: a\r\n\r\nCONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n`);
    // The server's side is what counts (a paused client may never see the close): only the
    // metrics request's own connection stays open.
    const open = async () => Number(/^hmac_open_connections (\d+)$/m.exec((await rawRequest(server.baseUrl, '/metrics', { headers: { Connection: 'close' } })).text)?.[1]);
    const deadline = Date.now() + 20_000;
    try {
      while ((await open()) !== 1) {
        assert.ok(Date.now() < deadline, 'the connection was never closed');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      socket.destroy();
    }
  });
});
