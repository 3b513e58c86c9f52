/**
 * A WiFi -> 4G handoff across two instances (issue 18.2, 18.6): the phone's upload goes to
 * instance A until the handoff and to instance B after it (a load balancer without stickiness),
 * and A's side of the old connection stays half-open and silent. With lock_drain_timeout = 30 s
 * the resumed upload still completes: B's request for the upload's lock reaches A through
 * Redis, A ends its silent holder by its own idle clock (takeover outcome idle_ended, logged at
 * A with both client addresses), and B's HEAD reports every byte the old connection delivered.
 * A retried XEP-0363 PUT that lands on B proceeds at once (201, never 409/423): a PUT's slot is
 * guarded per instance, so A's silent earlier body is not asked to let go; it ends at its own
 * stall timeout and, like any PUT the server ends, publishes nothing.
 * Asserted by log lines and metrics, never by elapsed time. On each storage backend (backends.ts).
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { getPublished, slot, startCluster, type TestCluster } from '../helpers/cluster.js';
import { FaultProxy, type ProxyConnection } from '../helpers/fault-proxy.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import type { SpawnedServer } from '../helpers/server.js';
import { storageBackends } from '../helpers/backends.js';

const MiB = 1024 * 1024;
const TAKEN_OVER = 'Upload taken over by a newer request';

const portOf = (server: SpawnedServer) => Number(new URL(server.baseUrl).port);

const metricValue = async (server: SpawnedServer, series: string): Promise<number> => {
  const text = (await rawRequest(server.baseUrl, '/metrics')).text;
  const escaped = series.replace(/[{}"=]/g, (c) => `\\${c}`);
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};

/** Body bytes of the last PATCH the relay forwarded on `conn`: everything after its header block. */
function lastPatchBodyBytes(conn: ProxyConnection): number {
  const data = Buffer.concat(conn.upChunks);
  const start = data.lastIndexOf(Buffer.from('PATCH /'));
  assert.ok(start >= 0, 'no PATCH on this connection');
  return data.length - (data.indexOf('\r\n\r\n', start) + 4);
}

const backends = storageBackends();

