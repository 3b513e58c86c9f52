/**
 * Cluster mode with real processes: three instances and one redis-server behind a round-robin
 * proxy (no sticky sessions), on each storage backend (backends.ts): the file store on one shared
 * data directory, and S3 (one RadosGW bucket; each instance has a data directory of its own).
 * Uploads land anywhere, every instance's workers finalize, any instance serves any file, an
 * upload's record changed at one instance is read afresh at another, concurrent creations of one
 * slot at two instances make one upload, and the admin API and CLI of any instance show the
 * whole cluster.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, rawRequest, randomData, sha256, slotDir, type RawResponse } from '../helpers/http.js';
import { ADMIN_TOKEN, getPublished, publishedJobs, putVia, slot, startCluster, tusVia, type TestCluster } from '../helpers/cluster.js';
import { storageBackends } from '../helpers/backends.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { runCli, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const AUTH = { Authorization: `Bearer ${ADMIN_TOKEN}` };
const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTETS = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };
const backends = storageBackends();
/** The upload id at the end of a Location (instances answer with their own host). */
const idOf = (res: RawResponse) => String(res.headers.location ?? '').split('/').pop() ?? '';
/** A v3 slot (path and expiry signed, no size): creations of it may declare any length, or defer it. */
const v3Slot = (uploadUrl: string, path: string) => signSlotUrl({ secret: TEST_SECRET, path, baseUrl: uploadUrl, scheme: 'v3', expires: Math.floor(Date.now() / 1000) + 3600 });

