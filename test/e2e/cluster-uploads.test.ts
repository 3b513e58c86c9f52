/**
 * Cluster mode with real processes: three instances on one shared data directory and one
 * redis-server, behind a round-robin proxy (no sticky sessions). Uploads land anywhere, every
 * instance's workers finalize, any instance serves any file, and the admin API and CLI of any
 * instance show the whole cluster.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rawRequest, randomData, sha256, slotDir } from '../helpers/http.js';
import { ADMIN_TOKEN, getPublished, publishedJobs, putVia, slot, startCluster, tusVia, type TestCluster } from '../helpers/cluster.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { runCli, type SpawnedServer } from '../helpers/server.js';

const AUTH = { Authorization: `Bearer ${ADMIN_TOKEN}` };

describe('cluster mode: three instances behind a round-robin balancer', () => {
  let redis: RedisServer;
  let cluster: TestCluster;

  before(async () => {
    redis = await startRedis();
    // Every upload comes from 127.0.0.1 through the proxy: per-client limits off, as behind a balancer without X-Forwarded-For.
    cluster = await startCluster({ size: 3, redisUrl: redis.url, config: '[limits]\nmax_bodies_per_client = 0\ncreations_per_minute_per_client = 0\n' });
  });
  after(async () => {
    await cluster?.dispose();
    await redis?.stop();
  });

  it('each instance keeps its own state apart from the shared bytes and says it is on Redis', async () => {
    for (let i = 0; i < 3; i++) {
      const server = cluster.servers[i]!;
      await server.waitForLog((l) => l.msg === 'Cluster mode on: Redis reachable');
      const own = join(cluster.dataDir, 'instances', cluster.instanceId(i));
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

describe('cluster mode: a download at one instance waits for a file being finalized at another', () => {
  let redis: RedisServer;
  let cluster: TestCluster;

  before(async () => {
    redis = await startRedis();
    // Every job stops at the start of finalization until its instance gets SIGUSR2.
    cluster = await startCluster({ size: 2, redisUrl: redis.url, env: { HFS_TEST_HOLD_AT: 'start' } });
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
