/**
 * Storage pressure on a real small file system (issue 19): the data directory lives on a tmpfs
 * of a few MiB and a filler file takes its room to exact amounts. An upload that cannot fit is refused
 * with 507 before any body byte; a store that runs full mid-body answers 507 (never 500) and
 * keeps a tus upload at a clean offset; the reserve keeps the queue writable; a job the disk
 * could not take anyway is retried until space is back and published once; nothing is lost.
 * Needs root (mount); fails at once otherwise.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { signSlotUrl } from '../../src/index.js';
import { requestWithContinue } from '../helpers/expect-continue.js';
import { pathOf, randomData, rawRequest, slotDir, type RawResponse } from '../helpers/http.js';
import { ADMIN_TOKEN, AUTH, putFile, sampleValue, tusCreate } from '../helpers/ops.js';
import { TEST_SECRET, runCli, startServer, type LogLine, type SpawnedServer } from '../helpers/server.js';
import { mountSmallDisk, type SmallDisk } from '../helpers/tmpfs.js';

const MiB = 1 << 20;
const KiB = 1 << 10;
const RESERVE = MiB;
const TUS = { 'Tus-Resumable': '1.0.0' };

function assert507(res: RawResponse, what: string): void {
  assert.equal(res.status, 507, `${what}: ${res.status} ${res.text}`);
  assert.match(String(res.headers['content-type']), /^application\/json/, what);
  assert.equal(res.json().code, 'ERR_INSUFFICIENT_STORAGE', what);
  assert.ok(Number(res.headers['retry-after']) > 0, `${what}: Retry-After`);
}

const putSlot = (server: SpawnedServer, path: string, size: number) => pathOf(signSlotUrl({ secret: TEST_SECRET, path, size, baseUrl: server.uploadUrl }).url);

/** A tus creation without body declaring `size`; the raw answer. */
function tusCreation(server: SpawnedServer, path: string, size: number): Promise<RawResponse> {
  const slot = signSlotUrl({ secret: TEST_SECRET, path, size, baseUrl: server.uploadUrl }).url;
  return rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': size, 'Upload-Slot': slot } });
}

const patch = (server: SpawnedServer, location: string, offset: number, body: Buffer) =>
  rawRequest(server.baseUrl, location, { method: 'PATCH', headers: { ...TUS, 'Upload-Offset': offset, 'Content-Type': 'application/offset+octet-stream' }, body });

const requestLine = (server: SpawnedServer, requestId: string) => server.waitForLog((l) => l.requestId === requestId && l.msg === 'Request finished');

async function metric(server: SpawnedServer, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  return sampleValue((await rawRequest(server.baseUrl, '/metrics')).text, name, labels);
}

async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));
}

