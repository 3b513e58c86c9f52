/**
 * IETF Resumable Uploads against the spawned server with a raw-socket client that behaves as
 * URLSession does (interop 3 = iOS 17, interop 8 = current iOS): an upgraded slot PUT, the 104,
 * a cut (closed, half-open), HEAD, PATCH of the rest, GET of the slot; every problem type,
 * DELETE, OPTIONS, refused slots (no 104, no resource), plain PUTs (no 1xx ever).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { rufhRequest } from '../helpers/rufh-client.js';
import { storageBackends } from '../helpers/backends.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const KiB = 1024;
const PARTIAL = 'application/partial-upload';

for (const backend of storageBackends()) describe(`IETF Resumable Uploads: upgraded slot PUT (raw socket, URLSession behaviour) [${backend.name}]`, () => {
  let server: SpawnedServer;
  const slotFor = (name: string, size: number) => signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/${name}`, baseUrl: server.uploadUrl, size });
  const tusRecords = () => backend.uploadRecords(server);
  const getSlot = async (url: string) => rawRequest(server.baseUrl, pathOf(url));
  const resourcePath = (location: string) => new URL(location, server.baseUrl).pathname;

  before(async () => {
    // The test client reaches the server on loopback, which [rufh] counts as a proxy by default.
    server = await startServer({ config: `[tus]\nlock_drain_timeout = "1s"\n[rufh]\nproxy_addresses = []\n${await backend.config()}` });
  });
  after(async () => {
    await server?.dispose();
  });

  for (const { interop, cut } of [
    { interop: 8, cut: 'close' as const },
    { interop: 3, cut: 'half-open' as const },
    { interop: 8, cut: 'half-open' as const },
    { interop: 3, cut: 'close' as const },
  ]) {
    it(`interop ${interop}: PUT with the headers gets a 104, cut (${cut}) mid-body, HEAD, PATCH the rest, GET the slot`, async () => {
      const data = randomData(600 * KiB + 7);
      const slot = slotFor(`photo-${interop}-${cut}.jpg`, data.length);
      const headers: Record<string, string> =
        interop === 3
          ? { 'Upload-Draft-Interop-Version': '3', 'Upload-Incomplete': '?0', 'Content-Length': String(data.length) }
          : { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Upload-Length': String(data.length), 'Content-Length': String(data.length) };
      const first = await rufhRequest(server.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers, body: data, cutAfter: 200 * KiB, cut });
      const interim = first.interim.filter((h) => h.status === 104);
      assert.equal(interim.length, 1);
      const location = interim[0]!.headers.location!;
      assert.match(location, /\/files\/[A-Za-z0-9_-]{32}$/);
      if (interop === 8) assert.match(interim[0]!.headers['upload-limit']!, new RegExp(`max-size=${data.length}, max-age=\\d+`));
      else assert.equal(interim[0]!.headers['upload-limit'], undefined);

      // HEAD (a new connection; for the half-open case it takes the upload over from the silent body)
      const head = await rufhRequest(server.baseUrl, { method: 'HEAD', target: resourcePath(location), headers: { 'Upload-Draft-Interop-Version': String(interop) } });
      first.socket?.destroy();
      assert.equal(head.final?.status, 204);
      const offset = Number(head.final!.headers['upload-offset']);
      assert.ok(offset > 0 && offset <= 200 * KiB, `offset ${offset}`);
      assert.equal(head.final!.headers['cache-control'], 'no-store');
      if (interop === 3) {
        assert.equal(head.final!.headers['upload-incomplete'], '?1');
        assert.equal(head.final!.headers['upload-length'], undefined);
      } else {
        assert.equal(head.final!.headers['upload-complete'], '?0');
        assert.equal(head.final!.headers['upload-length'], String(data.length));
        assert.match(head.final!.headers['upload-limit']!, /max-size=/);
      }
      if (cut === 'half-open') {
        // This upload's line: an earlier half-open case logged the same message for its own upload.
        const id = location.split('/').pop();
        const ended = await server.waitForLog((l) => l.msg === 'Resumable upload body ended early; received bytes kept' && l.reason === 'takeover' && l.uploadId === id, 10_000);
        assert.equal(ended.offset, offset);
      }

      const rest = data.subarray(offset);
      const patchHeaders: Record<string, string> =
        interop === 3
          ? { 'Upload-Draft-Interop-Version': '3', 'Upload-Incomplete': '?0', 'Upload-Offset': String(offset) }
          : { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Upload-Offset': String(offset), 'Content-Type': PARTIAL };
      const patch = await rufhRequest(server.baseUrl, { method: 'PATCH', target: resourcePath(location), headers: patchHeaders, body: rest });
      assert.equal(patch.final?.status, 201, patch.final?.body);
      assert.equal(patch.final!.headers['upload-offset'], String(data.length));
      assert.equal(patch.interim.length, 0);

      const got = await getSlot(slot.url);
      assert.equal(got.status, 200);
      assert.equal(sha256(got.body), sha256(data));
    });
  }

  it('a whole PUT with the headers and no cut: 104, then 201 as a PUT, published', async () => {
    const data = randomData(50 * KiB);
    const slot = slotFor('whole.bin', data.length);
    const res = await rufhRequest(server.baseUrl, {
      method: 'PUT',
      target: pathOf(slot.url),
      headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Upload-Length': String(data.length), Expect: '100-continue' },
      body: data,
    });
    assert.deepEqual(res.interim.map((h) => h.status), [100, 104]);
    assert.equal(res.final?.status, 201);
    assert.equal(res.final!.headers['upload-complete'], '?1');
    assert.equal(sha256((await getSlot(slot.url)).body), sha256(data));
  });

  it('a plain PUT and one with an unknown interop version see no 1xx and are stored as today', async () => {
    const plainHeaders: Array<Record<string, string>> = [{}, { 'Upload-Draft-Interop-Version': '99', 'Upload-Complete': '?0' }];
    for (const extra of plainHeaders) {
      const data = randomData(10 * KiB);
      const slot = slotFor('plain.bin', data.length);
      const records = await tusRecords();
      const res = await rufhRequest(server.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: extra, body: data });
      assert.deepEqual(res.interim, []);
      assert.equal(res.final?.status, 201);
      assert.equal(await tusRecords(), records, 'no upload resource');
      assert.equal(sha256((await getSlot(slot.url)).body), sha256(data));
    }
  });

  it('unsigned and expired slots: refused as a PUT, no 104, no resource', async () => {
    const records = await tusRecords();
    const data = randomData(1000);
    const unsigned = `/upload/${slotDir()}/x.bin`;
    const expired = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/old.bin`, baseUrl: server.uploadUrl, scheme: 'v3', expires: Math.floor(Date.now() / 1000) - 60 });
    for (const target of [unsigned, pathOf(expired.url)]) {
      const res = await rufhRequest(server.baseUrl, { method: 'PUT', target, headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1' }, body: data });
      assert.deepEqual(res.interim, []);
      assert.equal(res.final?.status, 403);
    }
    assert.equal(await tusRecords(), records);
  });

  it('problem types: mismatching-upload-offset, completed-upload, inconsistent-upload-length; 415; 413 with Upload-Limit', async () => {
    const data = randomData(40 * KiB);
    const slot = slotFor('problems.bin', data.length);
    const v = { 'Upload-Draft-Interop-Version': '8' };
    const first = await rufhRequest(server.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: { ...v, 'Upload-Complete': '?1', 'Upload-Length': String(data.length), 'Content-Length': String(data.length) }, body: data, cutAfter: 10 * KiB });
    const path = resourcePath(first.interim.find((h) => h.status === 104)!.headers.location!);
    const head = await rufhRequest(server.baseUrl, { method: 'HEAD', target: path, headers: v });
    const offset = Number(head.final!.headers['upload-offset']);

    const patch = (headers: Record<string, string>, body: Buffer) => rufhRequest(server.baseUrl, { method: 'PATCH', target: path, headers: { ...v, 'Content-Type': PARTIAL, ...headers }, body });
    const mismatch = await patch({ 'Upload-Offset': String(offset + 1), 'Upload-Complete': '?0' }, Buffer.from('x'));
    assert.equal(mismatch.final?.status, 409);
    assert.equal(mismatch.final!.headers['content-type'], 'application/problem+json');
    const problem = JSON.parse(mismatch.final!.body) as Record<string, unknown>;
    assert.equal(problem.type, 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset');
    assert.equal(problem['expected-offset'], offset);
    assert.equal(problem['provided-offset'], offset + 1);
    assert.equal(mismatch.final!.headers['upload-offset'], String(offset));

    const wrongType = await patch({ 'Upload-Offset': String(offset), 'Upload-Complete': '?0', 'Content-Type': 'application/octet-stream' }, Buffer.from('x'));
    assert.equal(wrongType.final?.status, 415);

    const inconsistent = await patch({ 'Upload-Offset': String(offset), 'Upload-Complete': '?0', 'Upload-Length': String(data.length + 5) }, Buffer.from('x'));
    assert.equal(inconsistent.final?.status, 400);
    assert.equal((JSON.parse(inconsistent.final!.body) as { type: string }).type, 'https://iana.org/assignments/http-problem-types#inconsistent-upload-length');

    const tooLarge = await patch({ 'Upload-Offset': String(offset), 'Upload-Complete': '?0' }, randomData(data.length));
    assert.equal(tooLarge.final?.status, 413);
    assert.match(tooLarge.final!.headers['upload-limit']!, new RegExp(`max-size=${data.length}`));

    const done = await patch({ 'Upload-Offset': String(offset), 'Upload-Complete': '?1' }, data.subarray(offset));
    assert.equal(done.final?.status, 201);
    const again = await patch({ 'Upload-Offset': String(data.length), 'Upload-Complete': '?1' }, Buffer.alloc(0));
    assert.equal(again.final?.status, 400);
    assert.equal((JSON.parse(again.final!.body) as { type: string }).type, 'https://iana.org/assignments/http-problem-types#completed-upload');
    const headDone = await rufhRequest(server.baseUrl, { method: 'HEAD', target: path, headers: v });
    assert.equal(headDone.final!.headers['upload-complete'], '?1');
    assert.equal(headDone.final!.headers['upload-offset'], String(data.length));
    assert.equal(sha256((await getSlot(slot.url)).body), sha256(data));
  });

  it('an append declaring a length past max_upload_size is 413 before any room is counted, and the upload goes on', async () => {
    const v3 = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/deferred.bin`, baseUrl: server.uploadUrl, size: 0, scheme: 'v3', expires: Math.floor(Date.now() / 1000) + 600 });
    const v = { 'Upload-Draft-Interop-Version': '8' };
    const created = await rufhRequest(server.baseUrl, { method: 'POST', target: '/files/', headers: { ...v, 'Upload-Complete': '?0', 'Upload-Slot': v3.url } });
    assert.equal(created.final?.status, 201, created.final?.body);
    const path = resourcePath(created.final!.headers.location!);
    // Past the disk as well: the client's mistake, never a retryable 507.
    const huge = await rufhRequest(server.baseUrl, { method: 'PATCH', target: path, headers: { ...v, 'Upload-Offset': '0', 'Upload-Complete': '?0', 'Upload-Length': '85000000000', 'Content-Type': PARTIAL }, body: Buffer.from('hello') });
    assert.equal(huge.final?.status, 413, huge.final?.body);
    const done = await rufhRequest(server.baseUrl, { method: 'PATCH', target: path, headers: { ...v, 'Upload-Offset': '0', 'Upload-Complete': '?1', 'Upload-Length': '5', 'Content-Type': PARTIAL }, body: Buffer.from('hello') });
    assert.equal(done.final?.status, 201, done.final?.body);
    assert.equal((await getSlot(v3.url)).body.toString(), 'hello');
  });

  it('DELETE cancels the upload and frees the slot; OPTIONS announces Accept-Patch and Upload-Limit', async () => {
    const data = randomData(30 * KiB);
    const slot = slotFor('cancel.bin', data.length);
    const v = { 'Upload-Draft-Interop-Version': '8' };
    const put = { ...v, 'Upload-Complete': '?1', 'Upload-Length': String(data.length), 'Content-Length': String(data.length) };
    const first = await rufhRequest(server.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: put, body: data, cutAfter: 5 * KiB });
    const path = resourcePath(first.interim.find((h) => h.status === 104)!.headers.location!);
    const del = await rufhRequest(server.baseUrl, { method: 'DELETE', target: path, headers: v });
    assert.equal(del.final?.status, 204);
    assert.equal((await rufhRequest(server.baseUrl, { method: 'HEAD', target: path, headers: v })).final?.status, 404);
    // The slot is free: a new upgraded PUT creates a new resource and completes.
    const second = await rufhRequest(server.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: put, body: data });
    assert.notEqual(resourcePath(second.interim.find((h) => h.status === 104)!.headers.location!), path);
    assert.equal(second.final?.status, 201);

    const options = await rufhRequest(server.baseUrl, { method: 'OPTIONS', target: '/files/', headers: v });
    assert.equal(options.final?.status, 204);
    assert.match(options.final!.headers['accept-patch']!, /application\/partial-upload/);
    assert.match(options.final!.headers['upload-limit']!, /max-size=\d+, max-age=86400/);
    const slotOptions = await rufhRequest(server.baseUrl, { method: 'OPTIONS', target: `/upload/${slotDir()}/any.bin`, headers: v });
    assert.equal(slotOptions.final?.status, 204);
    assert.match(slotOptions.final!.headers['upload-limit'] ?? '', /max-size=\d+/, 'a slot URL, the target of an upgraded PUT, says its limits too');
  });

  it('a repeated upgraded PUT for a slot with an unfinished upload is sent to resume it (same Location), then completes', async () => {
    const data = randomData(80 * KiB);
    const slot = slotFor('again.bin', data.length);
    const put = { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Upload-Length': String(data.length), 'Content-Length': String(data.length) };
    const first = await rufhRequest(server.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: put, body: data, cutAfter: 20 * KiB });
    const location = first.interim.find((h) => h.status === 104)!.headers.location!;
    const again = await rufhRequest(server.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: put, body: data });
    assert.deepEqual(again.interim.map((h) => [h.status, h.headers.location]), [[104, location]]);
    assert.equal(again.final, null, 'no final answer: the client resumes');
    const head = await rufhRequest(server.baseUrl, { method: 'HEAD', target: resourcePath(location), headers: { 'Upload-Draft-Interop-Version': '8' } });
    const offset = Number(head.final!.headers['upload-offset']);
    const patch = await rufhRequest(server.baseUrl, {
      method: 'PATCH',
      target: resourcePath(location),
      headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Upload-Offset': String(offset), 'Content-Type': PARTIAL },
      body: data.subarray(offset),
    });
    assert.equal(patch.final?.status, 201);
    assert.equal(sha256((await getSlot(slot.url)).body), sha256(data));
  });

  for (const [what, other] of [
    ['another file of the same length (a re-encoded photo)', (data: Buffer) => randomData(data.length)],
    ['the same file with one byte changed inside the stored part', (data: Buffer) => Buffer.concat([data.subarray(0, 5), Buffer.from([data[5]! ^ 1]), data.subarray(6)])],
    ['a file of another length', (data: Buffer) => randomData(data.length + 1000)],
  ] as const) {
    it(`a repeated upgraded PUT carrying ${what} starts over at a new resource and publishes that file, never a splice`, async () => {
      const data = randomData(80 * KiB);
      const second = other(data);
      const name = `${slotDir()}/again-other-${second.length}-${second[5]}.bin`;
      // v binds the size: a file of another length needs a slot that does not (v3, expiry only).
      const slot = second.length === data.length
        ? signSlotUrl({ secret: TEST_SECRET, path: name, baseUrl: server.uploadUrl, size: data.length })
        : signSlotUrl({ secret: TEST_SECRET, path: name, baseUrl: server.uploadUrl, scheme: 'v3', expires: Math.floor(Date.now() / 1000) + 600 });
      const headers = (body: Buffer) => ({ 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Upload-Length': String(body.length), 'Content-Length': String(body.length) });
      const first = await rufhRequest(server.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: headers(data), body: data, cutAfter: 20 * KiB });
      const oldLocation = first.interim.find((h) => h.status === 104)!.headers.location!;
      const again = await rufhRequest(server.baseUrl, { method: 'PUT', target: pathOf(slot.url), headers: headers(second), body: second });
      const interim = again.interim.filter((h) => h.status === 104);
      assert.equal(interim.length, 1);
      assert.notEqual(interim[0]!.headers.location, oldLocation, 'a new resource');
      assert.equal(again.final?.status, 201, again.final?.body);
      assert.equal(sha256((await getSlot(slot.url)).body), sha256(second));
      const old = await rufhRequest(server.baseUrl, { method: 'HEAD', target: resourcePath(oldLocation), headers: { 'Upload-Draft-Interop-Version': '8' } });
      assert.equal(old.final?.status, 404, 'the old resource is gone');
    });
  }

  it('a creation or an append without Upload-Complete is refused before anything is stored (400 naming the header)', async () => {
    const data = randomData(4 * KiB);
    const slot = slotFor('no-complete.bin', data.length);
    const refused = await rufhRequest(server.baseUrl, { method: 'POST', target: '/files/', headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Length': String(data.length), 'Upload-Slot': slot.url } });
    assert.equal(refused.final?.status, 400);
    assert.match(refused.final!.body, /Upload-Complete/);
    assert.equal(refused.final!.headers.location, undefined, 'no resource was made');
    const created = await rufhRequest(server.baseUrl, {
      method: 'POST',
      target: '/files/',
      headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?0', 'Upload-Length': String(data.length), 'Upload-Slot': slot.url },
    });
    assert.equal(created.final?.status, 201);
    const path = resourcePath(created.final!.headers.location!);
    const patch = await rufhRequest(server.baseUrl, { method: 'PATCH', target: path, headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Offset': '0', 'Content-Type': PARTIAL }, body: data.subarray(0, 100) });
    assert.equal(patch.final?.status, 400);
    assert.match(patch.final!.body, /Upload-Complete/);
    const head = await rufhRequest(server.baseUrl, { method: 'HEAD', target: path, headers: { 'Upload-Draft-Interop-Version': '8' } });
    assert.equal(head.final!.headers['upload-offset'], '0', 'nothing stored');
    const done = await rufhRequest(server.baseUrl, { method: 'PATCH', target: path, headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1;a', 'Upload-Offset': '0', 'Content-Type': PARTIAL }, body: data });
    assert.equal(done.final?.status, 201, 'a boolean with a parameter is a boolean');
    assert.equal(sha256((await getSlot(slot.url)).body), sha256(data));
  });

  it('an upgraded PUT declaring two lengths that disagree is 400; one sent in parts on a size-binding slot without Upload-Length is 411 naming Upload-Length', async () => {
    const data = randomData(5000);
    const slot = slotFor('two-lengths.bin', data.length);
    const twoLengths = await rufhRequest(server.baseUrl, {
      method: 'PUT',
      target: pathOf(slot.url),
      headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Upload-Length': '5005', 'Content-Length': String(data.length) },
      body: data,
    });
    assert.equal(twoLengths.final?.status, 400, twoLengths.final?.body);
    assert.match(twoLengths.final!.body, /ERR_UPLOAD_LENGTH_INCONSISTENT/);
    const inParts = await rufhRequest(server.baseUrl, {
      method: 'PUT',
      target: pathOf(slot.url),
      headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?0', 'Content-Length': '1000' },
      body: data.subarray(0, 1000),
    });
    assert.equal(inParts.final?.status, 411);
    assert.match(inParts.final!.body, /Upload-Length/);
  });

  it('CORS: a browser on another origin passes the preflight and reads Location, Upload-Offset, Upload-Complete and Upload-Limit', async () => {
    const origin = 'https://chat.example';
    const allows = (v: unknown) => v === '*' || v === origin;
    const preflight = await rawRequest(server.baseUrl, '/files/', {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'upload-complete, upload-draft-interop-version, upload-length, upload-slot' },
    });
    assert.equal(preflight.status, 204);
    assert.ok(allows(preflight.headers['access-control-allow-origin']));
    const allowed = String(preflight.headers['access-control-allow-headers']).toLowerCase();
    for (const h of ['upload-complete', 'upload-draft-interop-version', 'upload-length', 'upload-offset']) assert.ok(allowed.includes(h), `${h} in ${allowed}`);
    const data = randomData(2 * KiB);
    const slot = slotFor('cors.bin', data.length);
    const created = await rufhRequest(server.baseUrl, {
      method: 'POST',
      target: '/files/',
      headers: { Origin: origin, 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?0', 'Upload-Length': String(data.length), 'Upload-Slot': slot.url },
    });
    assert.equal(created.final?.status, 201);
    assert.ok(allows(created.final!.headers['access-control-allow-origin']));
    const exposed = String(created.final!.headers['access-control-expose-headers']).toLowerCase();
    for (const h of ['location', 'upload-offset', 'upload-complete', 'upload-limit']) assert.ok(exposed.includes(h), `${h} in ${exposed}`);
    const path = resourcePath(created.final!.headers.location!);
    const wrongOffset = await rufhRequest(server.baseUrl, { method: 'PATCH', target: path, headers: { Origin: origin, 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?1', 'Upload-Offset': '5', 'Content-Type': PARTIAL }, body: data });
    assert.equal(wrongOffset.final?.status, 409);
    assert.ok(allows(wrongOffset.final!.headers['access-control-allow-origin']), 'a refusal is readable too');
    assert.equal(wrongOffset.final!.headers['upload-complete'], '?0', 'the problem says the resource is incomplete');
    const patch = await rufhRequest(server.baseUrl, { method: 'PATCH', target: path, headers: { Origin: origin, 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?1', 'Upload-Offset': '0', 'Content-Type': PARTIAL }, body: data });
    assert.equal(patch.final?.status, 201);
    assert.ok(allows(patch.final!.headers['access-control-allow-origin']));
  });

  it('careful creation on the tus endpoint: POST with Upload-Complete ?0 answers 201 + Location; tus 1.0 POST unchanged', async () => {
    const data = randomData(20 * KiB);
    const slot = slotFor('careful.bin', data.length);
    const created = await rufhRequest(server.baseUrl, {
      method: 'POST',
      target: '/files/',
      headers: { 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?0', 'Upload-Length': String(data.length), 'Upload-Slot': slot.url },
    });
    assert.equal(created.final?.status, 201);
    assert.equal(created.final!.headers['upload-complete'], '?0');
    assert.equal(created.final!.headers['upload-offset'], '0');
    assert.match(created.final!.headers['upload-limit'] ?? '', /max-size=\d+/, 'an incomplete creation names its limits');
    const path = resourcePath(created.final!.headers.location!);
    const patch = await rufhRequest(server.baseUrl, {
      method: 'PATCH',
      target: path,
      headers: { 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?1', 'Upload-Offset': '0', 'Content-Type': PARTIAL },
      body: data,
    });
    assert.equal(patch.final?.status, 201);
    assert.equal(sha256((await getSlot(slot.url)).body), sha256(data));

    const noSlot = await rufhRequest(server.baseUrl, { method: 'POST', target: '/files/', headers: { 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?0', 'Upload-Length': '10' } });
    assert.equal(noSlot.final?.status, 403);
    const tus = await rufhRequest(server.baseUrl, { method: 'POST', target: '/files/', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '10', 'Upload-Slot': slotFor('t.bin', 10).url } });
    assert.equal(tus.final?.status, 201);
    assert.equal(tus.final!.headers['tus-resumable'], '1.0.0');
  });

  it('one unfinished upload per slot across doors: a second careful creation gets 409, a tus creation is sent to the resource, DELETE frees the slot', async () => {
    const size = 10 * KiB;
    const careful = (slotUrl: string) =>
      rufhRequest(server.baseUrl, { method: 'POST', target: '/files/', headers: { 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?0', 'Upload-Length': String(size), 'Upload-Slot': slotUrl } });
    // Ten slots, each created twice in the same moment: exactly one creation of each wins.
    const slots = Array.from({ length: 10 }, (_, r) => slotFor(`one-${r}.bin`, size));
    const raced = await Promise.all(slots.map(async (s) => Promise.all([careful(s.url), careful(s.url)])));
    for (const pair of raced) {
      assert.deepEqual(pair.map((r) => r.final?.status).sort(), [201, 409], pair.map((r) => `${r.final?.status} ${r.final?.body.toString()}`).join(' | '));
      assert.match(pair.find((r) => r.final?.status === 409)!.final!.body.toString(), /upload/i);
      // The 409 names the slot's resource: a client whose 201 was lost can resume or cancel it.
      const won = pair.find((r) => r.final?.status === 201)!.final!.headers.location!;
      assert.equal(pair.find((r) => r.final?.status === 409)!.final!.headers.location, won);
    }
    const slot = slots[0]!;
    const resource = resourcePath(raced[0]!.find((r) => r.final?.status === 201)!.final!.headers.location!);
    const tus = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(size), 'Upload-Slot': slot.url } });
    assert.equal(tus.status, 200, 'a tus creation of the slot is sent to the unfinished resource');
    assert.equal(resourcePath(String(tus.headers.location)), resource);
    assert.equal((await rufhRequest(server.baseUrl, { method: 'DELETE', target: resource, headers: { 'Upload-Draft-Interop-Version': '6' } })).final?.status, 204);
    const anew = await careful(slot.url);
    assert.equal(anew.final?.status, 201, 'the cancelled resource no longer holds the slot');
    assert.notEqual(resourcePath(anew.final!.headers.location!), resource);
  });

  it('metrics count RUFH requests by interop version', async () => {
    const text = (await rawRequest(server.baseUrl, '/metrics')).text;
    assert.match(text, /hmac_rufh_requests_total\{interop="8",kind="upgrade"\} [1-9]/);
    assert.match(text, /hmac_rufh_requests_total\{interop="3",kind="head"\} [1-9]/);
    assert.match(text, /hmac_uploads_created_total\{protocol="rufh"\} [1-9]/);
  });
});