for (const backend of backends) describe(`cluster mode (${backend.name}): three instances behind a round-robin balancer`, () => {
  let redis: RedisServer;
  let cluster: TestCluster;

  before(async () => {
    redis = await startRedis();
    // Every upload comes from 127.0.0.1 through the proxy: per-client limits off, as behind a balancer without X-Forwarded-For.
    cluster = await startCluster({
      size: 3,
      redisUrl: redis.url,
      config: '[limits]\nmax_bodies_per_client = 0\ncreations_per_minute_per_client = 0\n',
      storage: { backend: backend.name, config: await backend.config() },
    });
  });
  after(async () => {
    await cluster?.dispose();
    await redis?.stop();
  });

  it('each instance keeps its own state apart from the shared bytes and says it is on Redis', async () => {
    for (let i = 0; i < 3; i++) {
      const server = cluster.servers[i]!;
      await server.waitForLog((l) => l.msg === 'Cluster mode on: Redis reachable');
      assert.ok(server.logs.some((l) => l.msg === 'Storage backend' && l.backend === backend.name), `instance ${i} stores on ${backend.name}`);
      const own = join(cluster.dataDirOf(i), 'instances', cluster.instanceId(i));
      assert.ok(existsSync(join(own, 'server.json')), 'the server lock file is in the instance directory');
      assert.ok(existsSync(join(own, 'server.lock')), 'so is the data-directory lock: the shared directory takes several instances');
      assert.ok(existsSync(join(own, 'queue', 'queue.sqlite')), 'the local journal is in the instance directory');
      const ready = await rawRequest(server.baseUrl, '/ready');
      assert.equal(ready.status, 200);
      assert.deepEqual(ready.json().cluster, { mode: 'clustered', instanceId: cluster.instanceId(i), redisReachable: true, journalWaiting: 0 });
    }
    assert.equal(existsSync(join(cluster.dataDir, 'server.json')), false, 'no instance claims the shared directory');
    assert.equal(existsSync(join(cluster.dataDir, 'server.lock')), false);
  });

  it('200 concurrent uploads (PUT and tus) across instances are each published once and served by every instance', async () => {
    const before = publishedJobs(cluster);
    const files = Array.from({ length: 200 }, (_, i) => ({ path: `${slotDir()}/f${i}.bin`, body: randomData(1_000 + i * 37), tus: i % 2 === 1 }));
    const answers = await Promise.all(files.map((f) => (f.tus ? tusVia : putVia)(cluster.proxy.url, cluster.uploadUrl, f.path, f.body)));
    answers.forEach((res, i) => assert.equal(res.status, 201, `upload ${i}: ${res.status} ${res.text}`));
    assert.ok(cluster.proxy.connections.every((n) => n > 0), `every instance took uploads: ${cluster.proxy.connections.join(', ')}`);

    // Any instance serves any file: read each through the balancer and straight from one instance.
    for (const [i, f] of files.entries()) {
      const s = slot(cluster.uploadUrl, f.path, f.body.length);
      const viaProxy = await getPublished(cluster.proxy.url, s.getPath);
      assert.equal(viaProxy.status, 200, `GET ${f.path}: ${viaProxy.status}`);
      assert.equal(sha256(viaProxy.body), sha256(f.body));
      const direct = await getPublished(cluster.servers[i % 3]!.baseUrl, s.getPath);
      assert.equal(direct.status, 200);
    }
    const published = publishedJobs(cluster);
    const fresh = [...published].filter(([id]) => !before.has(id));
    assert.equal(fresh.length, 200, 'one fresh publish per upload');
    assert.ok(fresh.every(([, n]) => n === 1), 'no upload published twice');
    for (const server of cluster.servers) {
      assert.ok(server.logs.some((l) => l.msg === 'File published'), 'workers of every instance finalized some');
    }
  });

  it('an upload record changed at one instance is read afresh at another: a length declared later, a termination', async () => {
    const [a, b] = cluster.servers as [SpawnedServer, SpawnedServer];
    const body = randomData(5_000);
    const deferred = v3Slot(cluster.uploadUrl, `${slotDir()}/deferred.bin`);
    const created = await rawRequest(a.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Defer-Length': '1', 'Upload-Slot': deferred.url } });
    assert.equal(created.status, 201, created.text);
    const upload = `/files/${idOf(created)}`;
    const headB = await rawRequest(b.baseUrl, upload, { method: 'HEAD', headers: TUS });
    assert.equal(headB.status, 200);
    assert.equal(headB.headers['upload-defer-length'], '1', 'B read the record while the length was deferred');
    const first = await rawRequest(a.baseUrl, upload, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0', 'Upload-Length': String(body.length) }, body: body.subarray(0, 1_000) });
    assert.equal(first.status, 204, first.text);
    const again = await rawRequest(b.baseUrl, upload, { method: 'HEAD', headers: TUS });
    assert.equal(again.headers['upload-length'], String(body.length), 'the length declared at A is known at B');
    assert.equal(again.headers['upload-offset'], '1000');
    const rest = await rawRequest(b.baseUrl, upload, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '1000' }, body: body.subarray(1_000) });
    assert.equal(rest.status, 204, `B completes the upload it knows the length of: ${rest.text}`);
    const got = await getPublished(cluster.proxy.url, pathOf(deferred.getUrl));
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), sha256(body));

    const ended = slot(cluster.uploadUrl, `${slotDir()}/terminated.bin`, 4_000);
    const second = await rawRequest(a.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': '4000', 'Upload-Slot': ended.url } });
    assert.equal(second.status, 201, second.text);
    const doomed = `/files/${idOf(second)}`;
    assert.equal((await rawRequest(b.baseUrl, doomed, { method: 'HEAD', headers: TUS })).status, 200);
    assert.equal((await rawRequest(a.baseUrl, doomed, { method: 'DELETE', headers: TUS })).status, 204);
    const gone = await rawRequest(b.baseUrl, doomed, { method: 'HEAD', headers: TUS });
    assert.equal(gone.status, 404, `a terminated upload is gone at B too (not "complete"): ${gone.status} offset ${String(gone.headers['upload-offset'])}`);
    const anew = await rawRequest(b.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': '4000', 'Upload-Slot': ended.url } });
    assert.equal(anew.status, 201, 'the slot is free again at every instance');
  });

  it('concurrent creations of one slot at two instances make one upload: the other gets 200 with its URL and offset, or 409 for another length', async () => {
    const [a, b] = cluster.servers as [SpawnedServer, SpawnedServer];
    const create = (server: SpawnedServer, slotUrl: string, length: number) =>
      rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length), 'Upload-Slot': slotUrl } });
    const size = 20_000;
    // Many slots at once, each created at A and at B in the same moment: a lost race shows as two 201s.
    const same = await Promise.all(
      Array.from({ length: 20 }, async (_, r) => {
        const s = slot(cluster.uploadUrl, `${slotDir()}/race-${r}.bin`, size);
        return { s, answers: await Promise.all([create(a, s.url, size), create(b, s.url, size)]) };
      }),
    );
    for (const { answers } of same) {
      assert.deepEqual(answers.map((r) => r.status).sort(), [200, 201], answers.map((r) => `${r.status} ${r.text}`).join(' | '));
      assert.equal(idOf(answers[0]!), idOf(answers[1]!), 'both name the one upload');
      assert.equal(answers.find((r) => r.status === 200)!.headers['upload-offset'], '0');
    }
    const other = await Promise.all(
      Array.from({ length: 10 }, async (_, r) => {
        const s = v3Slot(cluster.uploadUrl, `${slotDir()}/race-other-${r}.bin`);
        return Promise.all([create(a, s.url, size), create(b, s.url, size + 1)]);
      }),
    );
    for (const answers of other) {
      assert.deepEqual(answers.map((r) => r.status).sort(), [201, 409], answers.map((r) => `${r.status} ${r.text}`).join(' | '));
      const refused = answers.find((r) => r.status === 409)!;
      assert.equal(refused.json().code, 'ERR_UPLOAD_EXISTS');
      assert.equal(idOf(refused), idOf(answers.find((r) => r.status === 201)!), 'the 409 names the upload that won');
    }
    // The one upload of each slot completes and is published once.
    const before = publishedJobs(cluster);
    for (const { s, answers } of same.slice(0, 5)) {
      const body = randomData(size);
      const done = await rawRequest(cluster.proxy.url, `/files/${idOf(answers[0]!)}`, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0' }, body });
      assert.equal(done.status, 204, done.text);
      const got = await getPublished(cluster.proxy.url, s.getPath);
      assert.equal(sha256(got.body), sha256(body));
    }
    // A file is readable a moment before its 'File published' line is written: wait for the lines (bounded).
    const freshJobs = () => [...publishedJobs(cluster)].filter(([id]) => !before.has(id));
    await Promise.any(cluster.servers.map((server) => server.waitForLog(() => freshJobs().length >= 5, 10_000))).catch(() => {});
    const fresh = freshJobs();
    assert.equal(fresh.length, 5);
    assert.ok(fresh.every(([, n]) => n === 1));
  });

  it('the admin API and the CLI of any instance show every instance, its workers and breakers, and the queue per tier', async () => {
    const server = cluster.servers[1]!;
    const deadline = Date.now() + 20_000;
    let body: { reachable: boolean; instances: Array<{ id: string; mode: string; workers: unknown[]; breakers: unknown[] }> };
    do {
      const res = await rawRequest(server.baseUrl, '/admin/cluster', { headers: AUTH });
      assert.equal(res.status, 200);
      body = res.json();
    } while (body.instances.length < 3 && Date.now() < deadline);
    assert.equal(body.reachable, true);
    assert.deepEqual(body.instances.map((i) => i.id), [0, 1, 2].map((i) => cluster.instanceId(i)));
    for (const instance of body.instances) {
      assert.equal(instance.mode, 'clustered');
      assert.equal(instance.workers.length, 4, 'numworkers workers per instance');
      assert.equal(instance.breakers.length, 1, 'the storage breaker (no webhook configured)');
    }
    const status = (await rawRequest(server.baseUrl, '/admin/queue', { headers: AUTH })).json<{ counts: { done: Record<string, number> }; cluster: { instances: unknown[] } }>();
    assert.equal(status.cluster.instances.length, 3);
    const doneTotal = Object.values(status.counts.done).reduce((a, b) => a + b, 0);
    assert.ok(doneTotal >= 200, `the cluster's done jobs are counted at any instance: ${doneTotal}`);
    const listed = await rawRequest(server.baseUrl, '/admin/queue/jobs?state=done&limit=5', { headers: AUTH });
    assert.equal(listed.status, 200, listed.text);
    assert.equal(listed.json<{ jobs: Array<{ state: string }> }>().jobs.filter((j) => j.state === 'done').length, 5, 'jobs of the shared queue are listed');

    const cli = await runCli(['queue', 'status', '--url', `${cluster.proxy.url}/admin`, '--token', ADMIN_TOKEN]);
    assert.equal(cli.code, 0, cli.stderr);
    for (let i = 0; i < 3; i++) assert.match(cli.stdout, new RegExp(`^${cluster.instanceId(i)}\\s+clustered`, 'm'));
    assert.match(cli.stdout, /^INSTANCE\s+WORKER\s+STATUS/m);

    const offline = await runCli(['queue', 'status', '--offline'], { HFS_REDIS_URL: redis.url, HFS_DATA_DIR: cluster.dataDir });
    assert.equal(offline.code, 2, 'no offline mode in cluster mode');
    assert.match(offline.stderr, /cluster mode/);
  });
});

