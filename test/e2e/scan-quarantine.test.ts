/**
 * Malware scanning with a real clamd (its own signature database, written here): clean files are
 * published, flagged ones (and, with oversize = "quarantine", files above max_size) go to
 * quarantine and are never served (451 ERR_QUARANTINED on the slot URL, the PUT URL and the tus
 * upload URL), the webhook says file.quarantined, and operators list, release and delete them
 * through the admin API and the CLI, online and offline. PUT and tus alike, on both storage
 * backends (file: <data_dir>/quarantine; S3: <prefix>quarantine/ in the bucket, test/helpers/backends.ts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { randomData, rawRequest, slotDir } from '../helpers/http.js';
import { ADMIN_TOKEN, AUTH, putFile, sampleValue, startWebhookReceiver, tusCreate, type WebhookReceiver } from '../helpers/ops.js';
import { runCli, startServer, type LogLine, type SpawnedServer } from '../helpers/server.js';
import { startClamd, type Clamd } from '../helpers/clamd.js';
import { storageBackends } from '../helpers/backends.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const EVIL = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$hmac-file-server-test-signature\n');
const SIGNATURE = 'Hfs.Test.Evil.UNOFFICIAL';
const TUS = { 'Tus-Resumable': '1.0.0' };

const backends = storageBackends();

for (const backend of backends) describe(`scanning with clamd: publish clean files, quarantine flagged ones, operators decide [${backend.name}]`, () => {
  let clamd: Clamd;
  let hook: WebhookReceiver;
  let server: SpawnedServer;
  /** The first server owns the data dir; its dispose() removes it (after the restarted one stopped). */
  let first: SpawnedServer | undefined;
  let config = '';
  const getPath = (slot: string) => `${new URL(server.uploadUrl).pathname}${slot}`;
  const get = (slot: string, method = 'GET') => rawRequest(server.baseUrl, getPath(slot), { method });
  const logged = (jobId: string, msg: string) => (l: LogLine) => l.jobId === jobId && l.msg === msg;
  const metricsText = async () => (await rawRequest(server.baseUrl, '/metrics')).text;
  const admin = (method: string, path: string) => rawRequest(server.baseUrl, `/admin${path}`, { method, headers: AUTH });
  const cli = (args: string[]) =>
    runCli([...args, '--json'], { HFS_DATA_DIR: server.dataDir, HFS_ADMIN_TOKEN: ADMIN_TOKEN, HFS_CONFIG: join(server.dataDir, '..', `${server.dataDir.split('/').pop()}.toml`) });
  const cliJson = async (args: string[]) => {
    const res = await cli(args);
    assert.equal(res.code, 0, `${args.join(' ')}: ${res.stderr}`);
    return JSON.parse(res.stdout) as Json;
  };

  // Filled by the tests in order (node:test runs them one after the other).
  const infected = { put: { id: '', slot: '' }, tus: { id: '', slot: '', upload: '', location: '' } };

  before(async () => {
    clamd = await startClamd({ signatures: [{ data: EVIL, name: 'Hfs.Test.Evil' }] });
    hook = await startWebhookReceiver();
    config = `[scan]\nenabled = true\nclamd = "${clamd.socket}"\nmax_size = "64KB"\noversize = "quarantine"\n[finalize]\nwebhook_url = "${hook.url}"\n${await backend.config()}`;
    server = first = await startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config });
  });
  after(async () => {
    await server?.dispose();
    await first?.dispose();
    await hook?.close();
    await clamd?.dispose();
  });

  it('publishes clean files after a scan (PUT and tus)', async () => {
    const putSlot = `${slotDir()}/clean.txt`;
    const put = await putFile(server, putSlot, 'nothing to see here');
    assert.equal(put.status, 201);
    const tusSlot = `${slotDir()}/clean.bin`;
    const body = randomData(50_000);
    const tus = await tusCreate(server, tusSlot, body);
    for (const jobId of [`put-${put.headers['x-request-id']}`, `tus-${tus.id}`]) await server.waitForLog(logged(jobId, 'File published'));
    assert.equal((await get(putSlot)).text, 'nothing to see here');
    assert.deepEqual((await get(tusSlot)).body, body);
    const text = await metricsText();
    assert.ok(sampleValue(text, 'hmac_scans_total', { result: 'clean' })! >= 2);
    assert.ok(sampleValue(text, 'hmac_scan_duration_seconds_count')! >= 2);
    assert.equal(sampleValue(text, 'hmac_scan_detections_total'), 0);
  });

  it('a flagged PUT is quarantined: the slot URL answers 451 at once (a waiting GET too), HEAD and a new PUT as well', async () => {
    infected.put.slot = `${slotDir()}/invoice.pdf`;
    const put = await putFile(server, infected.put.slot, EVIL);
    assert.equal(put.status, 201, 'the upload itself succeeds: scanning is part of finalization');
    infected.put.id = `put-${put.headers['x-request-id']}`;
    const waiting = await get(infected.put.slot); // waits for the job, woken by the quarantine
    assert.equal(waiting.status, 451);
    assert.equal(waiting.json().code, 'ERR_QUARANTINED');
    const line = await server.waitForLog(logged(infected.put.id, 'File quarantined: malware detected'));
    assert.equal(line.signature, SIGNATURE);
    assert.equal(line.slotPath, infected.put.slot);
    assert.equal((await get(infected.put.slot, 'HEAD')).status, 451);
    const again = await putFile(server, infected.put.slot, EVIL);
    assert.equal(again.status, 451);
    assert.equal(again.json().code, 'ERR_QUARANTINED');
    assert.equal(await backend.publishedBytes(server, infected.put.slot), null, 'never in the published tree');
    assert.ok((await backend.quarantineArea(server)).some((k) => k.includes(infected.put.id)), 'the bytes are in the quarantine area');
    assert.deepEqual(await backend.incomingLeftovers(server), [], 'the PUT body moved (or was copied and removed)');
    const delivery = await hook.waitFor((d) => d.id === infected.put.id);
    assert.equal(delivery.event, 'file.quarantined');
  });

  it('a flagged tus upload is quarantined: its slot URL and its upload URL answer 451', async () => {
    infected.tus.slot = `${slotDir()}/setup.exe`;
    const tus = await tusCreate(server, infected.tus.slot, EVIL);
    infected.tus = { ...infected.tus, id: `tus-${tus.id}`, upload: tus.id, location: tus.location };
    await server.waitForLog(logged(infected.tus.id, 'File quarantined: malware detected'));
    assert.equal((await get(infected.tus.slot)).status, 451);
    const head = await rawRequest(server.baseUrl, tus.location, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 451);
    assert.equal((await rawRequest(server.baseUrl, tus.location, { headers: TUS })).json().code, 'ERR_QUARANTINED', 'GET of the upload URL');
    const rufh = await rawRequest(server.baseUrl, tus.location, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': '6' } });
    assert.equal(rufh.status, 451, 'the same resource through IETF Resumable Uploads');
    const patch = await rawRequest(server.baseUrl, tus.location, {
      method: 'PATCH',
      headers: { ...TUS, 'Upload-Offset': EVIL.length, 'Content-Type': 'application/offset+octet-stream' },
      body: '',
    });
    assert.equal(patch.status, 451);
    assert.equal((await hook.waitFor((d) => d.id === infected.tus.id)).event, 'file.quarantined');
  });

  it('a file above max_size is quarantined unscanned with oversize = "quarantine" (PUT and tus)', async () => {
    const putSlot = `${slotDir()}/big.iso`;
    const put = await putFile(server, putSlot, randomData(100_000));
    const tusSlot = `${slotDir()}/big.tar`;
    const tus = await tusCreate(server, tusSlot, randomData(70_000));
    for (const jobId of [`put-${put.headers['x-request-id']}`, `tus-${tus.id}`]) {
      const line = await server.waitForLog(logged(jobId, 'File quarantined: too large to scan'));
      assert.equal(line.signature, null);
    }
    assert.equal((await get(putSlot)).status, 451);
    assert.equal((await get(tusSlot)).status, 451);
    const text = await metricsText();
    assert.equal(sampleValue(text, 'hmac_quarantined_total', { reason: 'oversize' }), 2);
    assert.equal(sampleValue(text, 'hmac_quarantined_total', { reason: 'infected' }), 2);
    assert.equal(sampleValue(text, 'hmac_scan_detections_total'), 2);
    assert.equal(sampleValue(text, 'hmac_quarantine_files'), 4);
    assert.equal(sampleValue(text, 'hmac_scans_total', { result: 'infected' }), 2);
  });

  it('the admin API lists them with reason and signature, and shows one', async () => {
    const list = (await admin('GET', '/quarantine')).json<{ quarantined: Json[] }>().quarantined;
    assert.equal(list.length, 4);
    const put = list.find((q) => q.id === infected.put.id)!;
    assert.deepEqual([put.slotPath, put.reason, put.signature, put.protocol, put.size], [infected.put.slot, 'infected', SIGNATURE, 'put', EVIL.length]);
    assert.equal(list.filter((q) => q.reason === 'oversize' && q.signature === null).length, 2);
    const one = await admin('GET', `/quarantine/${infected.tus.id}`);
    assert.equal(one.json().slotPath, infected.tus.slot);
    assert.equal((await admin('GET', '/quarantine/tus-unknown')).status, 404);
    assert.equal((await rawRequest(server.baseUrl, '/admin/quarantine')).status, 401);
  });

  it('CLI online: list, release (published at its slot URL), delete (slot URL and tus upload URL 404)', async () => {
    const listed = await cliJson(['quarantine', 'list']);
    assert.equal(listed.mode, 'online');
    assert.equal(listed.quarantined.length, 4);

    const released = await cliJson(['quarantine', 'release', infected.put.id]);
    assert.equal(released.released.slotPath, infected.put.slot);
    const served = await get(infected.put.slot);
    assert.equal(served.status, 200);
    assert.deepEqual(served.body, EVIL);

    const recordsBefore = await backend.uploadRecords(server);
    await cliJson(['quarantine', 'delete', infected.tus.id]);
    assert.equal((await get(infected.tus.slot)).status, 404);
    assert.equal((await rawRequest(server.baseUrl, infected.tus.location, { method: 'HEAD', headers: TUS })).status, 404);
    assert.equal((await backend.quarantineArea(server)).some((k) => k.includes(infected.tus.id)), false, 'bytes and entry removed');
    assert.equal(await backend.uploadRecords(server), recordsBefore - 1, "the tus upload's record went too");

    const unknown = await cli(['quarantine', 'release', 'put-nope']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no quarantined file put-nope/);
    assert.equal((await cliJson(['quarantine', 'list'])).quarantined.length, 2);
    assert.equal(sampleValue(await metricsText(), 'hmac_quarantine_files'), 2);
  });

  it('CLI offline on the stopped server: list, release, delete; the released file is served after a restart', async () => {
    const before = (await cliJson(['quarantine', 'list'])).quarantined as Json[];
    const [one, two] = before as [Json, Json];
    await server.stop();
    // Scanning turned off: what is in quarantine stays withheld.
    server = await startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config: config.replace('enabled = true', 'enabled = false'), dataDir: first!.dataDir });
    assert.equal((await get(one.slotPath)).status, 451, 'withheld with [scan] off too');
    await server.stop();
    const listed = await cliJson(['quarantine', 'list']);
    assert.equal(listed.mode, 'offline');
    assert.deepEqual(listed.quarantined.map((q: Json) => q.id), [one.id, two.id]);
    await cliJson(['quarantine', 'release', one.id]);
    await cliJson(['quarantine', 'delete', two.id]);
    assert.deepEqual((await cliJson(['quarantine', 'list'])).quarantined, []);
    assert.equal((await backend.publishedBytes(server, one.slotPath))?.length, one.size);
    assert.deepEqual(await backend.quarantineArea(server), [], 'the area is empty');

    server = await startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config, dataDir: first!.dataDir });
    assert.equal(sampleValue(await metricsText(), 'hmac_quarantine_files'), 0);
    assert.equal((await get(one.slotPath)).status, 200);
    assert.equal((await get(two.slotPath)).status, 404);
  });
});