describe('storage pressure with the reserve (min_free_space = 1 MiB) on a 32 MiB tmpfs', () => {
  let disk: SmallDisk;
  let server: SpawnedServer;
  const no500 = (l: LogLine) => l.msg === 'Request finished' && Number(l.status) >= 500 && l.status !== 507 && l.status !== 503;

  before(async () => {
    disk = await mountSmallDisk(32 * MiB); // room for the files the tests publish
    server = await startServer({ dataDir: join(disk.dir, 'data'), env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config: '[storage]\nmin_free_space = "1MiB"\n' });
  });
  after(async () => {
    await server?.dispose();
    await disk?.unmount();
  });

  it('refuses an upload whose declared length does not fit before reading a body byte (PUT, tus creation)', async () => {
    await disk.leaveFree(RESERVE + 2 * MiB);
    const path = `${slotDir()}/too-big.bin`;
    // Expect: 100-continue: the body is sent only if the server asks for it.
    const put = await requestWithContinue(server.baseUrl, putSlot(server, path, 4 * MiB), { method: 'PUT', headers: {}, body: randomData(4 * MiB) });
    assert507(put.res, 'PUT with Expect');
    assert.equal(put.continued, false, 'no 100 Continue: not a body byte was asked for');
    const line = await requestLine(server, String(put.res.headers['x-request-id']));
    assert.ok(Number(line.bytesIn) < 4096, `the server read the headers, no body byte (${String(line.bytesIn)} bytes in)`);

    // Without Expect: the client sends its headers only and the answer comes all the same.
    const early = await rawRequest(server.baseUrl, putSlot(server, path, 4 * MiB), {
      method: 'PUT',
      headers: { 'Content-Length': 4 * MiB },
      onRequest: (req) => req.flushHeaders(),
      body: new PassThrough(), // never written, never ended
    });
    assert507(early, 'PUT without Expect, headers only');

    const creation = await tusCreation(server, `${slotDir()}/too-big.bin`, 4 * MiB);
    assert507(creation, 'tus creation');
    assert.equal((await filesIn(join(server.dataDir, 'tus'))).length, 0, 'no upload was created');
    assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`)).status, 404);
    assert.ok(((await metric(server, 'hmac_storage_refused_total', { reason: 'no_room' })) ?? 0) >= 3);

    // What fits still gets in, leaving the reserve.
    const small = randomData(512 * KiB);
    assert.equal((await putFile(server, `${slotDir()}/fits.bin`, small)).status, 201);
    assert.equal(server.logs.some(no500), false);
    await disk.unfill();
  });

  it('counts bytes promised to unfinished uploads; expiring them frees the promise', async () => {
    await disk.leaveFree(RESERVE + 3 * MiB);
    const first = await tusCreation(server, `${slotDir()}/promised.bin`, 2 * MiB);
    assert.equal(first.status, 201, first.text);
    // 3 MiB free above the reserve, 2 MiB of it promised: 1.5 MiB no longer fits.
    assert507(await tusCreation(server, `${slotDir()}/second.bin`, 1.5 * MiB), 'second creation');
    const space = (await rawRequest(server.baseUrl, '/admin/space', { headers: AUTH })).json<Record<string, any>>(); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(space.filesystem.promisedBytes, 2 * MiB);
    assert.equal(space.filesystem.reserveBytes, RESERVE);
    assert.equal(space.unfinishedUploads.count, 1);
    assert.equal(space.unfinishedUploads.oldest[0].promisedBytes, 2 * MiB);
    assert.ok(space.hints.some((h: string) => h.includes('uploads expire')));
    // The operator frees it: `uploads expire --older-than` (online, through the server's admin API).
    const id = pathOf(String(first.headers.location)).split('/').pop()!;
    const env = { HFS_DATA_DIR: server.dataDir, HFS_ADMIN_TOKEN: ADMIN_TOKEN, HFS_CONFIG: join(server.dataDir, '..', `${server.dataDir.split('/').pop()}.toml`) };
    const expired = await runCli(['uploads', 'expire', '--older-than', '0s', '--json'], env);
    assert.equal(expired.code, 0, expired.stderr);
    assert.deepEqual(JSON.parse(expired.stdout).expired, [id]);
    const after = (await rawRequest(server.baseUrl, '/admin/space', { headers: AUTH })).json<Record<string, any>>(); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(after.filesystem.promisedBytes, 0);
    const second = await tusCreation(server, `${slotDir()}/second.bin`, 1.5 * MiB);
    assert.equal(second.status, 201);
    // A client terminating its upload frees its promise too.
    assert.equal((await rawRequest(server.baseUrl, pathOf(String(second.headers.location)), { method: 'DELETE', headers: TUS })).status, 204);
    assert.equal((await rawRequest(server.baseUrl, '/admin/space', { headers: AUTH })).json<{ filesystem: { promisedBytes: number } }>().filesystem.promisedBytes, 0);
    await disk.unfill();
  });

  it('a deferred-length upload is checked as it grows: each PATCH, and the length it declares', async () => {
    await disk.leaveFree(RESERVE + 2 * MiB);
    const path = `${slotDir()}/deferred.bin`;
    const slot = signSlotUrl({ secret: TEST_SECRET, path, scheme: 'v3', expires: Math.floor(Date.now() / 1000) + 600, baseUrl: server.uploadUrl }).url;
    const created = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Defer-Length': 1, 'Upload-Slot': slot } });
    assert.equal(created.status, 201, created.text);
    const location = pathOf(String(created.headers.location));
    const body = randomData(1.5 * MiB);
    const headers = (offset: number, extra: Record<string, string | number> = {}) => ({ ...TUS, 'Upload-Offset': offset, 'Content-Type': 'application/offset+octet-stream', ...extra });
    const tooMuch = await requestWithContinue(server.baseUrl, location, { method: 'PATCH', headers: headers(0), body: randomData(3 * MiB) });
    assert507(tooMuch.res, 'a PATCH of 3 MiB with 2 MiB of room');
    assert.equal(tooMuch.continued, false);
    assert.equal((await patch(server, location, 0, body.subarray(0, MiB))).status, 204);
    // Declaring 8 MiB now would promise 7 MiB more than there is.
    const declared = await requestWithContinue(server.baseUrl, location, { method: 'PATCH', headers: headers(MiB, { 'Upload-Length': 8 * MiB }), body: randomData(1) });
    assert507(declared.res, 'declaring a length that does not fit');
    const last = await rawRequest(server.baseUrl, location, { method: 'PATCH', headers: headers(MiB, { 'Upload-Length': body.length }), body: body.subarray(MiB) });
    assert.equal(last.status, 204, last.text);
    await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === location.split('/').pop());
    assert.ok((await rawRequest(server.baseUrl, `/upload/${path}`)).body.equals(body));
    await disk.unfill();
  });

  it('tus-js-client: refused with 507 while the disk is full, it retries by itself and completes once space is back', async () => {
    await disk.leaveFree(RESERVE + 8 * MiB);
    const path = `${slotDir()}/stock-client.bin`;
    const data = randomData(3 * MiB);
    const slot = signSlotUrl({ secret: TEST_SECRET, path, size: data.length, baseUrl: server.uploadUrl }).url;
    const refusals: number[] = [];
    let patches = 0;
    await new Promise<void>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        endpoint: server.tusUrl,
        headers: { 'Upload-Slot': slot },
        chunkSize: MiB,
        retryDelays: [0, 200, 500, 1000, 2000, 4000],
        // Before its second PATCH another writer fills the disk.
        onBeforeRequest: (req) => (req.getMethod() === 'PATCH' && ++patches === 2 ? disk.leaveFree(RESERVE + 256 * KiB) : undefined),
        onShouldRetry: (err) => {
          const status = err.originalResponse?.getStatus() ?? 0;
          refusals.push(status);
          if (status === 507) void disk.unfill(); // the operator frees space
          return true;
        },
        onSuccess: () => resolve(),
        onError: reject,
      });
      upload.start();
    });
    assert.ok(refusals.includes(507), `the client saw a 507: ${refusals.join(',')}`);
    assert.ok((await rawRequest(server.baseUrl, `/upload/${path}`)).body.equals(data));
  });

  it('PUT running out of space mid-body: 507 with JSON and Retry-After, nothing published, temp removed, one warn line', async () => {
    await disk.leaveFree(RESERVE + 6 * MiB);
    const path = `${slotDir()}/mid-body.bin`;
    const before507 = (await metric(server, 'hmac_storage_full_total', { where: 'put' })) ?? 0;
    const put = await requestWithContinue(server.baseUrl, putSlot(server, path, 3 * MiB), {
      method: 'PUT',
      headers: {},
      body: randomData(3 * MiB),
      beforeBody: () => disk.leaveFree(512 * KiB), // the disk fills between the check and the body
    });
    assert.equal(put.continued, true);
    assert507(put.res, 'PUT mid-body');
    const requestId = String(put.res.headers['x-request-id']);
    const warn = await server.waitForLog((l) => l.msg === 'Upload stopped: storage full, nothing kept' && l.uploadId === requestId);
    assert.equal(warn.level, 40);
    assert.equal(typeof warn.freeBytes, 'number');
    assert.equal((await metric(server, 'hmac_storage_full_total', { where: 'put' })) ?? 0, before507 + 1);
    assert.deepEqual(await filesIn(join(server.dataDir, 'incoming')), [], 'the temp file is removed');
    assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`)).status, 404, 'nothing published');
    const space = (await rawRequest(server.baseUrl, '/admin/space', { headers: AUTH })).json<{ filesystem: { promisedBytes: number } }>();
    assert.equal(space.filesystem.promisedBytes, 0, 'its bytes are no longer promised');
    await disk.unfill();
    // The client sends again once space is back.
    const body = randomData(3 * MiB);
    assert.equal((await putFile(server, path, body)).status, 201);
    assert.ok((await rawRequest(server.baseUrl, `/upload/${path}`)).body.equals(body));
    assert.equal(server.logs.some(no500), false);
  });

  it('tus PATCH running out of space mid-body: 507 JSON, clean offset on disk, resumes byte-identical', async () => {
    await disk.leaveFree(RESERVE + 8 * MiB);
    const path = `${slotDir()}/resumed.bin`;
    const body = randomData(4 * MiB);
    const { id, location } = await tusCreate(server, path, body, { sent: MiB });
    const res = await requestWithContinue(server.baseUrl, location, {
      method: 'PATCH',
      headers: { ...TUS, 'Upload-Offset': MiB, 'Content-Type': 'application/offset+octet-stream' },
      body: body.subarray(MiB),
      beforeBody: () => disk.leaveFree(RESERVE + 256 * KiB),
    });
    assert.equal(res.continued, true);
    assert507(res.res, 'PATCH mid-body');
    await server.waitForLog((l) => l.msg === 'Upload stopped: storage full, received bytes kept' && l.uploadId === id);
    const head = await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 200);
    const offset = Number(head.headers['upload-offset']);
    assert.ok(offset > MiB && offset < 4 * MiB, `offset ${offset}`);
    assert.equal((await stat(join(server.dataDir, 'tus', id))).size, offset, 'the data file and the offset agree');
    assert.ok((await readFile(join(server.dataDir, 'tus', id))).equals(body.subarray(0, offset)), 'the stored bytes are the sent ones');

    // Space comes back: the client resumes from the offset and the file is whole.
    await disk.unfill();
    assert.equal((await patch(server, location, offset, body.subarray(offset))).status, 204);
    await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === id);
    assert.ok((await rawRequest(server.baseUrl, `/upload/${path}`)).body.equals(body));
    assert.equal(server.logs.some(no500), false);
  });

  it('a body that fits with the reserve: the queue writes its job at once, no 404 window', async () => {
    const body = randomData(2 * MiB);
    await disk.leaveFree(RESERVE + body.length + 16 * KiB);
    const path = `${slotDir()}/tight.bin`;
    const put = await putFile(server, path, body);
    assert.equal(put.status, 201, put.text);
    const get = await rawRequest(server.baseUrl, `/upload/${path}`);
    assert.equal(get.status, 200, 'published or waited for, never 404');
    assert.ok(get.body.equals(body));
    assert.equal(server.logs.some((l) => /storage full/.test(String(l.msg)) && l.slotPath === path), false);
    await disk.unfill();
  });
});

