/**
 * Scanning in cluster mode on S3, where the instances share the bucket and Redis but no disk
 * (each has a data directory of its own): a file quarantined by whichever instance ran its job
 * is withheld (451) at every instance, listed by every instance's admin API, and released or
 * deleted through any of them (docs/scanning.md, "Quarantine"). A real clamd, redis-server and
 * Ceph RadosGW.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { storageBackends } from '../helpers/backends.js';
import { startClamd, type Clamd } from '../helpers/clamd.js';
import { rawRequest, slotDir } from '../helpers/http.js';
import { ADMIN_TOKEN, AUTH, putFile, sampleValue, startRedis, tusCreate, type RedisServer } from '../helpers/ops.js';
import { startServer, type SpawnedServer } from '../helpers/server.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const EVIL = Buffer.from('hmac-file-server cluster scan test: a file clamd flags\n');
const TUS = { 'Tus-Resumable': '1.0.0' };

for (const backend of storageBackends().filter((b) => b.name === 's3')) describe('scanning in cluster mode on S3: one quarantine for every instance, no shared disk', () => {
  let clamd: Clamd;
  let redis: RedisServer;
  const servers: SpawnedServer[] = [];
  let tusDeleted = '';
  const getPath = (s: SpawnedServer, slot: string) => `${new URL(s.uploadUrl).pathname}${slot}`;
  const admin = (s: SpawnedServer, method: string, path: string) => rawRequest(s.baseUrl, `/admin${path}`, { method, headers: AUTH });
  /**
   * Every instance's answer for the slot, asked at once while its job runs: each GET waits for the
   * job (up to 10 s, then 503), and is woken by the quarantine wherever the job ran.
   */
  /** hmac_quarantine_files at every instance (counted in the bucket when scraped). */
  const gauges = async () => Promise.all(servers.map(async (s) => sampleValue((await rawRequest(s.baseUrl, '/metrics')).text, 'hmac_quarantine_files')));
  const statuses = async (slot: string) => Promise.all(servers.map(async (s) => (await rawRequest(s.baseUrl, getPath(s, slot))).status));

  before(async () => {
    clamd = await startClamd({ signatures: [{ data: EVIL, name: 'Hfs.Cluster.Evil' }] });
    redis = await startRedis();
    const storage = await backend.config(); // one bucket for both instances
    for (const name of ['scan-a', 'scan-b']) {
      const config = `[cluster]\ninstance_id = "${name}"\nheartbeat_interval = "300ms"\n[redis]\nhealth_check_interval = "200ms"\n[scan]\nenabled = true\nclamd = "${clamd.socket}"\n${storage}`;
      servers.push(await startServer({ config, env: { HFS_REDIS_URL: redis.url, HFS_ADMIN_TOKEN: ADMIN_TOKEN } }));
    }
    assert.notEqual(servers[0]!.dataDir, servers[1]!.dataDir);
  });
  after(async () => {
    for (const s of servers) await s.dispose();
    await redis?.stop();
    await clamd?.dispose();
  });

  it('a flagged PUT through one instance answers 451 at every instance and is listed by each; released through the other, every instance serves it', async () => {
    const [a, b] = servers as [SpawnedServer, SpawnedServer];
    const slot = `${slotDir()}/cluster-evil.pdf`;
    const put = await putFile(a, slot, EVIL);
    assert.equal(put.status, 201);
    const id = `put-${put.headers['x-request-id']}`;
    assert.deepEqual(await statuses(slot), [451, 451]);
    assert.equal((await putFile(b, slot, EVIL)).status, 451, 'a new upload to the slot, at the other instance');
    for (const s of servers) {
      const listed = (await admin(s, 'GET', '/quarantine')).json<{ quarantined: Json[] }>().quarantined;
      assert.deepEqual(listed.map((q) => [q.id, q.signature]), [[id, 'Hfs.Cluster.Evil.UNOFFICIAL']]);
    }
    for (const s of servers) assert.deepEqual(await readdir(join(s.dataDir, 'quarantine')).catch(() => []), [], 'nothing on an instance disk');
    assert.deepEqual(await gauges(), [1, 1]);

    const released = await admin(b, 'POST', `/quarantine/${id}/release`);
    assert.equal(released.status, 200, released.text);
    for (const s of servers) assert.deepEqual((await rawRequest(s.baseUrl, getPath(s, slot))).body, EVIL);
    assert.equal((await admin(a, 'GET', `/quarantine/${id}`)).status, 404);
    assert.deepEqual(await gauges(), [0, 0], 'never below zero at the instance that did not quarantine it');
  });

  it('a flagged tus upload through one instance is withheld at both (slot and upload URL); deleted through the other, both answer 404', async () => {
    const [a, b] = servers as [SpawnedServer, SpawnedServer];
    const slot = `${slotDir()}/cluster-evil.exe`;
    const tus = await tusCreate(b, slot, EVIL);
    const id = `tus-${tus.id}`;
    assert.deepEqual(await statuses(slot), [451, 451]);
    for (const s of servers) assert.equal((await rawRequest(s.baseUrl, tus.location, { method: 'HEAD', headers: TUS })).status, 451);

    assert.equal((await admin(a, 'DELETE', `/quarantine/${id}`)).status, 200);
    for (const [i, s] of servers.entries()) assert.equal((await rawRequest(s.baseUrl, getPath(s, slot))).status, 404, `slot at instance ${i}`);
    assert.equal((await rawRequest(a.baseUrl, tus.location, { method: 'HEAD', headers: TUS })).status, 404, 'upload URL at the deleting instance');
    assert.deepEqual(await backend.quarantineArea(a), []);
    tusDeleted = tus.location;
  });

  // The creating instance must not answer from a tus metadata cache that outlived the upload (#13: a cache per request).
  it('the deleted upload URL answers 404 at the instance that created it too', async () => {
    assert.ok(tusDeleted, 'the test before ran');
    const b = servers[1]!;
    assert.equal((await rawRequest(b.baseUrl, tusDeleted, { method: 'HEAD', headers: TUS })).status, 404);
  });
});
