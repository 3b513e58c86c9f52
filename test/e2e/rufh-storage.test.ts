/**
 * IETF Resumable Uploads under storage pressure (issue 21 item 5, beside storage-pressure.test.ts
 * for PUT and tus): the data directory on a small tmpfs with a filler file. An upgraded PUT, a
 * careful creation or an append that cannot fit is refused with 507 before any body byte (and
 * no 104, no resource); a store running full mid-body answers 507 (never 500), keeps the bytes
 * at a clean offset, and the upload resumes byte-identical once space is back. Needs root (mount).
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { requestWithContinue } from '../helpers/expect-continue.js';
import { pathOf, randomData, rawRequest, slotDir, type RawResponse } from '../helpers/http.js';
import { rufhRequest, type RufhExchange } from '../helpers/rufh-client.js';
import { TEST_SECRET, startServer, type LogLine, type SpawnedServer } from '../helpers/server.js';
import { mountSmallDisk, type SmallDisk } from '../helpers/tmpfs.js';

const MiB = 1 << 20;
const KiB = 1 << 10;
const RESERVE = MiB;
const PARTIAL = 'application/partial-upload';
const V8 = { 'Upload-Draft-Interop-Version': '8' };

function assert507(status: number | undefined, headers: Record<string, unknown>, body: string, what: string): void {
  assert.equal(status, 507, `${what}: ${status} ${body}`);
  assert.match(String(headers['content-type']), /^application\/json/, what);
  assert.equal((JSON.parse(body) as { code: string }).code, 'ERR_INSUFFICIENT_STORAGE', what);
  assert.ok(Number(headers['retry-after']) > 0, `${what}: Retry-After`);
}
const assert507Raw = (res: RawResponse, what: string) => assert507(res.status, res.headers, res.text, what);
const assert507Exchange = (res: RufhExchange, what: string) => assert507(res.final?.status, res.final?.headers ?? {}, res.final?.body ?? '', what);

describe('IETF Resumable Uploads under storage pressure (min_free_space = 1 MiB, 32 MiB tmpfs)', () => {
  let disk: SmallDisk;
  let server: SpawnedServer;
  const slot = (name: string, size: number) => signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/${name}`, size, baseUrl: server.uploadUrl }).url;
  const tusRecords = async () => (await readdir(join(server.dataDir, 'tus')).catch(() => [] as string[])).filter((f) => f.endsWith('.json'));
  const no500 = (l: LogLine) => l.msg === 'Request finished' && Number(l.status) >= 500 && l.status !== 507 && l.status !== 503;
  const created = () => {
    const seen = new Set(server.logs);
    return server.waitForLog((l) => l.msg === 'Resumable upload resource created' && !seen.has(l), 20_000).then((l) => String(l.uploadId));
  };

  before(async () => {
    disk = await mountSmallDisk(32 * MiB);
    server = await startServer({
      dataDir: join(disk.dir, 'data'),
      // The test client is on loopback, which [rufh] counts as a proxy by default.
      config: '[storage]\nmin_free_space = "1MiB"\n[tus]\nlock_drain_timeout = "1s"\n[rufh]\nproxy_addresses = []\n',
    });
  });
  after(async () => {
    await server?.dispose();
    await disk?.unmount();
  });

  it('refused with 507 before the body: upgraded PUT (no 100, no 104, no resource), careful creation, an append', async () => {
    await disk.leaveFree(RESERVE + 2 * MiB);
    const records = (await tusRecords()).length;
    const data = randomData(4 * MiB);
    const put = await rufhRequest(server.baseUrl, {
      method: 'PUT',
      target: pathOf(slot('big.bin', data.length)),
      headers: { ...V8, 'Upload-Complete': '?1', 'Upload-Length': String(data.length), 'Content-Length': String(data.length), Expect: '100-continue' },
      body: data,
    });
    assert.deepEqual(put.interim, [], 'no 100 Continue, no 104');
    assert507Exchange(put, 'upgraded PUT');
    const post = await rufhRequest(server.baseUrl, { method: 'POST', target: '/files/', headers: { 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?0', 'Upload-Length': String(data.length), 'Upload-Slot': slot('big2.bin', data.length) } });
    assert507Exchange(post, 'careful creation');
    assert.equal((await tusRecords()).length, records, 'no resource');

    // An append: the rest of a resource no longer fits once the disk filled up.
    await disk.unfill();
    const small = randomData(64 * KiB);
    const first = await rufhRequest(server.baseUrl, { method: 'POST', target: '/files/', headers: { ...V8, 'Upload-Complete': '?0', 'Upload-Length': String(small.length + 3 * MiB), 'Upload-Slot': slot('grows.bin', small.length + 3 * MiB) }, body: small });
    assert.equal(first.final?.status, 201, first.final?.body);
    const location = pathOf(first.final!.headers.location!);
    await disk.leaveFree(RESERVE + MiB);
    const append = await requestWithContinue(server.baseUrl, location, { method: 'PATCH', headers: { ...V8, 'Upload-Complete': '?1', 'Upload-Offset': small.length, 'Content-Type': PARTIAL }, body: randomData(3 * MiB) });
    assert.equal(append.continued, false, 'not a body byte was asked for');
    assert507Raw(append.res, 'append');
    const head = await rufhRequest(server.baseUrl, { method: 'HEAD', target: location, headers: V8 });
    assert.equal(head.final!.headers['upload-offset'], String(small.length));
    await disk.unfill();
  });

  it('an upgraded PUT whose store runs full mid-body: 104, then 507 JSON; bytes kept at a clean offset; HEAD + PATCH complete it once space is back', async () => {
    await disk.leaveFree(RESERVE + 8 * MiB);
    const data = randomData(4 * MiB);
    const url = slot('mid-put.jpg', data.length);
    const id = created();
    const put = await requestWithContinue(server.baseUrl, pathOf(url), {
      method: 'PUT',
      headers: { ...V8, 'Upload-Complete': '?1', 'Upload-Length': data.length },
      body: data,
      beforeBody: () => disk.leaveFree(RESERVE + 256 * KiB), // the resource exists, its 104 is out: the disk fills
    });
    assert.equal(put.continued, true);
    assert507Raw(put.res, 'upgraded PUT mid-body');
    const uploadId = await id;
    await server.waitForLog((l) => l.msg === 'Upload stopped: storage full, received bytes kept' && l.uploadId === uploadId);
    const location = `/files/${uploadId}`;
    const head = await rufhRequest(server.baseUrl, { method: 'HEAD', target: location, headers: V8 });
    assert.equal(head.final?.status, 204);
    const offset = Number(head.final!.headers['upload-offset']);
    assert.ok(offset > 0 && offset < data.length, `offset ${offset}`);
    assert.equal((await stat(join(server.dataDir, 'tus', uploadId))).size, offset, 'the data file and the offset agree');
    assert.ok((await readFile(join(server.dataDir, 'tus', uploadId))).equals(data.subarray(0, offset)), 'the stored bytes are the sent ones');

    await disk.unfill();
    const rest = await rufhRequest(server.baseUrl, { method: 'PATCH', target: location, headers: { ...V8, 'Upload-Complete': '?1', 'Upload-Offset': String(offset), 'Content-Type': PARTIAL }, body: data.subarray(offset) });
    assert.equal(rest.final?.status, 201, rest.final?.body);
    await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === uploadId);
    assert.ok((await rawRequest(server.baseUrl, pathOf(url).split('?')[0]!)).body.equals(data));
    assert.equal(server.logs.some(no500), false);
  });

  it('an append whose store runs full mid-body: 507 JSON, clean offset, resumes byte-identical', async () => {
    await disk.leaveFree(RESERVE + 8 * MiB);
    const data = randomData(4 * MiB);
    const url = slot('mid-patch.bin', data.length);
    const post = await rufhRequest(server.baseUrl, { method: 'POST', target: '/files/', headers: { ...V8, 'Upload-Complete': '?0', 'Upload-Length': String(data.length), 'Upload-Slot': url }, body: data.subarray(0, MiB) });
    assert.equal(post.final?.status, 201, post.final?.body);
    const location = pathOf(post.final!.headers.location!);
    const uploadId = location.split('/').pop()!;
    const append = await requestWithContinue(server.baseUrl, location, {
      method: 'PATCH',
      headers: { ...V8, 'Upload-Complete': '?1', 'Upload-Offset': MiB, 'Content-Type': PARTIAL },
      body: data.subarray(MiB),
      beforeBody: () => disk.leaveFree(RESERVE + 256 * KiB),
    });
    assert.equal(append.continued, true);
    assert507Raw(append.res, 'append mid-body');
    const head = await rufhRequest(server.baseUrl, { method: 'HEAD', target: location, headers: V8 });
    const offset = Number(head.final!.headers['upload-offset']);
    assert.ok(offset > MiB && offset < data.length, `offset ${offset}`);
    assert.equal((await stat(join(server.dataDir, 'tus', uploadId))).size, offset);

    await disk.unfill();
    const rest = await rufhRequest(server.baseUrl, { method: 'PATCH', target: location, headers: { ...V8, 'Upload-Complete': '?1', 'Upload-Offset': String(offset), 'Content-Type': PARTIAL }, body: data.subarray(offset) });
    assert.equal(rest.final?.status, 201, rest.final?.body);
    await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === uploadId);
    assert.ok((await rawRequest(server.baseUrl, pathOf(url).split('?')[0]!)).body.equals(data));
    assert.equal(server.logs.some(no500), false);
  });
});
