/**
 * Upload policy and v3 grace against the spawned server: names and sizes refused (415 / 413, own
 * codes) for PUT and tus before any body byte; a v3 slot inside its grace uploads, and a tus
 * upload created in the window resumes normally after it.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';
import { withTimeout } from '../helpers/service.js';

const MAX = 1024 * 1024;
const TUS = { 'Tus-Resumable': '1.0.0' };
const CONFIG = `
[server]
max_upload_size = ${MAX}
[uploads]
allowed_extensions = [".jpg", ".txt", "TAR.GZ"]
blocked_extensions = [".min.txt"]
[security]
expiry_grace = "10m"
`;

/**
 * Sends only the request head with `Expect: 100-continue` and returns the first status line the
 * server writes: a refusal must come without asking for (or reading) the body.
 */
function firstStatusLine(baseUrl: string, method: string, path: string, headers: Record<string, string | number>): Promise<string> {
  const url = new URL(baseUrl);
  const head = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`, 'Expect: 100-continue', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  return withTimeout(
    new Promise<string>((resolve, reject) => {
      const sock = connect(Number(url.port), url.hostname, () => sock.write(head));
      let got = '';
      sock.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        const end = got.indexOf('\r\n');
        if (end >= 0) {
          sock.destroy();
          resolve(got.slice(0, end));
        }
      });
      sock.on('error', reject);
    }),
    15_000,
    'no status line',
  );
}

describe('upload policy and v3 grace', () => {
  let server: SpawnedServer;
  const nowS = () => Math.floor(Date.now() / 1000);
  const slot = (path: string, size: number, opts: Partial<Parameters<typeof signSlotUrl>[0]> = {}) =>
    signSlotUrl({ secret: TEST_SECRET, path, baseUrl: server.uploadUrl, size, ...opts });
  const requestLine = (method: string, path: string) =>
    server.waitForLog((l: LogLine) => l.msg === 'Request finished' && l.method === method && l.path === path, 15_000);

  before(async () => {
    server = await startServer({ config: CONFIG });
  });
  after(async () => server?.dispose());

  it('logs the effective policy at start', async () => {
    const line = await server.waitForLog((l) => l.msg === 'Upload policy');
    assert.deepEqual(line.uploads, { maxBytes: MAX, allowedExtensions: ['.jpg', '.txt', '.tar.gz'], blockedExtensions: ['.min.txt'] });
    assert.equal(line.expiryGraceMs, 600_000);
    assert.equal('secrets' in line, false);
  });

  it('PUT: allowed names in any case are stored', async () => {
    for (const name of ['Photo.JPG', 'backup.Tar.Gz', 'notes.txt']) {
      const data = randomData(100);
      const s = slot(`${slotDir()}/${name}`, data.length);
      const res = await rawRequest(server.baseUrl, pathOf(s.url), { method: 'PUT', body: data });
      assert.equal(res.status, 201, `${name}: ${res.text}`);
    }
  });

  it('PUT: 415 ERR_EXTENSION_NOT_ALLOWED for a name not allowed or blocked, before the body', async () => {
    for (const name of ['setup.exe', 'README', 'app.min.txt', 'photo.jpg.html']) {
      const path = `${slotDir()}/${name}`;
      const s = slot(path, 5_000_000);
      assert.equal(await firstStatusLine(server.baseUrl, 'PUT', pathOf(s.url), { 'Content-Length': 5_000_000 }), 'HTTP/1.1 415 Unsupported Media Type', name);
      const line = await requestLine('PUT', new URL(s.getUrl).pathname);
      assert.equal(line.code, 'ERR_EXTENSION_NOT_ALLOWED', name);
      assert.ok(Number(line.bytesIn) < 2000, `${name}: no body byte was read (${line.bytesIn} bytes in)`);
    }
    const res = await rawRequest(server.baseUrl, pathOf(slot(`${slotDir()}/x.exe`, 3).url), { method: 'PUT', body: 'abc' });
    assert.equal(res.status, 415);
    assert.equal(res.json().code, 'ERR_EXTENSION_NOT_ALLOWED');
    assert.match(String(res.json().message), /"\.exe"/);
  });

  it('PUT: 413 ERR_TOO_LARGE from the declared size, before the body', async () => {
    const s = slot(`${slotDir()}/big.jpg`, MAX + 1);
    assert.equal(await firstStatusLine(server.baseUrl, 'PUT', pathOf(s.url), { 'Content-Length': MAX + 1 }), 'HTTP/1.1 413 Payload Too Large');
    assert.equal((await requestLine('PUT', new URL(s.getUrl).pathname)).code, 'ERR_TOO_LARGE');
  });

  it('tus creation: 415 and 413 with their codes; an allowed name is created', async () => {
    const cases: Array<[name: string, size: number, status: number, code: string | null]> = [
      ['clip.exe', 10, 415, 'ERR_EXTENSION_NOT_ALLOWED'],
      ['clip.jpg', MAX + 1, 413, 'ERR_TOO_LARGE'],
      ['clip.JPG', 10, 201, null],
    ];
    for (const [name, size, status, code] of cases) {
      const res = await rawRequest(server.baseUrl, '/files/', {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': size, 'Upload-Slot': slot(`${slotDir()}/${name}`, size).url },
      });
      assert.equal(res.status, status, `${name}: ${res.text}`);
      if (code) assert.equal(res.json().code, code);
      else assert.match(String(res.headers.location), /\/files\//);
    }
  });

  it('tus with a deferred length (v3): a length or a body past max_upload_size is 413 ERR_TOO_LARGE, as on every door', async () => {
    const OCTETS = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };
    const create = async () => {
      const s = slot(`${slotDir()}/later.txt`, 0, { scheme: 'v3', expires: nowS() + 600 });
      const res = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Defer-Length': '1', 'Upload-Slot': s.url } });
      assert.equal(res.status, 201, res.text);
      return pathOf(String(res.headers.location));
    };
    const declared = await rawRequest(server.baseUrl, await create(), { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0', 'Upload-Length': String(MAX + 1) }, body: 'abc' });
    assert.equal(declared.status, 413, declared.text);
    assert.equal(declared.json().code, 'ERR_TOO_LARGE');
    const streamed = await rawRequest(server.baseUrl, await create(), { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0' }, body: randomData(MAX + 1) });
    assert.equal(streamed.status, 413, streamed.text);
    assert.equal(streamed.json().code, 'ERR_TOO_LARGE');
  });

  it('tus creation-with-upload of a refused name: 415 before the body, nothing stored', async () => {
    const s = slot(`${slotDir()}/payload.exe`, 4_000_000);
    const status = await firstStatusLine(server.baseUrl, 'POST', '/files/', {
      ...TUS,
      'Upload-Length': 4_000_000,
      'Upload-Slot': s.url,
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': 4_000_000,
    });
    assert.equal(status, 'HTTP/1.1 415 Unsupported Media Type');
    assert.equal((await requestLine('POST', '/files/')).code, 'ERR_EXTENSION_NOT_ALLOWED');
  });

  it('v3: a PUT inside the grace window is stored; past it, 403 ERR_SIGNATURE_EXPIRED', async () => {
    const late = slot(`${slotDir()}/late.jpg`, 0, { scheme: 'v3', expires: nowS() - 120 });
    assert.equal((await rawRequest(server.baseUrl, pathOf(late.url), { method: 'PUT', body: 'late but fine' })).status, 201);
    const tooLate = slot(`${slotDir()}/too-late.jpg`, 0, { scheme: 'v3', expires: nowS() - 1200 });
    const res = await rawRequest(server.baseUrl, pathOf(tooLate.url), { method: 'PUT', body: 'too late' });
    assert.equal(res.status, 403);
    assert.equal(res.json().code, 'ERR_SIGNATURE_EXPIRED');
  });

  it('v3: a tus upload created inside the window resumes normally (HEAD and PATCH do not re-check the expiry)', async () => {
    const data = randomData(300_000);
    const s = slot(`${slotDir()}/resumed.jpg`, 0, { scheme: 'v3', expires: nowS() - 300 });
    const created = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': data.length, 'Upload-Slot': s.url } });
    assert.equal(created.status, 201, created.text);
    const upload = pathOf(new URL(String(created.headers.location), server.baseUrl).toString());
    const patch = (offset: number, chunk: Buffer) =>
      rawRequest(server.baseUrl, upload, { method: 'PATCH', headers: { ...TUS, 'Upload-Offset': offset, 'Content-Type': 'application/offset+octet-stream' }, body: chunk });
    assert.equal((await patch(0, data.subarray(0, 100_000))).status, 204);
    const head = await rawRequest(server.baseUrl, upload, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 200);
    assert.equal(head.headers['upload-offset'], '100000');
    assert.equal((await patch(100_000, data.subarray(100_000))).status, 204);
    const get = await rawRequest(server.baseUrl, pathOf(s.getUrl));
    assert.equal(get.status, 200);
    assert.equal(sha256(get.body), sha256(data));
  });
});
