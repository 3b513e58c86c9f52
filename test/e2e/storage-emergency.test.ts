/**
 * Below the reserve (issue 19, item 4) on a real 16 MiB tmpfs: the server enters its storage
 * emergency state (/ready 503 naming storage, new uploads 507), downloads and appends that still
 * fit go on, the operator sees what holds the space (admin API, `hmac-file-server space`), and the
 * state ends by itself once space returns. Needs root (mount); fails at once otherwise.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { requestWithContinue } from '../helpers/expect-continue.js';
import { randomData, rawRequest, slotDir } from '../helpers/http.js';
import { ADMIN_TOKEN, AUTH, putFile, sampleValue, tusCreate } from '../helpers/ops.js';
import { TEST_SECRET, runCli, startServer, type SpawnedServer } from '../helpers/server.js';
import { mountSmallDisk, type SmallDisk } from '../helpers/tmpfs.js';

const MiB = 1 << 20;
const KiB = 1 << 10;
const TUS = { 'Tus-Resumable': '1.0.0' };
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('storage emergency: below the reserve and back, by itself', () => {
  let disk: SmallDisk;
  let server: SpawnedServer;
  const cli = (args: string[]) =>
    runCli(args, { HFS_DATA_DIR: server.dataDir, HFS_ADMIN_TOKEN: ADMIN_TOKEN, HFS_CONFIG: join(server.dataDir, '..', `${server.dataDir.split('/').pop()}.toml`) });
  const metrics = async () => (await rawRequest(server.baseUrl, '/metrics')).text;
  const patch = (location: string, offset: number, body: Buffer) =>
    rawRequest(server.baseUrl, location, { method: 'PATCH', headers: { ...TUS, 'Upload-Offset': offset, 'Content-Type': 'application/offset+octet-stream' }, body });

  const publishedPath = `${slotDir()}/kept.bin`;
  const published = randomData(256 * KiB);
  const big = { path: `${slotDir()}/big.bin`, body: randomData(4 * MiB), location: '', id: '' };
  const small = { path: `${slotDir()}/small.bin`, body: randomData(512 * KiB), location: '', id: '' };

  before(async () => {
    disk = await mountSmallDisk(16 * MiB);
    server = await startServer({ dataDir: join(disk.dir, 'data'), env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config: '[storage]\nmin_free_space = "1MiB"\n' });
    assert.equal((await putFile(server, publishedPath, published)).status, 201);
    Object.assign(big, await tusCreate(server, big.path, big.body, { sent: 0 })); // 4 MiB promised
    Object.assign(small, await tusCreate(server, small.path, small.body, { sent: 256 * KiB })); // 256 KiB promised
  });
  after(async () => {
    await server?.dispose();
    await disk?.unmount();
  });

  it('enters the emergency state when free space cannot hold the reserve and the promised bytes', async () => {
    await disk.leaveFree(MiB + MiB); // the reserve and 1 MiB: less than the 4.25 MiB promised
    const ready = await rawRequest(server.baseUrl, '/ready');
    assert.equal(ready.status, 503);
    const check = ready.json<{ checks: Array<{ name: string; ok: boolean; reason?: string }> }>().checks.find((c) => c.name === 'storage_space');
    assert.equal(check?.ok, false);
    assert.match(String(check?.reason), /storage/);
    const line = await server.waitForLog((l) => l.msg === 'Storage emergency mode activated: free space below the reserve, new uploads refused');
    assert.equal(line.level, 40);
    assert.equal(sampleValue(await metrics(), 'hmac_storage_emergency'), 1);
  });

  it('refuses every new upload with 507, whatever its size', async () => {
    const put = await putFile(server, `${slotDir()}/tiny.txt`, 'tiny');
    assert.equal(put.status, 507);
    assert.equal(put.json().code, 'ERR_INSUFFICIENT_STORAGE');
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/tiny.bin`, size: 10, baseUrl: server.uploadUrl }).url;
    const creation = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': 10, 'Upload-Slot': slot } });
    assert.equal(creation.status, 507);
    assert.ok((sampleValue(await metrics(), 'hmac_storage_refused_total', { reason: 'below_reserve' }) ?? 0) >= 2);
  });

  it('keeps serving downloads and appends that fit; refuses, before its body, an append that does not', async () => {
    const get = await rawRequest(server.baseUrl, `/upload/${publishedPath}`);
    assert.equal(get.status, 200);
    assert.ok(get.body.equals(published));

    // 256 KiB left of the small upload: fits in free space minus the reserve.
    assert.equal((await patch(small.location, 256 * KiB, small.body.subarray(256 * KiB))).status, 204);
    await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === small.id);
    assert.ok((await rawRequest(server.baseUrl, `/upload/${small.path}`)).body.equals(small.body));

    // 4 MiB left of the big one: not now, and not a byte is read.
    const refused = await requestWithContinue(server.baseUrl, big.location, {
      method: 'PATCH',
      headers: { ...TUS, 'Upload-Offset': 0, 'Content-Type': 'application/offset+octet-stream' },
      body: big.body,
    });
    assert.equal(refused.res.status, 507);
    assert.equal(refused.continued, false);
    assert.ok(Number(refused.res.headers['retry-after']) > 0);
    const head = await rawRequest(server.baseUrl, big.location, { method: 'HEAD', headers: TUS });
    assert.equal(head.headers['upload-offset'], '0');
  });

  it('shows the operator what holds the space (admin API, `space` command, exit 3 while below the reserve)', async () => {
    const report = (await rawRequest(server.baseUrl, '/admin/space', { headers: AUTH })).json<Json>();
    assert.equal(report.filesystem.emergency, true);
    assert.equal(report.filesystem.promisedBytes, big.body.length);
    assert.equal(report.unfinishedUploads.count, 1);
    assert.equal(report.unfinishedUploads.oldest[0].id, big.id);
    assert.equal(report.unfinishedUploads.oldest[0].promisedBytes, big.body.length);
    assert.ok(report.queue.journalBytes > 0);

    const json = await cli(['space', '--json']);
    assert.equal(json.code, 3, json.stderr);
    const parsed = JSON.parse(json.stdout) as Json;
    assert.equal(parsed.mode, 'online');
    assert.equal(parsed.filesystem.emergency, true);
    const human = await cli(['space']);
    assert.equal(human.code, 3);
    assert.match(human.stdout, /BELOW THE RESERVE/);
    assert.match(human.stdout, new RegExp(big.id));
    assert.match(human.stdout, /uploads expire --older-than/);
  });

  it('leaves the emergency state by itself once space returns, and everything goes on', async () => {
    await disk.unfill();
    // No request needed: the periodic re-check notices.
    await server.waitForLog((l) => l.msg === 'Storage emergency mode cleared');
    assert.equal((await rawRequest(server.baseUrl, '/ready')).status, 200);
    assert.equal(sampleValue(await metrics(), 'hmac_storage_emergency'), 0);
    assert.equal((await putFile(server, `${slotDir()}/after.txt`, 'after')).status, 201);
    assert.equal((await patch(big.location, 0, big.body)).status, 204);
    await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === big.id);
    assert.ok((await rawRequest(server.baseUrl, `/upload/${big.path}`)).body.equals(big.body));
    const text = await metrics();
    assert.equal(sampleValue(text, 'hmac_storage_promised_bytes'), 0);
    assert.equal(sampleValue(text, 'hmac_storage_reserved_bytes'), MiB);
    assert.ok((sampleValue(text, 'hmac_storage_free_bytes') ?? 0) > 8 * MiB);
  });

  it('`space` works offline on the stopped server\'s data directory', async () => {
    await server.stop();
    const res = await cli(['space', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout) as Json;
    assert.equal(report.mode, 'offline');
    assert.equal(report.filesystem.reserveBytes, MiB);
    assert.equal(report.unfinishedUploads.count, 0);
    assert.equal(report.queue.admissionsWaitingForSpace, null);
    const human = await cli(['space']);
    assert.match(human.stdout, /PUT temp files left by a stop/, 'offline no body streams');
    assert.doesNotMatch(human.stdout, /streaming/);
  });
});

