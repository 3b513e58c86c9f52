/**
 * Cluster mode through a Redis outage, with real processes: redis-server (AOF, appendfsync
 * everysec) is killed with SIGKILL while uploads run and started again later. Uploads keep
 * working; completed ones wait in each instance's local journal and move into Redis when it is
 * back; /ready and hmac_cluster_degraded show the degraded mode; each transition is one log line;
 * every upload is published exactly once.
 *
 * Finalization is held (HFS_TEST_HOLD_AT=start, released by SIGUSR2) so jobs are still waiting
 * in the journals when Redis comes back, which is what the move is about.
 *
 * On each storage backend (backends.ts): the file store on one shared directory, and S3.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { getPublished, publishedJobs, putVia, slot, startCluster, startPersistentRedis, tusVia, type RestartableRedis, type TestCluster } from '../helpers/cluster.js';
import { rawRequest, randomData, sha256, slotDir } from '../helpers/http.js';
import { sampleValue } from '../helpers/ops.js';
import { storageBackends } from '../helpers/backends.js';

interface File {
  readonly path: string;
  readonly body: Buffer;
  readonly tus: boolean;
}

const newFiles = (n: number, label: string): File[] =>
  Array.from({ length: n }, (_, i) => ({ path: `${slotDir()}/${label}-${i}.bin`, body: randomData(2_000 + i * 101), tus: i % 2 === 0 }));

const backends = storageBackends();

for (const backend of backends) describe(`cluster mode (${backend.name}): Redis killed and restarted mid-run`, () => {
  let redis: RestartableRedis;
  let cluster: TestCluster;

  before(async () => {
    redis = await startPersistentRedis();
    cluster = await startCluster({
      size: 2,
      redisUrl: redis.url,
      config: '[workers]\nnumworkers = 2\n',
      env: { HFS_TEST_HOLD_AT: 'start' },
      storage: { backend: backend.name, config: await backend.config() },
    });
    for (const s of cluster.servers) await s.waitForLog((l) => l.msg === 'Cluster mode on: Redis reachable');
  });
  after(async () => {
    await cluster?.dispose();
    await redis?.stop();
  });

  it('uploads before, during and after the outage are all published exactly once; degraded mode is visible and logged once per transition', async (t) => {
    const upload = (f: File) => (f.tus ? tusVia : putVia)(cluster.proxy.url, cluster.uploadUrl, f.path, f.body);
    const early = newFiles(10, 'early');
    const racing = newFiles(20, 'racing');
    const during = newFiles(20, 'during');

    for (const res of await Promise.all(early.map(upload))) assert.equal(res.status, 201, res.text);
    // Some of these complete before the kill (into Redis), some after (into the journals).
    const racingAnswers = Promise.all(racing.map(upload));
    await redis.kill();
    for (const s of cluster.servers) await s.waitForLog((l) => l.msg === 'Cluster mode degraded: Redis unreachable');
    for (const res of await racingAnswers) assert.equal(res.status, 201, res.text);

    for (const s of cluster.servers) {
      const ready = await rawRequest(s.baseUrl, '/ready');
      assert.equal(ready.status, 200, 'degraded mode keeps taking uploads: still ready');
      assert.equal(ready.json<{ cluster: { mode: string; redisReachable: boolean } }>().cluster.mode, 'degraded');
      assert.equal(ready.json<{ cluster: { mode: string; redisReachable: boolean } }>().cluster.redisReachable, false);
      assert.equal(sampleValue((await rawRequest(s.baseUrl, '/metrics')).text, 'hmac_cluster_degraded'), 1);
    }
    for (const res of await Promise.all(during.map(upload))) assert.equal(res.status, 201, res.text);

    await redis.restart();
    const restored = await Promise.all(cluster.servers.map((s) => s.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('Cluster mode restored:'))));
    const moved = restored.reduce((n, l) => n + Number(l.moved), 0);
    assert.ok(moved > 0, 'jobs admitted during the outage moved from the journals into Redis');
    t.diagnostic(`moved from the journals into Redis: ${restored.map((l) => `${String(l.instanceId)} ${String(l.moved)}`).join(', ')}`);
    for (const s of cluster.servers) {
      assert.equal(sampleValue((await rawRequest(s.baseUrl, '/metrics')).text, 'hmac_cluster_degraded'), 0);
      s.proc.kill('SIGUSR2'); // finalization may go on
    }

    for (const f of [...early, ...racing, ...during]) {
      const got = await getPublished(cluster.proxy.url, slot(cluster.uploadUrl, f.path, f.body.length).getPath);
      assert.equal(got.status, 200, `${f.path}: ${got.status} ${got.text}`);
      assert.equal(sha256(got.body), sha256(f.body));
    }
    const published = publishedJobs(cluster);
    assert.equal(published.size, 50, 'one fresh publish per upload');
    assert.ok([...published.values()].every((n) => n === 1), 'none published twice');
    for (const s of cluster.servers) {
      assert.equal(s.logs.filter((l) => l.msg === 'Cluster mode degraded: Redis unreachable').length, 1);
      assert.equal(s.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('Cluster mode restored:')).length, 1);
    }
    const errors = cluster.linesOf((l) => (l.level ?? 0) >= 50);
    assert.deepEqual(errors.map((l) => l.msg), [], 'the outage is no error: one warning line per instance says it all');
    t.diagnostic(`warnings: ${[...new Set(cluster.linesOf((l) => l.level === 40).map((l) => l.msg))].join(' | ')}`);
    // The journals are empty again: everything moved or finished.
    for (const s of cluster.servers) {
      const ready = (await rawRequest(s.baseUrl, '/ready')).json<{ cluster: { mode: string; journalWaiting: number } }>();
      assert.equal(ready.cluster.mode, 'clustered');
    }
  });
});
