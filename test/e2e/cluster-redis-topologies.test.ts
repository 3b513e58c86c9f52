/**
 * The two multi-host `[redis] url` forms against real Redis deployments built from Debian's
 * redis-server: Sentinel (`redis-server --sentinel`) and a three-node Redis Cluster (slots
 * assigned with CLUSTER ADDSLOTSRANGE / MEET). Two instances on each: uploads through both,
 * published once, served by either.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { getPublished, publishedJobs, putVia, slot, startCluster, tusVia, type TestCluster } from '../helpers/cluster.js';
import { randomData, sha256, slotDir } from '../helpers/http.js';
import { freePort, startRedis, type RedisServer } from '../helpers/redis.js';
import { startService, withTimeout, type RunningService } from '../helpers/service.js';

async function uploadsWork(cluster: TestCluster): Promise<void> {
  for (const s of cluster.servers) await s.waitForLog((l) => l.msg === 'Cluster mode on: Redis reachable');
  const files = Array.from({ length: 6 }, (_, i) => ({ path: `${slotDir()}/t${i}.bin`, body: randomData(3_000 + i), tus: i % 2 === 0 }));
  const answers = await Promise.all(files.map((f) => (f.tus ? tusVia : putVia)(cluster.proxy.url, cluster.uploadUrl, f.path, f.body)));
  for (const res of answers) assert.equal(res.status, 201, res.text);
  for (const [i, f] of files.entries()) {
    const got = await getPublished(cluster.servers[i % cluster.servers.length]!.baseUrl, slot(cluster.uploadUrl, f.path, f.body.length).getPath);
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), sha256(f.body));
  }
  const published = publishedJobs(cluster);
  assert.equal(published.size, files.length);
  assert.ok([...published.values()].every((n) => n === 1));
}

describe('cluster mode on Redis Sentinel (redis+sentinel://)', () => {
  let master: RedisServer;
  let sentinel: RunningService;
  let dir: string;
  let cluster: TestCluster;

  before(async () => {
    master = await startRedis();
    dir = await mkdtemp(join(tmpdir(), 'hfs-sentinel-'));
    const port = await freePort();
    const conf = join(dir, 'sentinel.conf');
    await writeFile(conf, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor mymaster 127.0.0.1 ${new URL(master.url).port} 1\n`);
    sentinel = await startService({ cmd: 'redis-server', pkg: 'redis-server', args: [conf, '--sentinel'], ready: /\+monitor master mymaster/ });
    cluster = await startCluster({ size: 2, redisUrl: `redis+sentinel://127.0.0.1:${port}/mymaster` });
  });
  after(async () => {
    await cluster?.dispose();
    await sentinel?.stop();
    await master?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('finds the master through the sentinel; uploads work across both instances', async () => uploadsWork(cluster));
});

describe('cluster mode on a three-node Redis Cluster (redis+cluster://)', () => {
  const nodes: RunningService[] = [];
  let dir: string;
  let cluster: TestCluster;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-rediscluster-'));
    const ports = [await freePort(), await freePort(), await freePort()];
    for (const port of ports) {
      nodes.push(
        await startService({
          cmd: 'redis-server',
          pkg: 'redis-server',
          args: ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--save', '', '--appendonly', 'no'],
          ready: /Ready to accept connections/,
        }),
      );
    }
    // What redis-cli --cluster create does: split the 16384 slots, introduce the nodes to each other.
    const admins = ports.map((port) => new Redis({ port, host: '127.0.0.1', lazyConnect: false }));
    const ranges = [[0, 5460], [5461, 10922], [10923, 16383]] as const;
    await Promise.all(admins.map((a, i) => a.call('CLUSTER', 'ADDSLOTSRANGE', ranges[i]![0], ranges[i]![1])));
    for (const port of ports.slice(1)) await admins[0]!.call('CLUSTER', 'MEET', '127.0.0.1', port);
    // The cluster says "ok" on every node once gossip spread the slots: no event to wait for, so look.
    await withTimeout(
      (async () => {
        for (;;) {
          const states = await Promise.all(admins.map((a) => a.call('CLUSTER', 'INFO') as Promise<string>));
          if (states.every((s) => s.includes('cluster_state:ok'))) return;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })(),
      30_000,
      'the Redis Cluster did not reach cluster_state:ok',
    );
    for (const a of admins) a.disconnect();
    cluster = await startCluster({ size: 2, redisUrl: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}` });
  });
  after(async () => {
    await cluster?.dispose();
    for (const n of nodes) await n.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keys of each script in one hash slot; uploads work across both instances', async () => uploadsWork(cluster));
});

describe('cluster mode with a password Redis refuses', () => {
  let redis: RunningService;
  let port: number;
  before(async () => {
    port = await freePort();
    redis = await startService({
      cmd: 'redis-server',
      pkg: 'redis-server',
      args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', 'the-right-one'],
      ready: /Ready to accept connections/,
    });
  });
  after(async () => redis?.stop());

  it('warns once, naming [redis] url and never the password, not even in debug lines; uploads go on degraded', { timeout: 60_000 }, async () => {
    const wrong = 'wrongPW-leakcheck';
    const cluster = await startCluster({ size: 1, redisUrl: `redis://:${wrong}@127.0.0.1:${port}/0`, config: '[logging]\nlevel = "debug"\n' });
    try {
      const [server] = cluster.servers;
      const warning = await server!.waitForLog((l) => l.msg?.startsWith('Redis refuses this instance') === true, 20_000);
      assert.equal(warning.level, 40);
      assert.equal(warning.reply, 'WRONGPASS');
      const data = randomData(5_000);
      assert.equal((await putVia(cluster.proxy.url, cluster.uploadUrl, `${slotDir()}/degraded.bin`, data)).status, 201);
      assert.equal(cluster.linesOf((l) => l.msg?.startsWith('Redis refuses this instance') === true).length, 1, 'once');
      assert.ok(cluster.linesOf((l) => l.msg === 'Redis connection error').length > 0, 'the debug lines this is about were written');
      assert.doesNotMatch(server!.output(), new RegExp(wrong), 'the password is in no line');
    } finally {
      await cluster.dispose();
    }
  });
});
