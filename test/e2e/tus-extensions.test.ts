/**
 * tus 1.0 as strict clients expect it, over raw HTTP against the spawned server: exact metadata
 * on HEAD (also for records written by an older version), GET/DELETE of finished uploads, the
 * checksum extension (460, offset kept, cut-short chunks discarded), concatenation through
 * slots, and whole-file checksums answered to the client (tus and PUT). Metadata, checksums and
 * whole-file checksums run on both storage backends (helpers/backends.ts); concatenation and the
 * deletion of finished uploads are the file backend's (not offered on S3).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, sha256, slotDir, type RawResponse } from '../helpers/http.js';
import { storageBackends } from '../helpers/backends.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTETS = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const digest = (alg: string, data: Buffer | string) => createHash(alg).update(data).digest('base64');
const parseMetadata = (header: string) =>
  Object.fromEntries(header.split(',').map((pair) => {
    const [k, v] = pair.split(' ');
    return [k, v === undefined || v === '' ? '' : Buffer.from(v, 'base64').toString('utf8')];
  }));

for (const backend of storageBackends()) describe(`tus extensions through slots [${backend.name}]`, () => {
  const fileOnly = backend.name === 'file' ? describe : describe.skip;
  let server: SpawnedServer;
  const slotFor = (path: string, size: number, opts: Partial<Parameters<typeof signSlotUrl>[0]> = {}) =>
    signSlotUrl({ secret: TEST_SECRET, path, baseUrl: server.uploadUrl, size, ...opts });
  const create = (headers: Record<string, string | number>, body?: Buffer | string) =>
    rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, ...headers, ...(body !== undefined && { 'Content-Type': 'application/offset+octet-stream' }) }, ...(body !== undefined && { body }) });
  const createFor = async (slotUrl: string, size: number, extra: Record<string, string | number> = {}) => {
    const res = await create({ 'Upload-Length': size, 'Upload-Slot': slotUrl, ...extra });
    assert.equal(res.status, 201, res.text);
    return pathOf(String(res.headers.location));
  };
  const patch = (location: string, offset: number, body: Buffer | string, extra: Record<string, string | number> = {}) =>
    rawRequest(server.baseUrl, location, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': offset, ...extra }, body });
  const head = (location: string) => rawRequest(server.baseUrl, location, { method: 'HEAD', headers: TUS });
  const offsetOf = async (location: string) => Number((await head(location)).headers['upload-offset']);
  const code = (res: RawResponse) => res.json<{ code: string; requestId?: string }>().code;

  before(async () => {
    server = await startServer({ config: `[tus]\nmax_concat_parts = 3\n${await backend.config()}` });
  });
  after(async () => server?.dispose());

  describe('Upload-Metadata', () => {
    it('HEAD returns exactly the pairs the client sent, non-Latin and empty values included, nothing added', async () => {
      const slot = slotFor(`${slotDir()}/m.bin`, 4);
      const sent = `filename ${b64('Отчёт 年度 ☃.pdf')},filetype ${b64('application/pdf')},empty,note ${b64('x')}`;
      const location = await createFor(slot.url, 4, { 'Upload-Metadata': sent });
      const expected = { filename: 'Отчёт 年度 ☃.pdf', filetype: 'application/pdf', empty: '', note: 'x' };
      const unfinished = await head(location);
      assert.deepEqual(parseMetadata(String(unfinished.headers['upload-metadata'])), expected);
      // A query on the upload URL (a proxy's cache-buster) names the same upload, as at tusd.
      const busted = await head(`${location}?t=1`);
      assert.equal(busted.status, 200);
      assert.equal(busted.headers['upload-offset'], '0');
      assert.equal((await patch(`${location}?t=2`, 0, 'ab')).status, 204);
      assert.equal((await patch(location, 2, 'cd')).status, 204);
      const finished = await head(location);
      assert.deepEqual(parseMetadata(String(finished.headers['upload-metadata'])), expected, 'also once finished and published');
      assert.doesNotMatch(String(finished.headers['upload-metadata']), /hfs-/);
      const none = await createFor(slotFor(`${slotDir()}/n.bin`, 1).url, 1);
      assert.equal((await head(none)).headers['upload-metadata'], undefined, 'no metadata sent: none answered');
    });

    // Records of the previous version exist only in data directories.
    (backend.name === 'file' ? it : it.skip)('uploads written by the previous version (slot in hfs-* metadata) resume, publish, and hide the keys', async () => {
      const id = 'LegacyUpload0123456789abcdefABCD';
      const path = `${slotDir()}/legacy.txt`;
      const dir = join(server.dataDir, 'tus');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, id), 'hello ');
      const metadata = { filename: 'legacy.txt', 'hfs-slot': path, 'hfs-type': 'text/plain' };
      await writeFile(join(dir, `${id}.json`), JSON.stringify({ id, size: 11, offset: 0, metadata, creation_date: new Date().toISOString() }));
      const location = `/files/${id}`;
      const before = await head(location);
      assert.equal(before.headers['upload-offset'], '6');
      assert.equal(before.headers['upload-metadata'], `filename ${b64('legacy.txt')}`);
      assert.equal((await patch(location, 6, 'world')).status, 204);
      const get = await rawRequest(server.baseUrl, `/upload/${path}`);
      assert.equal(get.text, 'hello world');
      assert.equal(get.headers['content-type'], 'text/plain');
    });
  });

  fileOnly('GET and DELETE on the upload URL', () => {
    it('GET serves the published file like the slot URL: whole, Range, validators; unfinished 409; unknown 404', async () => {
      const data = randomData(100_000);
      const slot = slotFor(`${slotDir()}/g.bin`, data.length);
      const location = await createFor(slot.url, data.length);
      const early = await rawRequest(server.baseUrl, location);
      assert.equal(early.status, 409);
      assert.equal(code(early), 'ERR_UPLOAD_NOT_FINISHED');
      assert.ok(early.json().requestId);
      assert.equal((await patch(location, 0, data)).status, 204);
      const whole = await rawRequest(server.baseUrl, location);
      assert.equal(whole.status, 200);
      assert.equal(sha256(whole.body), sha256(data));
      const viaSlot = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
      for (const h of ['etag', 'last-modified', 'content-type', 'content-disposition', 'x-content-type-options']) assert.equal(whole.headers[h], viaSlot.headers[h], h);
      const range = await rawRequest(server.baseUrl, location, { headers: { Range: 'bytes=1000-1999' } });
      assert.equal(range.status, 206);
      assert.equal(range.headers['content-range'], `bytes 1000-1999/${data.length}`);
      assert.ok(range.body.equals(data.subarray(1000, 2000)));
      assert.equal((await rawRequest(server.baseUrl, location, { headers: { 'If-None-Match': String(whole.headers.etag) } })).status, 304);
      assert.equal((await head(location)).headers['upload-offset'], String(data.length), 'HEAD keeps tus semantics');
      const unknown = await rawRequest(server.baseUrl, '/files/NoSuchUpload0123456789');
      assert.equal(unknown.status, 404);
      assert.equal(code(unknown), 'ERR_NOT_FOUND');
    });

    it('DELETE of a finished upload frees its content-store entry unless another file shares it', async () => {
      const data = randomData(5000);
      const hex = createHash('sha256').update(data).digest('hex');
      const entry = join(server.dataDir, 'cas', hex.slice(0, 2), hex);
      const [a, b] = [slotFor(`${slotDir()}/a.bin`, data.length), slotFor(`${slotDir()}/b.bin`, data.length)];
      const locA = await createFor(a.url, data.length);
      const locB = await createFor(b.url, data.length);
      for (const loc of [locA, locB]) assert.equal((await patch(loc, 0, data)).status, 204);
      for (const s of [a, b]) assert.equal((await rawRequest(server.baseUrl, pathOf(s.getUrl))).status, 200);
      assert.equal((await stat(entry)).nlink, 3, 'one content entry, linked by both files');
      assert.equal((await rawRequest(server.baseUrl, locA, { method: 'DELETE', headers: TUS })).status, 204);
      assert.equal((await rawRequest(server.baseUrl, pathOf(b.getUrl))).status, 200, 'the twin stays');
      assert.equal((await stat(entry)).nlink, 2);
      assert.equal((await rawRequest(server.baseUrl, locB, { method: 'DELETE', headers: TUS })).status, 204);
      await assert.rejects(stat(entry), { code: 'ENOENT' }, 'no file links it any more: removed');
      const again = await rawRequest(server.baseUrl, locB, { method: 'DELETE', headers: TUS });
      assert.equal(again.status, 404, 'the upload is gone');
      assert.equal((await rawRequest(server.baseUrl, pathOf(b.getUrl))).status, 410);
    });
  });

  describe('checksum extension', () => {
    it('460 for a wrong chunk, offset kept; the right one is accepted; unknown or malformed headers are 400', async () => {
      const data = Buffer.from('0123456789abcdefghij');
      const location = await createFor(slotFor(`${slotDir()}/c.bin`, data.length).url, data.length);
      assert.equal((await patch(location, 0, data.subarray(0, 10), { 'Upload-Checksum': `sha1 ${digest('sha1', data.subarray(0, 10))}` })).status, 204);
      const wrong = await patch(location, 10, data.subarray(10), { 'Upload-Checksum': `sha256 ${digest('sha256', 'something else')}` });
      assert.equal(wrong.status, 460);
      assert.equal(code(wrong), 'ERR_CHUNK_CHECKSUM_MISMATCH');
      assert.equal(await offsetOf(location), 10, 'the offset stays where the PATCH started');
      assert.equal(code(await patch(location, 10, data.subarray(10), { 'Upload-Checksum': `crc32 ${b64('abcd')}` })), 'ERR_CHECKSUM_UNSUPPORTED');
      assert.equal(code(await patch(location, 10, data.subarray(10), { 'Upload-Checksum': 'md5' })), 'ERR_CHECKSUM_MALFORMED');
      assert.equal(code(await patch(location, 10, data.subarray(10), { 'Upload-Checksum': `md5 ${b64('short')}` })), 'ERR_CHECKSUM_MALFORMED');
      assert.equal(await offsetOf(location), 10);
      assert.equal((await patch(location, 10, data.subarray(10), { 'Upload-Checksum': `md5 ${digest('md5', data.subarray(10))}` })).status, 204);
    });

    it('creation with upload is checked too; a checksummed chunk cut short is discarded whole', async () => {
      const data = randomData(256 * 1024);
      const slot = slotFor(`${slotDir()}/cw.bin`, data.length);
      const bad = await create({ 'Upload-Length': data.length, 'Upload-Slot': slot.url, 'Upload-Checksum': `sha1 ${digest('sha1', 'nope')}` }, data);
      assert.equal(bad.status, 460);
      const location = await createFor(slotFor(`${slotDir()}/cut.bin`, data.length).url, data.length);
      // Declares the whole file, sends half, then the connection drops.
      const cut = await rawRequest(server.baseUrl, location, {
        method: 'PATCH',
        headers: { ...OCTETS, 'Upload-Offset': 0, 'Content-Length': data.length, 'Upload-Checksum': `sha256 ${digest('sha256', data)}` },
        onRequest: (req) => {
          req.write(data.subarray(0, data.length / 2), () => setImmediate(() => req.destroy()));
        },
      }).catch((e: Error) => e);
      assert.ok(cut instanceof Error);
      await server.waitForLog((l) => l.msg === 'Request finished' && l.method === 'PATCH' && l.path === location);
      assert.equal(await offsetOf(location), 0, 'no byte of an unverifiable chunk counts');
    });
  });

  fileOnly('concatenation', () => {
    const partial = (slotUrl: string, size: number, slotLength?: number, extra: Record<string, string | number> = {}) =>
      create({ 'Upload-Concat': 'partial', 'Upload-Length': size, 'Upload-Slot': slotUrl, ...(slotLength !== undefined && { 'Upload-Slot-Length': slotLength }), ...extra });
    const finalOf = (slotUrl: string, locations: string[], extra: Record<string, string | number> = {}) =>
      create({ 'Upload-Concat': `final;${locations.map((l) => `${server.baseUrl}${l}`).join(' ')}`, 'Upload-Slot': slotUrl, ...extra });
    const uploadParts = async (slotUrl: string, total: number, parts: Buffer[]) => {
      const locations: string[] = [];
      for (const part of parts) {
        const res = await partial(slotUrl, part.length, total);
        assert.equal(res.status, 201, res.text);
        const loc = pathOf(String(res.headers.location));
        assert.equal((await head(loc)).headers['upload-concat'], 'partial');
        assert.equal((await patch(loc, 0, part)).status, 204);
        locations.push(loc);
      }
      return locations;
    };

    it('joins partials in order into the slot; HEAD of the final; partials gone once it is admitted', async () => {
      const data = randomData(300_001);
      const slot = slotFor(`${slotDir()}/joined.bin`, data.length, { scheme: 'v2', contentType: 'video/mp4' });
      const parts = [data.subarray(0, 100_000), data.subarray(100_000, 250_000), data.subarray(250_000)];
      const filetype = { 'Upload-Metadata': `filetype ${b64('video/mp4')}` };
      const locations: string[] = [];
      for (const part of parts) {
        const res = await partial(slot.url, part.length, data.length, filetype);
        assert.equal(res.status, 201, res.text);
        locations.push(pathOf(String(res.headers.location)));
      }
      // Parts upload in any order.
      for (const i of [2, 0, 1]) assert.equal((await patch(locations[i]!, 0, parts[i]!)).status, 204);
      assert.equal((await rawRequest(server.baseUrl, locations[0]!)).status, 404, 'a partial is never published alone');
      const final = await finalOf(slot.url, locations, { 'Upload-Metadata': `filename ${b64('joined.bin')},filetype ${b64('video/mp4')}` });
      assert.equal(final.status, 201, final.text);
      const finalLoc = pathOf(String(final.headers.location));
      const h = await head(finalLoc);
      assert.equal(h.headers['upload-offset'], String(data.length));
      assert.equal(h.headers['upload-length'], String(data.length));
      assert.equal(h.headers['upload-concat'], `final;${locations.map((l) => `${server.baseUrl}${l}`).join(' ')}`);
      assert.deepEqual(parseMetadata(String(h.headers['upload-metadata'])), { filename: 'joined.bin', filetype: 'video/mp4' });
      const get = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
      assert.equal(get.headers['content-type'], 'video/mp4');
      assert.equal(sha256(get.body), sha256(data));
      for (const loc of locations) assert.equal((await head(loc)).status, 404, 'partials removed');
      const names = await readdir(join(server.dataDir, 'tus'));
      assert.ok(!names.some((n) => locations.some((l) => l.endsWith(`/${n}`))), 'no partial bytes left');
      // The client repeats the final (its 201 was lost): the same final again, nothing new.
      const repeated = await finalOf(slot.url, locations, { 'Upload-Metadata': `filename ${b64('joined.bin')},filetype ${b64('video/mp4')}` });
      assert.equal(repeated.status, 201, repeated.text);
      assert.equal(pathOf(String(repeated.headers.location)), finalLoc);
      assert.equal(repeated.headers['upload-offset'], String(data.length));
      const otherOrder = await finalOf(slot.url, [locations[1]!, locations[0]!, locations[2]!]);
      assert.ok(otherOrder.status >= 400 && otherOrder.status < 500, 'parts in another order are not that final');
    });

    it('the same final sent twice at once (a client retrying a slow final): both 201 with one Location, the file whole, no dead letter', async () => {
      for (let round = 0; round < 3; round++) {
        const data = randomData(270_000);
        const slot = slotFor(`${slotDir()}/twice.bin`, data.length);
        const locations = await uploadParts(slot.url, data.length, [0, 1, 2].map((i) => data.subarray(i * 90_000, (i + 1) * 90_000))); // max_concat_parts = 3
        const [one, two] = await Promise.all([finalOf(slot.url, locations), finalOf(slot.url, locations)]);
        assert.deepEqual([one.status, two.status], [201, 201], `${one.text} ${two.text}`);
        assert.equal(one.headers.location, two.headers.location);
        const get = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
        assert.equal(get.status, 200);
        assert.equal(sha256(get.body), sha256(data), `round ${round}: the joined file`);
      }
      assert.equal(server.logs.filter((l) => l.msg === 'Job moved to dead letters' || l.code === 'ERR_STORED_SIZE_MISMATCH').length, 0);
    });

    it("a slot's partials are its one upload: no plain upload beside them, no partial beside a plain upload", async () => {
      const data = randomData(2000);
      const slot = slotFor(`${slotDir()}/one.bin`, data.length);
      const [first] = await uploadParts(slot.url, data.length, [data.subarray(0, 1000)]);
      const plain = await create({ 'Upload-Length': data.length, 'Upload-Slot': slot.url });
      assert.equal(plain.status, 409, plain.text);
      assert.equal(code(plain), 'ERR_UPLOAD_EXISTS');
      // Nor an IETF Resumable Uploads resource: careful creation (POST) or an upgraded slot PUT.
      const careful = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?0', 'Upload-Length': data.length, 'Upload-Slot': slot.url } });
      assert.equal(careful.status, 409, careful.text);
      assert.equal(code(careful), 'ERR_UPLOAD_EXISTS');
      const upgraded = await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Upload-Length': data.length }, body: data });
      assert.equal(upgraded.status, 409, upgraded.text);
      assert.equal(code(upgraded), 'ERR_UPLOAD_EXISTS');
      const [second] = await uploadParts(slot.url, data.length, [data.subarray(1000)]);
      assert.equal((await finalOf(slot.url, [first!, second!])).status, 201, 'the parts still complete the slot');
      assert.ok((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body.equals(data));

      const other = slotFor(`${slotDir()}/plain.bin`, data.length);
      const created = await create({ 'Upload-Length': data.length, 'Upload-Slot': other.url });
      assert.equal(created.status, 201, created.text);
      const beside = await partial(other.url, 1000, data.length);
      assert.equal(beside.status, 409, beside.text);
      assert.equal(code(beside), 'ERR_UPLOAD_EXISTS');
      assert.equal(beside.headers.location, created.headers.location, 'the answer names the upload to resume');
      // Once the plain upload is terminated, the slot may be sent in parts.
      assert.equal((await rawRequest(server.baseUrl, pathOf(String(created.headers.location)), { method: 'DELETE', headers: TUS })).status, 204);
      assert.equal((await partial(other.url, 1000, data.length)).status, 201);
    });

    it('refuses partials beyond the slot (count, size) and finals with wrong, foreign, unknown or reused parts', async () => {
      const data = randomData(3000);
      const slot = slotFor(`${slotDir()}/r.bin`, data.length);
      const noLength = await partial(slot.url, 1000);
      assert.equal(noLength.status, 411);
      assert.equal(code(noLength), 'ERR_LENGTH_REQUIRED');
      assert.equal(code(await partial(slot.url, 1000, 2999)), 'ERR_SIGNATURE_INVALID', 'the signature binds the whole size');
      assert.equal(code(await partial(slot.url, 3001, 3000)), 'ERR_CONCAT_TOO_LARGE');
      const huge = await partial(slot.url, 85_000_000_000, 3000);
      assert.deepEqual([huge.status, code(huge)], [413, 'ERR_CONCAT_TOO_LARGE'], 'larger than the disk too: still the client\'s mistake, never a retryable 507');
      const locations = await uploadParts(slot.url, data.length, [data.subarray(0, 1000), data.subarray(1000, 2000)]);
      assert.equal(code(await partial(slot.url, 1001, data.length)), 'ERR_CONCAT_TOO_LARGE', 'parts together never above the signed size');
      const short = await finalOf(slot.url, locations);
      assert.equal(short.status, 400);
      assert.equal(code(short), 'ERR_CONCAT_LENGTH_MISMATCH');
      const other = slotFor(`${slotDir()}/other.bin`, 1000);
      const [foreign] = await uploadParts(other.url, 1000, [data.subarray(0, 1000)]);
      const [spare] = await uploadParts(slot.url, data.length, [data.subarray(2000)]);
      assert.equal((await rawRequest(server.baseUrl, spare!, { method: 'DELETE', headers: TUS })).status, 204, 'a finished partial not yet joined can be terminated');
      assert.equal((await head(spare!)).status, 404);
      const [third] = await uploadParts(slot.url, data.length, [data.subarray(2000)]);
      assert.equal(code(await partial(slot.url, 1, data.length)), 'ERR_CONCAT_TOO_MANY_PARTS', 'max_concat_parts = 3');
      assert.equal(code(await finalOf(slot.url, [locations[0]!, locations[1]!, foreign!])), 'ERR_CONCAT_PART_FOREIGN');
      assert.equal(code(await finalOf(slot.url, [locations[0]!, locations[0]!, third!])), 'ERR_CONCAT_PART_USED');
      assert.equal(code(await finalOf(slot.url, [locations[0]!, locations[1]!, '/files/NoSuchPart0123456789'])), 'ERR_CONCAT_PART_INVALID');
      // Only unknown parts, without Upload-Slot-Length: the parts' fault, not the signature's.
      assert.equal(code(await finalOf(slot.url, ['/files/NoSuchPart0123456789'])), 'ERR_CONCAT_PART_INVALID');
      assert.equal(code(await create({ 'Upload-Concat': 'final;', 'Upload-Slot': slot.url })), 'ERR_CONCAT_MALFORMED');
      assert.equal(code(await create({ 'Upload-Concat': 'whole', 'Upload-Slot': slot.url, 'Upload-Length': 3 })), 'ERR_CONCAT_MALFORMED');
      const ok = await finalOf(slot.url, [locations[0]!, locations[1]!, third!]);
      assert.equal(ok.status, 201, ok.text);
      assert.equal((await rawRequest(server.baseUrl, locations[0]!, { method: 'DELETE', headers: TUS })).status, 404, 'joined parts are gone');
      assert.ok((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body.equals(data));
      const reuse = await finalOf(other.url, [foreign!]);
      assert.equal(reuse.status, 201, 'the other slot still completes');
      const again = await finalOf(other.url, [foreign!], { 'Upload-Slot-Length': 1000 });
      assert.equal(again.status, 201, 'the same final again (its 201 lost): answered, not refused');
      assert.equal(again.headers.location, reuse.headers.location);
      assert.equal((await finalOf(other.url, ['/files/NoSuchPart0123456789'], { 'Upload-Slot-Length': 1000 })).status, 409, 'another final: its slot is taken now');
    });
  });

  describe('whole-file checksums are answered to the client', () => {
    it('tus: a wrong sha256 fails the last PATCH (422), nothing is published, a correct retry on the slot works', async () => {
      const data = randomData(70_000);
      const slot = slotFor(`${slotDir()}/sum.bin`, data.length);
      const wrong = await createFor(slot.url, data.length, { 'Upload-Metadata': `sha256 ${b64('ab'.repeat(32))}` });
      assert.equal((await patch(wrong, 0, data.subarray(0, 30_000))).status, 204);
      const last = await patch(wrong, 30_000, data.subarray(30_000));
      assert.equal(last.status, 422);
      assert.equal(code(last), 'ERR_UPLOAD_CHECKSUM_MISMATCH');
      assert.equal((await head(wrong)).status, 404, 'discarded: a resuming client starts over');
      assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).status, 404, 'nothing published');
      const right = await createFor(slot.url, data.length, { 'Upload-Metadata': `checksum ${b64(`sha256 ${digest('sha256', data)}`)}` });
      assert.equal((await patch(right, 0, data)).status, 204);
      assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
      const malformed = await create({ 'Upload-Length': 1, 'Upload-Slot': slotFor(`${slotDir()}/x.bin`, 1).url, 'Upload-Metadata': `sha256 ${b64('xyz')}` });
      assert.equal(code(malformed), 'ERR_CHECKSUM_MALFORMED', 'refused at creation, not dead-lettered later');
    });

    it('PUT: a wrong Repr-Digest is 422 before anything is published; the slot takes a correct retry', async () => {
      const data = randomData(40_000);
      const slot = slotFor(`${slotDir()}/put.bin`, data.length);
      const put = (value: string) => rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', headers: { 'Content-Length': data.length, 'Repr-Digest': `sha-256=:${value}:` }, body: data });
      const bad = await put(digest('sha256', 'other bytes'));
      assert.equal(bad.status, 422);
      assert.equal(code(bad), 'ERR_UPLOAD_CHECKSUM_MISMATCH');
      assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).status, 404);
      assert.equal((await put(digest('sha256', data))).status, 201);
      assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
    });
  });
});

describe('DELETE of a finished upload while a GET waits for its publication', () => {
  let server: SpawnedServer;
  before(async () => {
    // Jobs wait at their first step until SIGUSR2: the upload stays finished and unpublished.
    server = await startServer({ config: '[testing]\nhold_at = "start"\n' });
  });
  after(async () => server?.dispose());

  it('the waiting GET answers 410 at once (it waited out its 10 s and answered 503)', async () => {
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/withdrawn.txt`, baseUrl: server.uploadUrl, size: 4 });
    const res = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...OCTETS, 'Upload-Length': 4, 'Upload-Slot': slot.url }, body: 'gone' });
    assert.equal(res.status, 201, res.text);
    assert.ok(await server.waitForLog((l) => l.msg === 'Test hold: job waiting for SIGUSR2'), 'the job is held');
    const waiting = rawRequest(server.baseUrl, pathOf(slot.getUrl));
    const waiters = async () => Number(/^hmac_downloads_waiting (\S+)$/m.exec((await rawRequest(server.baseUrl, '/metrics')).text)?.[1]);
    const deadline = Date.now() + 10_000;
    while ((await waiters()) !== 1) {
      assert.ok(Date.now() < deadline, 'the GET never waited for the publication');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((await rawRequest(server.baseUrl, pathOf(String(res.headers.location)), { method: 'DELETE', headers: TUS })).status, 204);
    const answered = await waiting;
    assert.equal(answered.status, 410, answered.text);
    assert.equal(answered.json().code, 'ERR_GONE');
    assert.equal(await waiters(), 0);
    server.proc.kill('SIGUSR2'); // the held job runs, finds its upload withdrawn, publishes nothing
    assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).status, 410);
  });
});

describe('DELETE of finished uploads turned off', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer({ config: '[tus]\nallow_delete_finished = false\n' });
  });
  after(async () => server?.dispose());

  it('403 ERR_DELETE_FINISHED_DISABLED; the file stays', async () => {
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/keep.txt`, baseUrl: server.uploadUrl, size: 4 });
    const res = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...OCTETS, 'Upload-Length': 4, 'Upload-Slot': slot.url }, body: 'keep' });
    assert.equal(res.status, 201);
    const del = await rawRequest(server.baseUrl, pathOf(String(res.headers.location)), { method: 'DELETE', headers: TUS });
    assert.equal(del.status, 403);
    assert.equal(del.json().code, 'ERR_DELETE_FINISHED_DISABLED');
    assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).text, 'keep');
  });
});

describe('a final upload interrupted by a crash', () => {
  it('kill -9 while it is admitted: after the restart it is published once, and a repeated final POST answers that final again', async () => {
    const armed = await startServer({ env: { HFS_TEST_CRASH_AT: 'admit-before-insert' } });
    const dataDir = armed.dataDir;
    let restarted: SpawnedServer | undefined;
    try {
      const data = randomData(200_000);
      const path = `${slotDir()}/crash.bin`;
      const slot = signSlotUrl({ secret: TEST_SECRET, path, baseUrl: armed.uploadUrl, size: data.length });
      const halves = [data.subarray(0, 120_000), data.subarray(120_000)];
      const parts: string[] = [];
      for (const part of halves) {
        const res = await rawRequest(armed.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Concat': 'partial', 'Upload-Length': part.length, 'Upload-Slot': slot.url, 'Upload-Slot-Length': data.length } });
        assert.equal(res.status, 201, res.text);
        const loc = pathOf(String(res.headers.location));
        assert.equal((await rawRequest(armed.baseUrl, loc, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': 0 }, body: part })).status, 204);
        parts.push(loc);
      }
      const finalHeaders = { ...TUS, 'Upload-Concat': `final;${parts.join(' ')}`, 'Upload-Slot': slot.url };
      const died = await rawRequest(armed.baseUrl, '/files/', { method: 'POST', headers: finalHeaders }).catch((e: Error) => e);
      assert.ok(died instanceof Error, 'the server died before answering');
      await armed.exited;

      // Start-up recovery admits the joined, finished final upload that never reached the queue.
      restarted = await startServer({ dataDir });
      const get = await rawRequest(restarted.baseUrl, `/upload/${path}`);
      assert.equal(get.status, 200);
      assert.ok(get.body.equals(data), 'the joined bytes, in order');
      assert.equal(restarted.logs.filter((l) => l.msg === 'File published').length, 1, 'published once');
      const again = await rawRequest(restarted.baseUrl, '/files/', { method: 'POST', headers: finalHeaders });
      assert.equal(again.status, 201, 'the same final again: its URL, nothing new');
      assert.equal(restarted.logs.filter((l) => l.msg === 'File published').length, 1, 'still published once');
    } finally {
      await restarted?.dispose();
      await armed.dispose();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