describe('a client\'s share of the storage ([limits] max_promised_bytes_per_client = "25%" of the free space of a 32 MiB tmpfs)', () => {
  let disk: SmallDisk;
  let server: SpawnedServer;
  before(async () => {
    disk = await mountSmallDisk(32 * MiB);
    server = await startServer({
      dataDir: join(disk.dir, 'data'),
      config: '[server]\ntrust_proxy = true\nmax_upload_size = "2MiB"\n[storage]\nmin_free_space = "1MiB"\n[limits]\nmax_promised_bytes_per_client = "25%"\n',
    });
  });
  after(async () => {
    await server?.dispose();
    await disk?.unmount();
  });

  const create = (client: string, size: number) => {
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/share.bin`, size, baseUrl: server.uploadUrl }).url;
    return rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': size, 'Upload-Slot': slot, 'X-Forwarded-For': client } });
  };

  it('one client creating uploads it never sends cannot promise the disk away: 429 past its share, others go on, a finished or deleted upload gives room back', async () => {
    // 20 MiB free above the reserve, a share of 5 MiB: two unfinished uploads of 2 MiB, not three.
    await disk.leaveFree(RESERVE + 20 * MiB);
    const mine: RawResponse[] = [];
    for (let i = 0; i < 2; i++) mine.push(await create('198.51.100.7', 2 * MiB));
    assert.deepEqual(mine.map((r) => r.status), [201, 201]);
    const beyond = await create('198.51.100.7', 2 * MiB);
    assert.equal(beyond.status, 429, beyond.text);
    assert.equal(beyond.json().code, 'ERR_CLIENT_STORAGE_SHARE');
    assert.ok(Number(beyond.headers['retry-after']) > 0);
    assert.equal((await create('203.0.113.9', 2 * MiB)).status, 201, 'another client is not starved');
    // The first client deletes one: room for one more. Sending one whole frees its promise too.
    assert.equal((await rawRequest(server.baseUrl, pathOf(String(mine[0]!.headers.location)), { method: 'DELETE', headers: TUS })).status, 204);
    assert.equal((await create('198.51.100.7', 2 * MiB)).status, 201);
    assert.equal((await create('198.51.100.7', 1.5 * MiB)).status, 429, 'still at its share');
    assert.equal((await patch(server, pathOf(String(mine[1]!.headers.location)), 0, randomData(2 * MiB))).status, 204);
    assert.equal((await create('198.51.100.7', 1.5 * MiB)).status, 201, 'a finished upload holds no promise');
    await disk.unfill();
  });
});

describe('a finalization job the disk cannot take (no reserve: min_free_space = 0)', () => {
  let disk: SmallDisk;
  let server: SpawnedServer;

  before(async () => {
    disk = await mountSmallDisk(16 * MiB);
    server = await startServer({ dataDir: join(disk.dir, 'data'), env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config: '[storage]\nmin_free_space = 0\n' });
  });
  after(async () => {
    await server?.dispose();
    await disk?.unmount();
  });

  it('tus: the last PATCH is accepted, the slot answers 503 + Retry-After (never 404) until space is back, then it is published once', async () => {
    const path = `${slotDir()}/waits.bin`;
    const body = randomData(MiB);
    const { id, location } = await tusCreate(server, path, body, { sent: 0 });
    await disk.leaveFree(body.length); // the body takes the last byte: no room for the job
    const last = await patch(server, location, 0, body);
    assert.equal(last.status, 204, last.text);
    await server.waitForLog((l) => l.msg === 'Finalization job not written: storage full; the upload is kept and admitted once space is back' && l.uploadId === id);
    for (const method of ['GET', 'HEAD']) {
      const res = await rawRequest(server.baseUrl, `/upload/${path}`, { method });
      assert.equal(res.status, 503, `${method} while waiting`);
      assert.ok(Number(res.headers['retry-after']) > 0);
    }
    assert.equal((await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: TUS })).headers['upload-offset'], String(body.length), 'the client sees its upload complete');
    assert.equal(await metric(server, 'hmac_admissions_waiting_for_space'), 1);
    // A new upload of the slot meanwhile is refused before its body.
    assert.equal((await tusCreation(server, path, 10)).status, 409);

    await disk.unfill();
    await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === id);
    assert.ok((await rawRequest(server.baseUrl, `/upload/${path}`)).body.equals(body));
    const jobs = (await rawRequest(server.baseUrl, '/admin/queue/jobs?state=queued,leased,done,dead', { headers: AUTH })).json<{ jobs: Array<{ slotPath: string }> }>().jobs;
    assert.equal(jobs.filter((j) => j.slotPath === path).length, 1, 'one job');
    assert.equal(server.logs.filter((l) => l.msg === 'File published' && l.uploadId === id).length, 1, 'published once');
    assert.equal(await metric(server, 'hmac_admissions_waiting_for_space'), 0);
  });

  it('PUT: retries briefly, then 507 with nothing kept (the client was told nothing); sent again once space is back', async () => {
    const path = `${slotDir()}/put-waits.bin`;
    const body = randomData(MiB);
    await disk.leaveFree(body.length);
    const put = await putFile(server, path, body);
    assert507(put, 'PUT whose job cannot be written');
    await server.waitForLog((l) => l.msg === 'PUT refused: storage full, its finalization job could not be written; nothing kept' && l.slotPath === path);
    assert.deepEqual(await filesIn(join(server.dataDir, 'incoming')), []);
    assert.deepEqual(await filesIn(join(server.dataDir, 'queue', 'staging')), []);
    assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`)).status, 404, 'no 201 was given: nothing to wait for');
    await disk.unfill();
    assert.equal((await putFile(server, path, body)).status, 201);
    assert.ok((await rawRequest(server.baseUrl, `/upload/${path}`)).body.equals(body));
  });
});