for (const backend of backends.filter((b) => b.name === 's3')) describe('[s3] entries an older version kept in the data directory move into the bucket at start', () => {
  it('are withheld, listed and released from the bucket, and the local directory is emptied', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hfs-test-'));
    const record = {
      id: 'put-from-before',
      slotPath: `${slotDir()}/old.exe`,
      size: EVIL.length,
      sha256: createHash('sha256').update(EVIL).digest('hex'),
      contentType: 'application/octet-stream',
      protocol: 'put',
      uploadId: 'from-before',
      receivedAtMs: 1,
      quarantinedAtMs: 2,
      reason: 'infected',
      signature: SIGNATURE,
    };
    await mkdir(join(dataDir, 'quarantine'), { mode: 0o700 });
    await writeFile(join(dataDir, 'quarantine', `${record.id}.json`), JSON.stringify(record));
    await writeFile(join(dataDir, 'quarantine', `${record.id}.bin`), EVIL);
    // Scanning off: what is withheld stays withheld all the same.
    const server = await startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config: await backend.config(), dataDir });
    try {
      assert.equal((await server.waitForLog((l) => l.msg === 'Moved quarantined files from the data directory into the bucket')).entries, 1);
      assert.deepEqual(await readdir(join(dataDir, 'quarantine')), []);
      assert.ok((await backend.quarantineArea(server)).includes(`bytes/${record.id}`));
      const slotGet = () => rawRequest(server.baseUrl, `${new URL(server.uploadUrl).pathname}${record.slotPath}`);
      assert.equal((await slotGet()).status, 451);
      const listed = (await rawRequest(server.baseUrl, '/admin/quarantine', { headers: AUTH })).json<{ quarantined: Json[] }>().quarantined;
      assert.deepEqual(listed, [record]);
      assert.equal((await rawRequest(server.baseUrl, `/admin/quarantine/${record.id}/release`, { method: 'POST', headers: AUTH })).status, 200);
      assert.deepEqual((await slotGet()).body, EVIL);
    } finally {
      await server.dispose();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
