/**
 * Admission on the cluster's numbers, with real processes: two instances on one redis-server
 * and one shared directory, each asked directly (as a balancer would spread one client's
 * requests). The per-client caps of [limits] (starts per minute, bodies at once, an IPv6 client
 * by its /64), the unfinished uploads' bytes and each slot's one upload, and the queue's
 * emergency mode count for the whole cluster, not per instance.
 */
import assert from 'node:assert/strict';
import type { ClientRequest } from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { rawRequest, randomData, slotDir, type RawResponse } from '../helpers/http.js';
import { ADMIN_TOKEN, slot, startCluster, type TestCluster } from '../helpers/cluster.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import type { SpawnedServer } from '../helpers/server.js';
import { SIZE_CLASS_LIMITS } from '../../src/transfer/index.js';

const AUTH = { Authorization: `Bearer ${ADMIN_TOKEN}` };
const TUS = { 'Tus-Resumable': '1.0.0' };

/** A small PUT at `server` from client `xff` (trust_proxy: X-Forwarded-For's last hop). */
function putFrom(cluster: TestCluster, server: SpawnedServer, xff: string, size = 10): Promise<RawResponse> {
  const s = slot(cluster.uploadUrl, `${slotDir()}/p.bin`, size);
  return rawRequest(server.baseUrl, s.putPath, { method: 'PUT', headers: { 'Content-Length': size, 'X-Forwarded-For': xff }, body: randomData(size) });
}

/** A tus creation for `path` at `server` from `xff`, sending `sent` of `length` bytes with it. */
function createFrom(cluster: TestCluster, server: SpawnedServer, xff: string, path: string, length: number, sent: number): Promise<RawResponse> {
  const s = slot(cluster.uploadUrl, path, length);
  return rawRequest(server.baseUrl, '/files/', {
    method: 'POST',
    headers: { ...TUS, 'Upload-Length': length, 'Upload-Slot': s.url, 'X-Forwarded-For': xff, ...(sent > 0 && { 'Content-Type': 'application/offset+octet-stream' }), 'Content-Length': sent },
    body: randomData(sent),
  });
}

const metricsOf = async (server: SpawnedServer) => (await rawRequest(server.baseUrl, '/metrics')).text;

