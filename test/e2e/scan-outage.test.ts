/**
 * A dead clamd is a dependency failure of finalization (docs/scanning.md):
 *   unavailable = "hold"     clamd stopped mid-run holds the jobs without spending attempts
 *                            (backoff, then its circuit breaker); they publish once it is back
 *   unavailable = "publish"  files are published unscanned, counted and logged
 * and files above scan.max_size follow oversize = "publish" (unscanned, like the Go server).
 * PUT and tus alike, on both storage backends (the scan streams a local file or an S3 object);
 * a real clamd that the tests stop and start.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rawRequest, slotDir } from '../helpers/http.js';
import { ADMIN_TOKEN, AUTH, putFile, sampleValue, tusCreate } from '../helpers/ops.js';
import { startServer, type LogLine, type SpawnedServer } from '../helpers/server.js';
import { startClamd, type Clamd } from '../helpers/clamd.js';
import { storageBackends } from '../helpers/backends.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const EVIL = Buffer.from('hmac-file-server outage test: a file clamd flags\n');
/** A file above max_size (4 KB) that clamd would flag if it were scanned. */
const BIG_EVIL = Buffer.concat([EVIL, Buffer.alloc(8_000, 0x2e)]);

const logged = (jobId: string, msg: string) => (l: LogLine) => l.jobId === jobId && l.msg === msg;
const metricsOf = async (server: SpawnedServer) => (await rawRequest(server.baseUrl, '/metrics')).text;
const get = (server: SpawnedServer, slot: string) => rawRequest(server.baseUrl, `${new URL(server.uploadUrl).pathname}${slot}`);

/** Count lines matching `pred` until there are `n` (each wait is for the next such line, not a poll). */
async function waitForLines(server: SpawnedServer, pred: (l: LogLine) => boolean, n: number): Promise<void> {
  for (let seen = server.logs.filter(pred).length; seen < n; seen = server.logs.filter(pred).length) {
    const before = seen;
    await server.waitForLog((l) => pred(l) && server.logs.filter(pred).length > before);
  }
}

async function uploadBoth(server: SpawnedServer, name: string, body: Buffer): Promise<Array<{ jobId: string; slot: string }>> {
  const putSlot = `${slotDir()}/${name}`;
  const put = await putFile(server, putSlot, body);
  assert.equal(put.status, 201);
  const tusSlot = `${slotDir()}/${name}`;
  const tus = await tusCreate(server, tusSlot, body);
  return [
    { jobId: `put-${put.headers['x-request-id']}`, slot: putSlot },
    { jobId: `tus-${tus.id}`, slot: tusSlot },
  ];
}

const backends = storageBackends();

for (const backend of backends) describe(`scan.unavailable = "hold": clamd stopped mid-run [${backend.name}]`, () => {
  let clamd: Clamd;
  let server: SpawnedServer;
  const job = async (id: string) => (await rawRequest(server.baseUrl, `/admin/queue/jobs/${id}`, { headers: AUTH })).json<Json>();

  before(async () => {
    clamd = await startClamd({ signatures: [{ data: EVIL, name: 'Hfs.Outage.Evil' }] });
    // Breaker off here: held jobs retry on the backoff alone (the breaker case is below).
    const config = `[scan]\nenabled = true\nclamd = "${clamd.socket}"\n[workers]\ncircuit_breaker_enabled = false\n[timeouts]\nretry_base_delay = "50ms"\nretry_max_delay = "200ms"\nmax_retry_attempts = 2\n[logging]\nlevel = "debug"\n${await backend.config()}`;
    server = await startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config });
  });
  after(async () => {
    await server?.dispose();
    await clamd?.dispose();
  });

  it('holds PUT and tus jobs without spending attempts, and publishes them once clamd is back', async () => {
    const [warm] = await uploadBoth(server, 'warm.txt', Buffer.from('before the outage'));
    await server.waitForLog(logged(warm!.jobId, 'File published'));

    await clamd.stop();
    const held = await uploadBoth(server, 'held.txt', Buffer.from('uploaded while clamd is down'));
    await server.waitForLog((l) => l.msg === 'Scanner unavailable: finalization held until it answers');
    // More held tries than max_retry_attempts allows attempts: none of them was spent.
    for (const { jobId } of held) await waitForLines(server, logged(jobId, 'Finalization held: scanner unavailable'), 4);
    for (const { jobId } of held) {
      const j = await job(jobId);
      assert.equal(j.attempts, 0, JSON.stringify(j));
      assert.ok(j.state === 'queued' || j.state === 'leased', JSON.stringify(j)); // leased: being held again right now
    }
    const text = await metricsOf(server);
    assert.ok(sampleValue(text, 'hmac_scan_errors_total', { reason: 'unavailable' })! >= 8);
    assert.equal(sampleValue(text, 'hmac_dead_letter_queue_length'), 0);
    assert.equal(sampleValue(text, 'hmac_files_unscanned_total', { reason: 'unavailable' }), 0);

    await clamd.start();
    for (const { jobId } of held) await server.waitForLog(logged(jobId, 'File published'));
    await server.waitForLog((l) => l.msg === 'Scanner answers again: held jobs resume');
    for (const { slot } of held) assert.equal((await get(server, slot)).text, 'uploaded while clamd is down');
  });

  it('a file flagged after the outage is still quarantined (the hold never let it through)', async () => {
    await clamd.stop();
    const flagged = await uploadBoth(server, 'evil.bin', EVIL);
    for (const { jobId } of flagged) await waitForLines(server, logged(jobId, 'Finalization held: scanner unavailable'), 2);
    await clamd.start();
    for (const { jobId, slot } of flagged) {
      await server.waitForLog(logged(jobId, 'File quarantined: malware detected'));
      assert.equal((await get(server, slot)).status, 451);
    }
  });
});