for (const backend of backends) describe(`cluster mode (${backend.name}): a handoff from instance A to instance B takes the silent holder over at once`, () => {
  let redis: RedisServer;
  let cluster: TestCluster;

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster({
      size: 2,
      redisUrl: redis.url,
      config: '[tus]\nlock_drain_timeout = "30s"\n',
      storage: { backend: backend.name, config: await backend.config() },
    });
  });
  after(async () => {
    await cluster?.dispose();
    await redis?.stop();
  });

  it('tus-js-client, one PATCH: B resumes from every byte A received, A logs idle_ended with both addresses, never the 30 s drain', { timeout: 60_000 }, async () => {
    const [a, b] = cluster.servers as [SpawnedServer, SpawnedServer];
    const proxy = await new FaultProxy({ upstreamPort: portOf(a), localAddress: '127.0.0.2', recordUp: true }).start();
    try {
      const data = randomData(3 * MiB);
      const s = slot(a.uploadUrl, `${slotDir()}/clip.mp4`, data.length);
      const headOffsets: number[] = [];
      let upload!: tus.Upload;
      const done = new Promise<void>((resolve, reject) => {
        upload = new tus.Upload(data, {
          endpoint: `${proxy.url}/files/`,
          headers: { 'Upload-Slot': s.url },
          retryDelays: [250, 250, 500, 1000],
          onAfterResponse: (req, res) => {
            if (req.getMethod() === 'HEAD') headOffsets.push(Number(res.getHeader('Upload-Offset')));
          },
          onSuccess: () => resolve(),
          onError: reject,
        });
      });
      proxy.throttle(MiB);
      upload.start();
      await proxy.waitForBytes(MiB + 100_000);
      const hanging = proxy.handoff('127.0.0.3', portOf(b));
      const oldPatch = hanging.find((c) => Buffer.concat(c.upChunks).includes('PATCH /'));
      assert.ok(oldPatch, 'a PATCH was in flight at A at the handoff');
      await done;

      const uploadId = pathOf(upload.url!).split('/').pop()!;
      const line = await a.waitForLog((l) => l.msg === TAKEN_OVER && l.uploadId === uploadId);
      assert.equal(line.outcome, 'idle_ended');
      assert.deepEqual([line.oldClient, line.newClient], ['127.0.0.2', '127.0.0.3']);
      assert.equal(a.logs.filter((l) => l.msg === TAKEN_OVER && l.uploadId === uploadId).length, 1, 'one log line per takeover');
      // B answered the resuming HEAD and took the rest (its access-log lines; stdout may trail the answers).
      const atB = (method: string, status: number) => b.waitForLog((l) => l.msg === 'Request finished' && l.method === method && String(l.path).endsWith(uploadId) && l.status === status, 10_000);
      await atB('HEAD', 200);
      await atB('PATCH', 204);
      assert.equal(headOffsets[0], lastPatchBodyBytes(oldPatch), 'B reports exactly the bytes the old connection delivered to A');
      assert.equal(await metricValue(a, 'hmac_takeovers_total{outcome="idle_ended"}'), 1);
      assert.equal(await metricValue(a, 'hmac_takeovers_total{outcome="drain_timeout"}'), 0, 'never waited for the 30 s drain');
      assert.equal(sha256((await getPublished(b.baseUrl, s.getPath)).body), sha256(data), 'bytes identical after publishing');
    } finally {
      await proxy.close();
    }
  });

  it('a retried XEP-0363 PUT that lands on B proceeds at once: 201 with the whole body, never 409/423', { timeout: 60_000 }, async () => {
    const [a, b] = cluster.servers as [SpawnedServer, SpawnedServer];
    // A's earlier body is left to its stall timeout (30 s, small class), past this test: that a PUT
    // the server ends publishes nothing is put-upload's and slow-links' business.
    const proxy = await new FaultProxy({ upstreamPort: portOf(a), localAddress: '127.0.0.2' }).start();
    try {
      const data = randomData(2 * MiB);
      const s = slot(a.uploadUrl, `${slotDir()}/photo.jpg`, data.length);
      const put = (): Promise<number> =>
        new Promise((resolve, reject) => {
          const u = new URL(proxy.url);
          const req = httpRequest({ host: u.hostname, port: u.port, path: s.putPath, method: 'PUT', agent: false, headers: { 'Content-Length': data.length } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end(data);
        });
      proxy.throttle(MiB);
      const first = put().then(
        (status) => ({ status }),
        (err: Error) => ({ err }),
      );
      await proxy.waitForBytes(MiB);
      proxy.handoff('127.0.0.3', portOf(b));
      assert.ok('err' in (await first), 'the phone saw its WiFi connection die');
      proxy.throttle(null);
      assert.equal(await put(), 201, 'the retry at B proceeds');
      assert.equal(sha256((await getPublished(b.baseUrl, s.getPath)).body), sha256(data), 'the retry published the whole body');
      const refusals = /hmac_errors_total\{code="ERR_UPLOAD_(IN_PROGRESS|LOCKED)"\} [1-9]/;
      assert.doesNotMatch((await rawRequest(b.baseUrl, '/metrics')).text, refusals);
    } finally {
      await proxy.close();
    }
  });

  it('a PUT repeated at B right after A answered 201 (the answer was lost) gets 201, whether B sees the file queued, done or published', { timeout: 60_000 }, async () => {
    const [a, b] = cluster.servers as [SpawnedServer, SpawnedServer];
    for (let i = 0; i < 10; i++) {
      const data = randomData(50_000);
      const s = slot(a.uploadUrl, `${slotDir()}/retry-${i}.bin`, data.length);
      assert.equal((await rawRequest(a.baseUrl, s.putPath, { method: 'PUT', body: data })).status, 201);
      const again = await rawRequest(b.baseUrl, s.putPath, { method: 'PUT', body: data });
      assert.equal(again.status, 201, `retry ${i}: ${again.text}`);
    }
  });

  it('an old PUT at A that finishes after its retry at B stored the same bytes gets 201; other bytes get 409', { timeout: 60_000 }, async () => {
    const [a, b] = cluster.servers as [SpawnedServer, SpawnedServer];
    for (const [label, late] of [['same', (d: Buffer) => d], ['other', (d: Buffer) => Buffer.from(d).fill(0x5a, 10_000)]] as const) {
      const data = randomData(100_000);
      const s = slot(a.uploadUrl, `${slotDir()}/late-${label}.bin`, data.length);
      const old = connect({ host: '127.0.0.1', port: portOf(a) });
      old.on('error', () => {});
      const answered = new Promise<string>((resolve) => old.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
      old.write(`PUT ${s.putPath} HTTP/1.1\r\nHost: ${new URL(a.baseUrl).host}\r\nContent-Length: ${data.length}\r\n\r\n`);
      old.write(data.subarray(0, 10_000)); // then a pause: the phone switched networks
      assert.equal((await rawRequest(b.baseUrl, s.putPath, { method: 'PUT', body: data })).status, 201, 'the retry at B');
      await getPublished(b.baseUrl, s.getPath);
      old.write(late(data).subarray(10_000)); // written, not ended: a server drops a request whose client half-closes first
      assert.match(await answered, label === 'same' ? /^HTTP\/1\.1 201 / : /^HTTP\/1\.1 409 /);
      old.destroy();
      assert.equal(sha256((await getPublished(a.baseUrl, s.getPath)).body), sha256(data), 'the published file is the retry\'s');
    }
  });
});
