/** GET/HEAD of published files: ranges, validators, content-type and security-header rules. */
import assert from 'node:assert/strict';
import { readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

describe('downloads', () => {
  let server: SpawnedServer;
  const data = randomData(10_000);
  let getPath = '';

  const publish = async (name: string, body: Buffer, contentType?: string) => {
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/${name}`, baseUrl: server.uploadUrl, size: body.length, ...(contentType ? { contentType, scheme: 'v2' as const } : {}) });
    const res = await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body, headers: contentType ? { 'Content-Type': contentType } : {} });
    assert.equal(res.status, 201, res.text);
    return pathOf(slot.getUrl);
  };

  before(async () => {
    server = await startServer();
    getPath = await publish('photo.jpg', data, 'image/jpeg');
  });
  after(async () => server.dispose());

  it('GET and HEAD: 200 with length, validators and security headers', async () => {
    const get = await rawRequest(server.baseUrl, getPath);
    assert.equal(get.status, 200);
    assert.equal(sha256(get.body), sha256(data));
    assert.equal(get.headers['content-length'], String(data.length));
    assert.equal(get.headers['content-type'], 'image/jpeg');
    assert.equal(get.headers['accept-ranges'], 'bytes');
    assert.equal(get.headers['x-content-type-options'], 'nosniff');
    assert.equal(get.headers['cross-origin-resource-policy'], 'cross-origin', 'embeddable by web clients on other origins');
    assert.equal(get.headers['content-security-policy'], "default-src 'none'; sandbox; form-action 'none'; frame-ancestors 'none'");
    assert.match(String(get.headers.etag), /^"[^"]+"$/);
    assert.ok(!Number.isNaN(Date.parse(String(get.headers['last-modified']))));
    const head = await rawRequest(server.baseUrl, getPath, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(data.length));
    assert.equal(head.body.length, 0);
    assert.equal(head.headers.etag, get.headers.etag);
  });

  it('Range: 206 for satisfiable ranges, 416 with Content-Range for the rest', async () => {
    const cases: Array<[string, number, number]> = [
      ['bytes=0-0', 0, 0],
      ['bytes=100-199', 100, 199],
      ['bytes=9990-', 9990, 9999],
      ['bytes=-10', 9990, 9999],
      ['bytes=9000-20000', 9000, 9999],
    ];
    for (const [range, start, end] of cases) {
      const res = await rawRequest(server.baseUrl, getPath, { headers: { Range: range } });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${data.length}`, range);
      assert.equal(sha256(res.body), sha256(data.subarray(start, end + 1)), range);
    }
    const bad = await rawRequest(server.baseUrl, getPath, { headers: { Range: 'bytes=10000-' } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], `bytes */${data.length}`);
    const attachment = await publish('page.html', data, 'text/html');
    const badAttachment = await rawRequest(server.baseUrl, attachment, { headers: { Range: 'bytes=10000-' } });
    assert.equal(badAttachment.status, 416);
    assert.match(String(badAttachment.headers['content-type']), /application\/json/);
    assert.equal(badAttachment.headers['content-disposition'], undefined, 'the JSON error is no attachment');
    const ignored = await rawRequest(server.baseUrl, getPath, { headers: { Range: 'bytes=0-1,5-6' } });
    assert.equal(ignored.status, 200, 'multi-range is answered with the whole file');
  });

  it('If-None-Match and If-Modified-Since give 304; If-Range with a stale ETag gives the whole file', async () => {
    const first = await rawRequest(server.baseUrl, getPath, { method: 'HEAD' });
    const etag = String(first.headers.etag);
    assert.equal((await rawRequest(server.baseUrl, getPath, { headers: { 'If-None-Match': etag } })).status, 304);
    assert.equal((await rawRequest(server.baseUrl, getPath, { headers: { 'If-None-Match': '"other", ' + etag } })).status, 304);
    assert.equal((await rawRequest(server.baseUrl, getPath, { headers: { 'If-None-Match': '"other"' } })).status, 200);
    assert.equal((await rawRequest(server.baseUrl, getPath, { headers: { 'If-Modified-Since': String(first.headers['last-modified']) } })).status, 304);
    const stale = await rawRequest(server.baseUrl, getPath, { headers: { Range: 'bytes=0-9', 'If-Range': '"stale"' } });
    assert.equal(stale.status, 200);
    const fresh = await rawRequest(server.baseUrl, getPath, { headers: { Range: 'bytes=0-9', 'If-Range': etag } });
    assert.equal(fresh.status, 206);
  });

  it('keeps image/video/audio/text-plain types; everything else downloads as an attachment', async () => {
    const cases: Array<[string, string | undefined, string, string | undefined]> = [
      ['a.mp4', 'video/mp4', 'video/mp4', undefined],
      ['a.ogg', 'audio/ogg', 'audio/ogg', undefined],
      ['a.txt', 'text/plain; charset=utf-8', 'text/plain; charset=utf-8', undefined],
      ['page.html', 'text/html', 'application/octet-stream', 'attachment'],
      ['x.svg.html', 'application/xhtml+xml', 'application/octet-stream', 'attachment'],
      ['Grüße.pdf', 'application/pdf', 'application/octet-stream', 'attachment'],
      ['untyped.bin', undefined, 'application/octet-stream', 'attachment'],
    ];
    for (const [name, declared, served, disposition] of cases) {
      const path = await publish(name, Buffer.from('<script>alert(1)</script>'), declared);
      const res = await rawRequest(server.baseUrl, path);
      assert.equal(res.headers['content-type'], served, name);
      if (disposition) {
        assert.match(String(res.headers['content-disposition']), /^attachment; filename="[^"]*"(; filename\*=UTF-8''\S+)?$/, name);
      } else {
        assert.equal(res.headers['content-disposition'], undefined, name);
      }
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
    }
  });

  it('a zero-byte file downloads with Content-Length 0 and the headers its HEAD shows', async () => {
    for (const [name, type, served] of [['empty.txt', undefined, 'application/octet-stream'], ['empty.png', 'image/png', 'image/png'], ['empty.html', 'text/html', 'application/octet-stream']] as const) {
      const path = await publish(name, Buffer.alloc(0), type);
      const res = await rawRequest(server.baseUrl, path);
      assert.equal(res.status, 200, name);
      assert.equal(res.headers['content-length'], '0', name);
      assert.equal(res.headers['content-type'], served, name);
      const head = await rawRequest(server.baseUrl, path, { method: 'HEAD' });
      for (const h of ['content-type', 'content-length', 'content-disposition', 'etag', 'x-content-type-options', 'content-security-policy']) assert.equal(res.headers[h], head.headers[h], `${name}: ${h}`);
    }
  });

  it('If-Match and If-Unmodified-Since: 412 JSON when the file does not match; If-Range by date only on an exact match', async () => {
    const head = await rawRequest(server.baseUrl, getPath, { method: 'HEAD' });
    const etag = String(head.headers.etag);
    const lastModified = String(head.headers['last-modified']);
    const status = async (headers: Record<string, string>) => (await rawRequest(server.baseUrl, getPath, { headers })).status;
    assert.equal(await status({ 'If-Match': etag }), 200);
    assert.equal(await status({ 'If-Match': `"other", ${etag}` }), 200);
    assert.equal(await status({ 'If-Match': '*' }), 200);
    const refused = await rawRequest(server.baseUrl, getPath, { headers: { 'If-Match': '"other"' } });
    assert.equal(refused.status, 412);
    assert.equal((JSON.parse(refused.text) as { code: string }).code, 'ERR_PRECONDITION_FAILED');
    assert.equal(await status({ 'If-Match': `W/${etag}` }), 412, 'If-Match compares strongly');
    assert.equal(await status({ 'If-Unmodified-Since': lastModified }), 200);
    assert.equal(await status({ 'If-Unmodified-Since': new Date(Date.parse(lastModified) - 1000).toUTCString() }), 412);
    assert.equal(await status({ 'If-Match': etag, 'If-Unmodified-Since': new Date(Date.parse(lastModified) - 1000).toUTCString() }), 200, 'If-Match wins');
    assert.equal(await status({ Range: 'bytes=0-9', 'If-Range': lastModified }), 206);
    assert.equal(await status({ Range: 'bytes=0-9', 'If-Range': new Date(Date.parse(lastModified) + 3600_000).toUTCString() }), 200, 'a later date is no match');
  });

  it('404 for unknown files and for directories, 400 for malformed paths', async () => {
    const missing = await rawRequest(server.baseUrl, `/upload/${slotDir()}/nothing.txt`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['x-content-type-options'], 'nosniff', 'error bodies are JSON and nothing else');
    const dir = getPath.slice(0, getPath.lastIndexOf('/'));
    assert.equal((await rawRequest(server.baseUrl, dir)).status, 404);
    assert.equal((await rawRequest(server.baseUrl, '/upload/a/%2e%2e/secret')).status, 400);
    const head404 = await rawRequest(server.baseUrl, `/upload/${slotDir()}/nothing.txt`, { method: 'HEAD' });
    assert.equal(head404.status, 404);
    assert.equal(head404.body.length, 0);
  });

  it('GET /health answers 200; another method on /health, /ready or /metrics is 405 with Allow', async () => {
    const res = await rawRequest(server.baseUrl, '/health');
    assert.equal(res.status, 200);
    assert.equal(res.json().status, 'ok');
    for (const [path, method, allow] of [['/health', 'POST', 'GET, HEAD'], ['/ready', 'DELETE', 'GET, HEAD'], ['/metrics', 'PUT', 'GET']] as const) {
      const refused = await rawRequest(server.baseUrl, path, { method });
      assert.equal(refused.status, 405, `${method} ${path}`);
      assert.equal(refused.headers.allow, allow, `${method} ${path}`);
      assert.equal(refused.json().code, 'ERR_METHOD_NOT_ALLOWED');
    }
  });

  it('deduplication is no oracle: identical bytes at another path look exactly like a fresh upload', async () => {
    // The victim's file, published "a day ago" (its record and the shared content's mtime).
    const secret = randomData(4096);
    const victim = await publish('victim.bin', secret);
    assert.equal((await rawRequest(server.baseUrl, victim, { method: 'HEAD' })).status, 200); // waits for the publish
    const dayAgo = new Date(Math.floor(Date.now() / 1000) * 1000 - 86_400_000);
    const victimRel = decodeURIComponent(victim.slice('/upload/'.length));
    const recordFile = join(server.dataDir, 'meta', `${victimRel}.json`);
    const record = JSON.parse(await readFile(recordFile, 'utf8')) as { publishedAt: string };
    await writeFile(recordFile, JSON.stringify({ ...record, publishedAt: dayAgo.toISOString() }));
    await utimes(join(server.dataDir, 'files', victimRel), dayAgo, dayAgo);
    const victimBefore = await rawRequest(server.baseUrl, victim, { method: 'HEAD' });
    assert.equal(victimBefore.headers['last-modified'], dayAgo.toUTCString());

    // The prober uploads the same bytes; a control uploads fresh bytes of the same size.
    const startedAt = Math.floor(Date.now() / 1000) * 1000;
    const probe = await publish('probe.bin', secret);
    const fresh = await publish('fresh.bin', randomData(4096));
    for (const p of [probe, fresh]) assert.equal((await rawRequest(server.baseUrl, p, { method: 'HEAD' })).status, 200);
    const finishedAt = Date.now();
    const probeRel = decodeURIComponent(probe.slice('/upload/'.length));
    const [victimIno, probeIno] = await Promise.all([victimRel, probeRel].map(async (p) => (await stat(join(server.dataDir, 'files', p))).ino));
    assert.equal(probeIno, victimIno, 'precondition: the probe was deduplicated onto the victim');

    const [probeGet, freshGet, victimAfter] = await Promise.all([
      rawRequest(server.baseUrl, probe),
      rawRequest(server.baseUrl, fresh),
      rawRequest(server.baseUrl, victim, { method: 'HEAD' }),
    ]);
    assert.notEqual(probeGet.headers.etag, victimBefore.headers.etag, 'the ETag is not the victim\'s');
    for (const res of [probeGet, freshGet]) {
      const lastModified = Date.parse(String(res.headers['last-modified']));
      assert.ok(lastModified >= startedAt && lastModified <= finishedAt, `Last-Modified ${res.headers['last-modified']} is this upload's publish time`);
      assert.match(String(res.headers.etag), /^"[A-Za-z0-9_-]{27}"$/);
    }
    const volatile = new Set(['date', 'etag', 'last-modified', 'x-request-id', 'content-disposition']);
    const shape = (h: Record<string, unknown>) => Object.keys(h).filter((k) => !volatile.has(k)).sort().map((k) => `${k}: ${String(h[k])}`);
    assert.deepEqual(shape(probeGet.headers), shape(freshGet.headers), 'same headers as a fresh upload');
    assert.equal((await rawRequest(server.baseUrl, probe, { headers: { 'If-None-Match': String(victimBefore.headers.etag) } })).status, 200);
    // The victim's validators did not move either (a hard link changes the inode's ctime, not these).
    assert.equal(victimAfter.headers.etag, victimBefore.headers.etag);
    assert.equal(victimAfter.headers['last-modified'], victimBefore.headers['last-modified']);
  });
});