/** Re-reads `probe` until it holds (another instance's numbers arrive on its own refresh, no event to await). */
async function until(what: string, probe: () => Promise<boolean>, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const codeOf = (res: RawResponse) => (res.headers['content-type']?.includes('json') ? res.json<{ code?: string }>().code : undefined);

describe('cluster mode: [limits] count across instances', () => {
  let redis: RedisServer;
  let cluster: TestCluster;
  let a: SpawnedServer;
  let b: SpawnedServer;

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster({
      size: 2,
      redisUrl: redis.url,
      config: '[server]\ntrust_proxy = true\n[limits]\nmax_bodies_per_client = 1\ncreations_per_minute_per_client = 3\nmax_unfinished_bytes = 1050\n',
    });
    [a, b] = cluster.servers as [SpawnedServer, SpawnedServer];
  });
  after(async () => {
    await cluster?.dispose();
    await redis?.stop();
  });

  it('starts per minute: a client spread over both instances gets its 3 starts once; an IPv6 client counts by its /64', async () => {
    const statuses = [await putFrom(cluster, a, '198.51.100.20'), await putFrom(cluster, b, '198.51.100.20'), await putFrom(cluster, a, '198.51.100.20')].map((r) => r.status);
    assert.deepEqual(statuses, [201, 201, 201]);
    const fourth = await putFrom(cluster, b, '198.51.100.20');
    assert.equal(fourth.status, 429, 'B saw one start of this client, the cluster three');
    assert.equal(codeOf(fourth), 'ERR_RATE_LIMITED');
    assert.ok(Number(fourth.headers['retry-after']) >= 1);
    assert.equal((await putFrom(cluster, b, '198.51.100.21')).status, 201, 'another client is not limited');

    for (const [server, address] of [[a, '2001:db8:9:1::1'], [b, '2001:db8:9:1::2'], [a, '2001:db8:9:1::3']] as const) assert.equal((await putFrom(cluster, server, address)).status, 201);
    assert.equal((await putFrom(cluster, b, '2001:db8:9:1::ffff')).status, 429, 'a fourth address of the same /64, at the other instance');
    assert.equal((await putFrom(cluster, b, '2001:db8:9:2::1')).status, 201, 'the next /64 is another client');
  });

  it('bodies at once: a body streaming at A keeps the same client out at B until it ends', async () => {
    const client = '198.51.100.30';
    const s = slot(cluster.uploadUrl, `${slotDir()}/held.bin`, 1_000);
    let held!: ClientRequest;
    const trickle = new Readable({ read() {} });
    trickle.push(Buffer.from('x'));
    const streaming = rawRequest(a.baseUrl, s.putPath, { method: 'PUT', headers: { 'Content-Length': 1_000, 'X-Forwarded-For': client }, body: trickle, onRequest: (r) => (held = r) }).catch(() => null);
    await until('the body to stream at A', async () => /^hmac_active_uploads 1$/m.test(await metricsOf(a)));

    const refused = await putFrom(cluster, b, client);
    assert.equal(refused.status, 429);
    assert.equal(codeOf(refused), 'ERR_RATE_LIMITED');
    assert.match(await metricsOf(b), /hmac_client_limited_total\{limit="bodies"\} 1/, "B refused it for A's body");

    held.destroy();
    await streaming;
    await until('A to let go of the body', async () => /^hmac_active_uploads 0$/m.test(await metricsOf(a)));
    // A removes the body's lease from Redis after the body ended (no event to await across processes).
    const reader = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    try {
      await until('the lease gone from Redis', async () => (await reader.keys(`*limits:bodies:${client}`)).length === 0);
    } finally {
      reader.disconnect();
    }
    assert.equal((await putFrom(cluster, b, client)).status, 201, 'the body that ended at A made room at B');
  });

  it('bodies at once: the same client retrying its silent body on the same slot at B is let in (the newest body takes over), at its cap', async () => {
    const client = '198.51.100.31';
    const s = slot(cluster.uploadUrl, `${slotDir()}/retried.bin`, 1_000);
    const data = randomData(1_000);
    let held!: ClientRequest;
    const trickle = new Readable({ read() {} });
    trickle.push(data.subarray(0, 10)); // then silence: the phone left the WiFi
    const streaming = rawRequest(a.baseUrl, s.putPath, { method: 'PUT', headers: { 'Content-Length': 1_000, 'X-Forwarded-For': client }, body: trickle, onRequest: (r) => (held = r) }).catch(() => null);
    await until('the body to stream at A', async () => /^hmac_active_uploads 1$/m.test(await metricsOf(a)));
    try {
      const retry = await rawRequest(b.baseUrl, s.putPath, { method: 'PUT', headers: { 'Content-Length': 1_000, 'X-Forwarded-For': client }, body: data });
      assert.equal(retry.status, 201, `the retry at B: ${retry.text}`);
      // The retry replaced A's body in the count (A ends that one): the client streams nothing now.
      assert.equal((await putFrom(cluster, b, client)).status, 201, 'the old body no longer counts: another slot is let in');
    } finally {
      held.destroy();
      await streaming;
    }
  });

  it("bodies at once: that retry at B ends A's silent body (its bytes dropped): one body per slot across the cluster, not one per instance", async () => {
    const client = '198.51.100.32';
    const s = slot(cluster.uploadUrl, `${slotDir()}/replaced.bin`, 1_000);
    const data = randomData(1_000);
    const trickle = new Readable({ read() {} });
    trickle.push(data.subarray(0, 10)); // then silence
    const old = rawRequest(a.baseUrl, s.putPath, { method: 'PUT', headers: { 'Content-Length': 1_000, 'X-Forwarded-For': client }, body: trickle }).catch((e: Error) => e);
    await until('the body to stream at A', async () => /^hmac_active_uploads 1$/m.test(await metricsOf(a)));
    // The retry at B streams too (still sending when A is checked).
    let retryReq!: ClientRequest;
    const retryBody = new Readable({ read() {} });
    retryBody.push(data.subarray(0, 10));
    const retry = rawRequest(b.baseUrl, s.putPath, { method: 'PUT', headers: { 'Content-Length': 1_000, 'X-Forwarded-For': client }, body: retryBody, onRequest: (r) => (retryReq = r) });
    try {
      await until('the retry to stream at B', async () => /^hmac_active_uploads 1$/m.test(await metricsOf(b)));
      // One counted body for the client cluster-wide (the retry); A's is marked taken over.
      const reader = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      try {
        const [key] = await reader.keys(`*limits:bodies:${client}`);
        const members = await reader.zrange(key!, 0, -1);
        assert.equal(members.filter((m) => !m.startsWith('!')).length, 1, `leases: ${members.join(' ')}`);
      } finally {
        reader.disconnect();
      }
      assert.equal((await putFrom(cluster, a, client)).status, 429, 'another slot of the client is over its cap meanwhile');
      // A learns of the takeover at its next lease renewal (lock_ttl / 3) and ends its body well
      // before the 60 s stall timeout would.
      await until('A to end the taken-over body', async () => /^hmac_active_uploads 0$/m.test(await metricsOf(a)), 15_000);
      const ended = await old;
      assert.ok(!(ended instanceof Error), `the old PUT got an answer: ${String(ended)}`);
      assert.equal(codeOf(ended), 'ERR_UPLOAD_TAKEN_OVER');
      assert.ok(a.logs.some((l) => l.msg === 'Upload taken over by a newer request'), 'A logged the takeover');
      retryBody.push(data.subarray(10));
      retryBody.push(null);
      const done = await retry;
      assert.equal(done.status, 201, `the retry at B: ${done.text}`);
      const got = await rawRequest(a.baseUrl, s.getPath);
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(data), "the retry's bytes are the file");
    } finally {
      retryReq?.destroy();
      trickle.push(null);
    }
  });

  it("unfinished uploads: B sees the bytes A's upload holds and the slot's one upload", async () => {
    const path = `${slotDir()}/big.bin`;
    const created = await createFrom(cluster, a, '198.51.100.40', path, 1_000, 600);
    assert.equal(created.status, 201, created.text);
    const location = String(created.headers.location);
    assert.equal(created.headers['upload-offset'], '600');

    // A second creation on the slot at B is pointed at A's upload (not a second upload beside it).
    const again = await createFrom(cluster, b, '198.51.100.41', path, 1_000, 0);
    assert.equal(again.status, 200, again.text);
    assert.equal(new URL(String(again.headers.location)).pathname, new URL(location).pathname, "A's upload, at B's address");
    assert.equal(again.headers['upload-offset'], '600');

    // 600 bytes held and 1,000 declared in the cluster: another 100 would pass max_unfinished_bytes (1,050), B refuses it.
    await until("B to read the cluster's held bytes", async () => /^hmac_unfinished_upload_bytes 600$/m.test(await metricsOf(b)));
    const refused = await createFrom(cluster, b, '198.51.100.42', `${slotDir()}/other.bin`, 100, 0);
    assert.equal(refused.status, 503, refused.text);
    assert.equal(codeOf(refused), 'ERR_UNFINISHED_FULL');

    // Finished at B: the bytes are released for everyone.
    const rest = await rawRequest(b.baseUrl, new URL(location).pathname, {
      method: 'PATCH',
      headers: { ...TUS, 'Upload-Offset': 600, 'Content-Type': 'application/offset+octet-stream', 'X-Forwarded-For': '198.51.100.40' },
      body: randomData(400),
    });
    assert.equal(rest.status, 204, rest.text);
    await until('A to read the released bytes', async () => /^hmac_unfinished_upload_bytes 0$/m.test(await metricsOf(a)));
    assert.equal((await createFrom(cluster, a, '198.51.100.42', `${slotDir()}/other.bin`, 100, 0)).status, 201);
  });
});