for (const backend of backends) describe(`cluster mode (${backend.name}): a download at one instance waits for a file being finalized at another`, () => {
  let redis: RedisServer;
  let cluster: TestCluster;

  before(async () => {
    redis = await startRedis();
    // Every job stops at the start of finalization until its instance gets SIGUSR2.
    cluster = await startCluster({ size: 2, redisUrl: redis.url, env: { HFS_TEST_HOLD_AT: 'start' }, storage: { backend: backend.name, config: await backend.config() } });
  });
  after(async () => {
    await cluster?.dispose();
    await redis?.stop();
  });

  it('GET at B while the job is held at A is answered once A publishes (no 404, no 503): the publish notification crosses instances', async () => {
    const body = randomData(50_000);
    const path = `${slotDir()}/held.bin`;
    const [a, b] = cluster.servers as [SpawnedServer, SpawnedServer];
    assert.equal((await putVia(a.baseUrl, cluster.uploadUrl, path, body)).status, 201);
    const held = await Promise.race(cluster.servers.map((s, i) => s.waitForLog((l) => l.msg === 'Test hold: job waiting for SIGUSR2').then(() => i)));
    const holder = cluster.servers[held]!;
    const other = held === 0 ? b : a;
    const s = slot(cluster.uploadUrl, path, body.length);
    cluster.proxy.pin(held === 0 ? 1 : 0);
    const target = held === 0 ? 1 : 0;
    const reached = cluster.proxy.waitForBytes(target, cluster.proxy.bytesUp[target]! + 1);
    const download = rawRequest(cluster.proxy.url, s.getPath);
    await reached; // the GET reached the other instance
    holder.proc.kill('SIGUSR2');
    const res = await download;
    assert.equal(res.status, 200, `GET at ${other === a ? 'a' : 'b'}: ${res.status} ${res.text}`);
    assert.equal(sha256(res.body), sha256(body));
    cluster.proxy.unpin();
  });

  it('a path nobody uploaded is still a 404 at once', async () => {
    const res = await rawRequest(cluster.servers[1]!.baseUrl, slot(cluster.uploadUrl, `${slotDir()}/never.bin`, 1).getPath);
    assert.equal(res.status, 404);
  });
});
