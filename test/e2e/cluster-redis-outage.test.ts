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
import { stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getPublished, publishedJobs, putVia, slot, startCluster, startPersistentRedis, tusVia, type RestartableRedis, type TestCluster } from '../helpers/cluster.js';
import { pathOf, rawRequest, randomData, sha256, slotDir } from '../helpers/http.js';
import type { SpawnedServer } from '../helpers/server.js';
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

// The file store only: publishing hard-links the tus data file, so a write into it after the
// upload finished would change the published file (and, through dedup, every slot sharing its
// bytes). On S3 a finished multipart upload takes no more parts.
describe('cluster mode (file): a request cut off with Redis stops before another instance may finish its upload', () => {
  let redis: RestartableRedis;
  let cluster: TestCluster;

  before(async () => {
    redis = await startPersistentRedis();
    cluster = await startCluster({ size: 2, redisUrl: redis.url });
    for (const s of cluster.servers) await s.waitForLog((l) => l.msg === 'Cluster mode on: Redis reachable');
  });
  after(async () => {
    await cluster?.dispose();
    await redis?.stop();
  });

  it('A holds a half-open PATCH when Redis dies; B resumes and publishes; bytes A is sent afterwards never reach the published file', { timeout: 90_000 }, async () => {
    const [a, b] = cluster.servers as [SpawnedServer, SpawnedServer];
    const data = randomData(1_000_000);
    const s = slot(a.uploadUrl, `${slotDir()}/shared.bin`, data.length);
    const created = await rawRequest(a.baseUrl, '/files/', { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(data.length), 'Upload-Slot': s.url } });
    assert.equal(created.status, 201, created.text);
    const at = pathOf(String(created.headers.location));
    const dataFile = join(cluster.dataDir, 'tus', at.split('/').pop()!);

    // A's PATCH: 300,000 bytes, then silence on an open connection (a phone that left WiFi).
    const stale = connect({ host: '127.0.0.1', port: Number(new URL(a.baseUrl).port) });
    // A answers once its request is over: ended when its lock was lost, or at the end of the body.
    const staleAnswered = new Promise<string>((resolve) => stale.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
    stale.on('error', () => {}); // a reset after A's answer
    stale.write(`PATCH ${at} HTTP/1.1\r\nHost: ${new URL(a.baseUrl).host}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: ${data.length}\r\n\r\n`);
    stale.write(data.subarray(0, 300_000));
    await waitFor(async () => (await stat(dataFile)).size === 300_000, 'A stored the first 300,000 bytes');

    await redis.kill();
    // B: where the upload stands, then the rest. Its lock waits until A's Redis lock can no
    // longer be held (A stops at 3/4 of lock_ttl without a renewal).
    const head = await rawRequest(b.baseUrl, at, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    assert.equal(head.status, 200, head.text);
    const offset = Number(head.headers['upload-offset']);
    assert.equal(offset, 300_000);
    const rest = await rawRequest(b.baseUrl, at, { method: 'PATCH', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' }, body: data.subarray(offset) });
    assert.equal(rest.status, 204, rest.text);
    const published = await getPublished(b.baseUrl, s.getPath);
    assert.equal(sha256(published.body), sha256(data));

    // The old connection wakes up and sends something else for the rest.
    stale.end(Buffer.alloc(data.length - 300_000, 0x5a));
    assert.match(await staleAnswered, /^HTTP\/1\.1 /);
    for (const server of [a, b]) {
      const again = await rawRequest(server.baseUrl, s.getPath);
      assert.equal(sha256(again.body), sha256(data), `the published file is intact at ${server.baseUrl}`);
    }
    assert.ok(cluster.linesOf((l) => l.msg === 'Upload lock lost: its request was asked to stop').length >= 1, 'A counted its lock as lost');
  });
});

/** Polls `check` (every 20 ms, at most 20 s): for state with no event to await (a file's size). */
async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
