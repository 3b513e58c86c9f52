/**
 * tus 1.0 through a signed slot, with tus-js-client (Node) and raw HTTP, against the spawned
 * server, on both storage backends (helpers/backends.ts). On S3 concatenation is not offered and a
 * finished upload's file cannot be deleted for good (no tombstones there): both answered plainly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { storageBackends } from '../helpers/backends.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const b64 = (s: string) => Buffer.from(s).toString('base64');

function tusUpload(data: Buffer, options: tus.UploadOptions): Promise<tus.Upload> {
  return new Promise((resolve, reject) => {
    const upload: tus.Upload = new tus.Upload(data, {
      retryDelays: [0, 100, 300],
      ...options,
      onSuccess: () => resolve(upload),
      onError: reject,
    });
    upload.start();
  });
}

for (const backend of storageBackends()) describe(`tus uploads through signed slots [${backend.name}]`, () => {
  let server: SpawnedServer;
  const slotFor = (path: string, size: number, opts: Partial<Parameters<typeof signSlotUrl>[0]> = {}) =>
    signSlotUrl({ secret: TEST_SECRET, path, baseUrl: server.uploadUrl, size, ...opts });
  const create = (slotUrl: string | undefined, size: number | undefined, extra: Record<string, string> = {}) =>
    rawRequest(server.baseUrl, '/files/', {
      method: 'POST',
      headers: { ...TUS, ...(size === undefined ? {} : { 'Upload-Length': String(size) }), ...(slotUrl ? { 'Upload-Slot': slotUrl } : {}), ...extra },
    });

  before(async () => {
    // Uploads here must not race an expiry on a busy machine: only the expiry case runs its own server with 2s.
    server = await startServer({ config: `[tus]\nexpiration = "10m"\n${await backend.config()}` });
  });
  after(async () => server.dispose());

  it('tus-js-client uploads through an Upload-Slot header; GET returns identical bytes', async () => {
    const data = randomData(3 * 1024 * 1024 + 17);
    const path = `${slotDir()}/video clip.mp4`;
    const slot = slotFor(path, data.length, { scheme: 'v2', contentType: 'video/mp4' });
    const hashRereads = async () => Number(/^hmac_finalize_source_rereads_total\{reason="hash"\} (\S+)$/m.exec((await rawRequest(server.baseUrl, '/metrics')).text)?.[1] ?? 0);
    const rereadsBefore = await hashRereads();
    const upload = await tusUpload(data, {
      endpoint: server.tusUrl,
      headers: { 'Upload-Slot': slot.url },
      metadata: { filename: 'video clip.mp4', filetype: 'video/mp4' },
      chunkSize: 1024 * 1024,
    });
    const id = new URL(upload.url!).pathname.split('/').pop()!;
    assert.ok(Buffer.from(id, 'base64url').length >= 16, `upload id ${id} carries at least 128 random bits`);
    const get = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
    assert.equal(get.status, 200);
    assert.equal(get.headers['content-type'], 'video/mp4');
    assert.equal(sha256(get.body), sha256(data));
    assert.equal(await hashRereads(), rereadsBefore, 'hashed while its PATCHes arrived: finalization did not read it again');
  });

  it('tus-js-client with the slot in the creation URL query string', async () => {
    const data = randomData(200_000);
    const slot = slotFor(`${slotDir()}/q.bin`, data.length);
    await tusUpload(data, { endpoint: `${server.tusUrl}?slot=${encodeURIComponent(slot.url)}` });
    assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
  });

  it('signature parameters on the creation URL next to slot=<path>', async () => {
    const data = randomData(1000);
    const path = `${slotDir()}/p.bin`;
    const slot = slotFor(path, data.length);
    await tusUpload(data, { endpoint: `${server.tusUrl}?slot=${encodeURIComponent(path)}&${slot.query.toString()}` });
    assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).status, 200);
  });

  it('refuses creations without a valid slot: 403 with a stable code', async () => {
    const path = `${slotDir()}/r.bin`;
    const cases: Array<[string | undefined, number | undefined, Record<string, string>, string]> = [
      [undefined, 10, {}, 'ERR_SLOT_MISSING'],
      [slotFor(path, 10).url, 11, {}, 'ERR_SIGNATURE_INVALID'], // Upload-Length differs from the signed size
      [`${server.uploadUrl}${path}`, 10, {}, 'ERR_SIGNATURE_MISSING'],
      [slotFor(path, 10, { scheme: 'v2', contentType: 'image/png' }).url, 10, { 'Upload-Metadata': `filetype ${b64('image/jpeg')}` }, 'ERR_SIGNATURE_INVALID'],
      [slotFor(path, 10, { scheme: 'v3', expires: Math.floor(Date.now() / 1000) - 5 }).url, 10, {}, 'ERR_SIGNATURE_EXPIRED'],
    ];
    for (const [slot, size, extra, code] of cases) {
      const res = await create(slot, size, extra);
      assert.equal(res.status, 403, `${code}: ${res.text}`);
      assert.equal(res.json().code, code);
    }
  });

  it('411 when a size-binding slot meets Upload-Defer-Length; v3 allows deferred length', async () => {
    const path = `${slotDir()}/d.bin`;
    const refused = await create(slotFor(path, 10).url, undefined, { 'Upload-Defer-Length': '1' });
    assert.equal(refused.status, 411);
    assert.match(String(refused.json().message), /Upload-Length/, 'names the tus header, not Content-Length');
    const v3 = slotFor(path, 0, { scheme: 'v3', expires: Math.floor(Date.now() / 1000) + 600 });
    const created = await create(v3.url, undefined, { 'Upload-Defer-Length': '1' });
    assert.equal(created.status, 201, created.text);
    const location = pathOf(String(created.headers.location));
    const huge = await rawRequest(server.baseUrl, location, {
      method: 'PATCH',
      headers: { ...TUS, 'Upload-Offset': '0', 'Upload-Length': '85000000000', 'Content-Type': 'application/offset+octet-stream' },
      body: 'hello',
    });
    assert.deepEqual([huge.status, huge.json().code], [413, 'ERR_TOO_LARGE'], 'a length past max_upload_size (and the disk): the client\'s mistake, never a retryable 507');
    const patch = await rawRequest(server.baseUrl, location, {
      method: 'PATCH',
      headers: { ...TUS, 'Upload-Offset': '0', 'Upload-Length': '5', 'Content-Type': 'application/offset+octet-stream' },
      body: 'hello',
    });
    assert.equal(patch.status, 204, patch.text);
    assert.equal((await rawRequest(server.baseUrl, pathOf(v3.getUrl))).text, 'hello');
  });

  it('400 for malformed Upload-Length, Upload-Metadata or slot paths', async () => {
    const slot = slotFor(`${slotDir()}/m.bin`, 10).url;
    assert.equal((await create(slot, undefined, { 'Upload-Length': '1e3' })).status, 400);
    assert.equal((await create(slot, 10, { 'Upload-Metadata': 'filetype not-base64!' })).status, 400);
    assert.equal((await create(`${server.uploadUrl}a/../b?v=${'0'.repeat(64)}`, 10)).status, 400);
  });

  it('creation-with-upload publishes in one request', async () => {
    const data = randomData(5000);
    const slot = slotFor(`${slotDir()}/cwu.bin`, data.length);
    const res = await rawRequest(server.baseUrl, '/files/', {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': String(data.length), 'Upload-Slot': slot.url, 'Content-Type': 'application/offset+octet-stream' },
      body: data,
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers['upload-offset'], String(data.length));
    assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
  });

  // One creation-with-upload per metadata; each file is published as application/octet-stream.
  const oddMetadata = async (cases: Array<Record<string, string>>) => {
    for (const metadata of cases) {
      const header = Object.entries(metadata).map(([k, v]) => `${k} ${b64(v)}`).join(',');
      const data = randomData(3000);
      const slot = slotFor(`${slotDir()}/odd-type.bin`, data.length);
      const res = await rawRequest(server.baseUrl, '/files/', {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': String(data.length), 'Upload-Slot': slot.url, 'Upload-Metadata': header, 'Content-Type': 'application/offset+octet-stream' },
        body: data,
      });
      assert.equal(res.status, 201, `${JSON.stringify(metadata)}: ${res.text}`);
      const head = await rawRequest(server.baseUrl, pathOf(String(res.headers.location)), { method: 'HEAD', headers: TUS });
      assert.equal(head.headers['upload-metadata'], header, 'HEAD reports the metadata as sent');
      const got = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
      assert.equal(got.status, 200, `${JSON.stringify(metadata)}: ${got.text}`);
      assert.equal(got.headers['content-type'], 'application/octet-stream');
      assert.equal(sha256(got.body), sha256(data));
    }
  };

  it('a filetype that is no media type (non-ASCII, CR LF) is published as application/octet-stream', async () => {
    await oddMetadata([{ filetype: 'image/p\u00e9ng' }, { filetype: 'text/html\r\nX-Evil: 1' }]);
  });

  it('contentType and cacheControl metadata with CR LF or non-ASCII: created (never a 500), kept as sent, never passed on as headers', async () => {
    await oddMetadata([
      { contentType: 'text/html\r\nX-Evil: 1', cacheControl: 'no-store\r\nX-Evil: 1' },
      { contentType: 'image/p\u00e9ng', cacheControl: 'max-age=\u00e9' },
    ]);
  });

  it('X-HTTP-Method-Override: tus-js-client with overridePatchMethod, a DELETE sent as POST; a plain POST to an upload URL is 405', async () => {
    const data = randomData(300_000);
    const slot = slotFor(`${slotDir()}/override.bin`, data.length);
    const since = server.logs.length;
    await tusUpload(data, { endpoint: `${server.baseUrl}/files/`, headers: { 'Upload-Slot': slot.url }, overridePatchMethod: true, chunkSize: 100_000 });
    assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
    // The log names the method as sent; an append answers 204 (a creation 201).
    await server.waitForLog((l) => l.msg === 'Request finished' && l.method === 'POST' && l.status === 204 && server.logs.indexOf(l) >= since);
    assert.ok(!server.logs.slice(since).some((l) => l.msg === 'Request finished' && l.method === 'PATCH'), 'no PATCH was sent');

    const other = slotFor(`${slotDir()}/override-delete.bin`, 10);
    const created = await create(other.url, 10);
    assert.equal(created.status, 201, created.text);
    const location = pathOf(String(created.headers.location));
    const plainPost = await rawRequest(server.baseUrl, location, { method: 'POST', headers: { ...TUS, 'Upload-Length': '10', 'Upload-Slot': other.url } });
    assert.equal(plainPost.status, 405, plainPost.text);
    assert.match(String(plainPost.headers.allow), /PATCH/);
    const deleted = await rawRequest(server.baseUrl, location, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'DELETE' } });
    assert.equal(deleted.status, 204, deleted.text);
    assert.equal((await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: TUS })).status, 404);
  });

  it('an empty Upload-Metadata header reads as no metadata (tuspy sends one), not as a malformed header', async () => {
    const slot = slotFor(`${slotDir()}/no-metadata.bin`, 3);
    const created = await create(slot.url, 3, { 'Upload-Metadata': '' });
    assert.equal(created.status, 201, created.text);
    const location = pathOf(String(created.headers.location));
    const head = await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 200);
    assert.equal(head.headers['upload-metadata'], undefined);
    const patch = await rawRequest(server.baseUrl, location, { method: 'PATCH', headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, body: Buffer.from('abc') });
    assert.equal(patch.status, 204, patch.text);
  });

  it('an empty file is published: a creation of length 0, with a repeated 0-byte PATCH, and through tus-js-client', async () => {
    const slot = slotFor(`${slotDir()}/empty.txt`, 0);
    const created = await create(slot.url, 0);
    assert.equal(created.status, 201, created.text);
    const got = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
    assert.equal(got.status, 200, got.text);
    assert.equal(got.body.length, 0);
    const again = await rawRequest(server.baseUrl, pathOf(String(created.headers.location)), {
      method: 'PATCH',
      headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      body: Buffer.alloc(0),
    });
    assert.ok(again.status === 204 || again.status === 409, `a repeated last request: ${again.status} ${again.text}`);
    assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).status, 200);

    const viaClient = slotFor(`${slotDir()}/empty2.txt`, 0);
    await tusUpload(Buffer.alloc(0), { endpoint: `${server.baseUrl}/files/`, headers: { 'Upload-Slot': viaClient.url } });
    const got2 = await rawRequest(server.baseUrl, pathOf(viaClient.getUrl));
    assert.equal(got2.status, 200, got2.text);
    assert.equal(got2.body.length, 0);
  });

  it('a PATCH whose socket is destroyed mid-body keeps the bytes; HEAD reports them and the upload resumes', async () => {
    const data = randomData(4 * 1024 * 1024);
    const slot = slotFor(`${slotDir()}/resume.bin`, data.length);
    const created = await create(slot.url, data.length);
    assert.equal(created.status, 201);
    const location = pathOf(String(created.headers.location));
    const sent = 1024 * 1024 + 123;
    const finished = server.waitForLog((l) => l.msg === 'Request finished' && l.method === 'PATCH');
    await new Promise<void>((resolve) => {
      void rawRequest(server.baseUrl, location, {
        method: 'PATCH',
        headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': data.length },
        onRequest: (req) => {
          req.on('error', () => resolve());
          req.write(data.subarray(0, sent), () => setTimeout(() => req.destroy(), 50));
        },
      }).catch(() => resolve());
    });
    await finished;
    const head = await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 200);
    const offset = Number(head.headers['upload-offset']);
    assert.ok(offset > 0 && offset <= sent, `offset ${offset} kept of ${sent} sent`);
    const rest = await rawRequest(server.baseUrl, location, {
      method: 'PATCH',
      headers: { ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
      body: data.subarray(offset),
    });
    assert.equal(rest.status, 204, rest.text);
    assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
  });

  it('a PUT and a tus upload of the same slot cannot both publish', async () => {
    const tusData = randomData(10_000);
    const putData = randomData(10_000);
    const slot = slotFor(`${slotDir()}/race.bin`, 10_000);
    const created = await create(slot.url, 10_000);
    const location = pathOf(String(created.headers.location));
    const patchHeaders = (offset: number) => ({ ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' });
    assert.equal((await rawRequest(server.baseUrl, location, { method: 'PATCH', headers: patchHeaders(0), body: tusData.subarray(0, 5000) })).status, 204);
    assert.equal((await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body: putData })).status, 201);
    const last = await rawRequest(server.baseUrl, location, { method: 'PATCH', headers: patchHeaders(5000), body: tusData.subarray(5000) });
    assert.equal(last.status, 409);
    assert.equal(last.json().code, 'ERR_FILE_EXISTS');
    assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(putData));
    assert.equal((await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: TUS })).status, 404, 'the losing upload is gone');
    // And a new creation for the taken slot is refused up front.
    assert.equal((await create(slot.url, 10_000)).status, 409);
  });

  it('finished uploads never answer 410 and survive the expiry sweep; unfinished ones expire', async () => {
    const own = await startServer({ config: `[tus]\nexpiration = "2s"\n${await backend.config()}` });
    try {
      const slotAt = (path: string, size: number) => signSlotUrl({ secret: TEST_SECRET, path, baseUrl: own.uploadUrl, size });
      const done = slotAt(`${slotDir()}/done.bin`, 3);
      const doneRes = await rawRequest(own.baseUrl, '/files/', {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': '3', 'Upload-Slot': done.url, 'Content-Type': 'application/offset+octet-stream' },
        body: 'abc',
      });
      assert.equal(doneRes.status, 201);
      const since = own.logs.length;
      const pending = await rawRequest(own.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': '3', 'Upload-Slot': slotAt(`${slotDir()}/pending.bin`, 3).url } });
      const pendingUrl = pathOf(String(pending.headers.location));
      // expiration is 2s and the sweep runs every 2s: wait for the sweep that removes the pending one
      // (not one that ran before it was created).
      for (let seen = since; ; ) {
        const sweep = await own.waitForLog((l) => l.msg === 'Expired unfinished uploads removed' && own.logs.indexOf(l) >= seen);
        if ((await rawRequest(own.baseUrl, pendingUrl, { method: 'HEAD', headers: TUS })).status === 404) break;
        seen = own.logs.indexOf(sweep) + 1;
      }
      const head = await rawRequest(own.baseUrl, pathOf(String(doneRes.headers.location)), { method: 'HEAD', headers: TUS });
      assert.equal(head.status, 200);
      assert.equal(head.headers['upload-offset'], '3');
      assert.equal(head.headers['upload-length'], '3');
      assert.equal((await rawRequest(own.baseUrl, pathOf(done.getUrl))).text, 'abc');
    } finally {
      await own.dispose();
    }
  });

  it('termination removes an unfinished upload; DELETE of a finished one deletes its file and retires the slot', async () => {
    const created = await create(slotFor(`${slotDir()}/t.bin`, 10).url, 10);
    const location = pathOf(String(created.headers.location));
    assert.equal((await rawRequest(server.baseUrl, location, { method: 'DELETE', headers: TUS })).status, 204);
    assert.equal((await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: TUS })).status, 404);
    const slot = slotFor(`${slotDir()}/t2.bin`, 1);
    const fin = await rawRequest(server.baseUrl, '/files/', {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': '1', 'Upload-Slot': slot.url, 'Content-Type': 'application/offset+octet-stream' },
      body: 'x',
    });
    assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).text, 'x');
    const del = await rawRequest(server.baseUrl, pathOf(String(fin.headers.location)), { method: 'DELETE', headers: TUS });
    if (backend.name === 's3') {
      // No tombstones on S3: the file stays and the refusal says so.
      assert.equal(del.status, 403);
      assert.equal(del.json().code, 'ERR_DELETE_FINISHED_DISABLED');
      assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).text, 'x');
      return;
    }
    assert.equal(del.status, 204);
    const get = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
    assert.equal(get.status, 410);
    assert.equal(get.json().code, 'ERR_GONE');
    const put = await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body: 'x' });
    assert.equal(put.json().code, 'ERR_GONE', 'the slot cannot be used again (PUT)');
    assert.equal((await create(slot.url, 1)).json().code, 'ERR_GONE', 'nor by a tus creation');
    assert.equal((await rawRequest(server.baseUrl, pathOf(String(fin.headers.location)), { method: 'HEAD', headers: TUS })).status, 404);
  });

  it('OPTIONS advertises the tus extensions and checksum algorithms; GET of an unknown upload id is 404', async () => {
    const res = await rawRequest(server.baseUrl, '/files/', { method: 'OPTIONS' });
    assert.ok(res.status === 204 || res.status === 200);
    const ext = String(res.headers['tus-extension']).split(',').map((s) => s.trim()).sort();
    const joins = backend.name === 'file' ? ['concatenation'] : []; // S3 cannot join uploads (s3-tus-door-store.ts)
    assert.deepEqual(ext, ['checksum', ...joins, 'creation', 'creation-defer-length', 'creation-with-upload', 'expiration', 'termination'].sort());
    const algorithms = String(res.headers['tus-checksum-algorithm']).split(',');
    for (const a of ['sha1', 'sha256', 'md5']) assert.ok(algorithms.includes(a), `${a} in ${algorithms.join(',')}`);
    if (backend.name === 's3') {
      const slot = slotFor(`${slotDir()}/parts.bin`, 10);
      const refused = await create(slot.url, 5, { 'Upload-Concat': 'partial' });
      assert.equal(refused.status, 400);
      assert.equal(refused.json().code, 'ERR_CONCAT_UNSUPPORTED');
    }
    const unknown = await rawRequest(server.baseUrl, '/files/abc');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json().code, 'ERR_NOT_FOUND');
  });

  it('logs one line per request without the query string, and never the secret', async () => {
    const slot = slotFor(`${slotDir()}/log.bin`, 4);
    await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body: 'abcd' });
    const line = await server.waitForLog((l) => l.msg === 'Request finished' && l.method === 'PUT' && String(l.path).endsWith('/log.bin'));
    assert.equal(line.status, 201);
    assert.ok(typeof line.durationMs === 'number' && typeof line.bytesIn === 'number' && typeof line.bytesOut === 'number');
    assert.ok(!String(line.path).includes('?'));
    assert.ok(!server.output().includes(TEST_SECRET));
    assert.ok(!server.output().includes(slot.query.get('v')!), 'no signature in the logs');
  });
});