describe('cluster mode: emergency mode on the shared queue', () => {
  let redis: RedisServer;
  let cluster: TestCluster;

  before(async () => {
    redis = await startRedis();
    // Every job stops at the start of finalization until its instance gets SIGUSR2: the queue fills.
    cluster = await startCluster({
      size: 2,
      redisUrl: redis.url,
      env: { HFS_TEST_HOLD_AT: 'start' },
      config: '[workers]\nqueue_size = 4\nnumworkers = 1\n[limits]\nmax_bodies_per_client = 0\ncreations_per_minute_per_client = 0\n',
    });
  });
  after(async () => {
    await cluster?.dispose();
    await redis?.stop();
  });

  it('jobs admitted at A fill the queue: B refuses new uploads (503 + Retry-After) until they are finalized', async () => {
    const [a, b] = cluster.servers as [SpawnedServer, SpawnedServer];
    for (let i = 0; i < 4; i++) assert.equal((await putFrom(cluster, a, '127.0.0.1')).status, 201, `upload ${i} at A`);
    const level = async (server: SpawnedServer) => (await rawRequest(server.baseUrl, '/admin/queue', { headers: AUTH })).json<{ pressure: { level: string } }>().pressure.level;
    await until("B to read the shared queue's counts", async () => (await level(b)) === 'emergency');
    // Small files still pass in emergency mode: this one is not small (a tus creation, refused before any body).
    const refused = await createFrom(cluster, b, '127.0.0.1', `${slotDir()}/large.bin`, SIZE_CLASS_LIMITS.small, 0);
    assert.equal(refused.status, 503, refused.text);
    assert.equal(codeOf(refused), 'ERR_QUEUE_FULL');
    assert.ok(Number(refused.headers['retry-after']) >= 1);

    for (const server of cluster.servers) server.proc.kill('SIGUSR2');
    await until('the queue to drain', async () => (await level(b)) === 'normal');
    assert.equal((await createFrom(cluster, b, '127.0.0.1', `${slotDir()}/large.bin`, SIZE_CLASS_LIMITS.small, 0)).status, 201);
  });
});