for (const backend of backends) describe(`scan.unavailable = "hold" under the circuit breaker [${backend.name}]`, () => {
  let clamd: Clamd;
  let server: SpawnedServer;

  before(async () => {
    clamd = await startClamd({ signatures: [{ data: EVIL, name: 'Hfs.Outage.Evil' }] });
    const config = `[scan]\nenabled = true\nclamd = "${clamd.socket}"\n[timeouts]\nretry_base_delay = "20ms"\nretry_max_delay = "100ms"\nmax_retry_attempts = 1\n${await backend.config()}`;
    server = await startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config });
  });
  after(async () => {
    await server?.dispose();
    await clamd?.dispose();
  });

  it('opens the scan breaker, keeps the jobs waiting under it, and publishes after its probe succeeds', async () => {
    await clamd.stop();
    const held = await uploadBoth(server, 'breaker.txt', Buffer.from('held under the breaker'));
    const opened = await server.waitForLog((l) => l.dependency === 'scan' && /^Circuit breaker opened/.test(String(l.msg)));
    assert.equal(opened.to, 'open');
    const text = await metricsOf(server);
    assert.equal(sampleValue(text, 'hmac_circuit_breaker_state', { dependency: 'scan', state: 'open' }), 1);
    assert.equal(sampleValue(text, 'hmac_dead_letter_queue_length'), 0);
    const breakers = (await rawRequest(server.baseUrl, '/admin/breakers', { headers: AUTH })).json<{ breakers: Json[] }>().breakers;
    assert.equal(breakers.find((b) => b.dependency === 'scan')?.state, 'open');

    await clamd.start();
    // The breaker lets one probe through after its cool-down (30 s); it succeeds and closes it.
    await server.waitForLog((l) => l.dependency === 'scan' && l.msg === 'Circuit breaker closed', 90_000);
    for (const { jobId, slot } of held) {
      await server.waitForLog(logged(jobId, 'File published'), 30_000);
      assert.equal((await get(server, slot)).status, 200);
    }
    assert.equal(sampleValue(await metricsOf(server), 'hmac_dead_letter_items_total'), 0);
  });
});

for (const backend of backends) describe(`scan.unavailable = "publish", and oversize = "publish" [${backend.name}]`, () => {
  let clamd: Clamd;
  let server: SpawnedServer;

  before(async () => {
    clamd = await startClamd({ signatures: [{ data: EVIL, name: 'Hfs.Outage.Evil' }, { data: BIG_EVIL, name: 'Hfs.Outage.BigEvil' }] });
    const config = `[scan]\nenabled = true\nclamd = "${clamd.socket}"\nunavailable = "publish"\nmax_size = "4KB"\noversize = "publish"\n${await backend.config()}`;
    server = await startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config });
  });
  after(async () => {
    await server?.dispose();
    await clamd?.dispose();
  });

  it('a file above max_size is published unscanned, counted and logged (PUT and tus)', async () => {
    const big = await uploadBoth(server, 'big.bin', BIG_EVIL);
    for (const { jobId, slot } of big) {
      const line = await server.waitForLog(logged(jobId, 'File published unscanned: too large to scan'));
      assert.equal(line.size, BIG_EVIL.length);
      await server.waitForLog(logged(jobId, 'File published'));
      assert.deepEqual((await get(server, slot)).body, BIG_EVIL);
    }
    const text = await metricsOf(server);
    assert.equal(sampleValue(text, 'hmac_files_unscanned_total', { reason: 'oversize' }), 2);
    assert.equal(sampleValue(text, 'hmac_scans_total', { result: 'infected' }), 0, 'never sent to clamd');
  });

  it('while clamd is down, files are published unscanned with a metric and a log line; scanned again once it is back', async () => {
    await clamd.stop();
    const unscanned = await uploadBoth(server, 'down.bin', EVIL);
    for (const { jobId, slot } of unscanned) {
      await server.waitForLog(logged(jobId, 'File published unscanned: scanner unavailable'));
      await server.waitForLog(logged(jobId, 'File published'));
      assert.equal((await get(server, slot)).status, 200);
    }
    assert.equal(sampleValue(await metricsOf(server), 'hmac_files_unscanned_total', { reason: 'unavailable' }), 2);

    await clamd.start();
    const scanned = await uploadBoth(server, 'up.bin', EVIL);
    for (const { jobId, slot } of scanned) {
      await server.waitForLog(logged(jobId, 'File quarantined: malware detected'));
      assert.equal((await get(server, slot)).status, 451);
    }
  });
});
