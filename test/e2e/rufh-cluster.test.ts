/**
 * IETF Resumable Uploads in cluster mode (issue 21 item 5): two instances on one data directory
 * and one Redis. A resource created by an upgraded PUT at instance A is resumed at instance B
 * (a phone whose new network lands on the other instance): after a closed cut, after a
 * half-open one (B's HEAD takes the upload over through the Redis lock release request and A's
 * silent body ends), and through a repeated PUT at B, which is sent to A's resource.
 * The raw-socket client talks to each instance directly (a TCP balancer passes the 104).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { getPublished, slot, startCluster, type TestCluster } from '../helpers/cluster.js';
import { randomData, sha256, slotDir } from '../helpers/http.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { rufhRequest } from '../helpers/rufh-client.js';

const KiB = 1024;
const PARTIAL = 'application/partial-upload';
const V8 = { 'Upload-Draft-Interop-Version': '8' };
const upgrade = (size: number) => ({ ...V8, 'Upload-Complete': '?1', 'Upload-Length': String(size), 'Content-Length': String(size) });

describe('IETF Resumable Uploads in cluster mode: created at one instance, resumed at another', () => {
  let redis: RedisServer;
  let cluster: TestCluster;
  const a = () => cluster.servers[0]!;
  const b = () => cluster.servers[1]!;

  before(async () => {
    redis = await startRedis();
    // The clients are on loopback, which [rufh] counts as a proxy by default.
    cluster = await startCluster({ size: 2, redisUrl: redis.url, config: '[tus]\nlock_drain_timeout = "1s"\n\n[rufh]\nproxy_addresses = []\n' });
  });
  after(async () => {
    await cluster?.dispose();
    await redis?.stop();
  });

  /** HEAD at `baseUrl`, then PATCH the rest there; asserts the upload completes and is published byte-identical. */
  async function resumeAt(baseUrl: string, location: string, data: Buffer, getPath: string): Promise<number> {
    const path = new URL(location).pathname;
    const head = await rufhRequest(baseUrl, { method: 'HEAD', target: path, headers: V8 });
    assert.equal(head.final?.status, 204);
    const offset = Number(head.final!.headers['upload-offset']);
    assert.equal(head.final!.headers['upload-complete'], '?0');
    const patch = await rufhRequest(baseUrl, { method: 'PATCH', target: path, headers: { ...V8, 'Upload-Complete': '?1', 'Upload-Offset': String(offset), 'Content-Type': PARTIAL }, body: data.subarray(offset) });
    assert.equal(patch.final?.status, 201, patch.final?.body);
    const got = await getPublished(baseUrl, getPath);
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), sha256(data));
    return offset;
  }

  it('closed cut at A: HEAD and PATCH at B complete it', async () => {
    const data = randomData(500 * KiB + 9);
    const s = slot(a().uploadUrl, `${slotDir()}/closed.jpg`, data.length);
    const first = await rufhRequest(a().baseUrl, { method: 'PUT', target: s.putPath, headers: upgrade(data.length), body: data, cutAfter: 150 * KiB, cut: 'close' });
    const location = first.interim.find((h) => h.status === 104)!.headers.location!;
    const offset = await resumeAt(b().baseUrl, location, data, s.getPath);
    assert.ok(offset > 0 && offset <= 150 * KiB, `offset ${offset}`);
  });

  it('half-open cut at A: the HEAD at B takes the upload over (A ends the silent body, bytes kept), PATCH at B completes it', async () => {
    const data = randomData(500 * KiB);
    const s = slot(a().uploadUrl, `${slotDir()}/half-open.jpg`, data.length);
    const first = await rufhRequest(a().baseUrl, { method: 'PUT', target: s.putPath, headers: upgrade(data.length), body: data, cutAfter: 150 * KiB, cut: 'half-open' });
    const location = first.interim.find((h) => h.status === 104)!.headers.location!;
    const id = location.split('/').pop();
    try {
      const ended = a().waitForLog((l) => l.msg === 'Resumable upload body ended early; received bytes kept' && l.uploadId === id && l.reason === 'takeover', 20_000);
      const offset = await resumeAt(b().baseUrl, location, data, s.getPath);
      assert.equal((await ended).offset, offset, 'B resumed from the offset A kept');
    } finally {
      first.socket?.destroy();
    }
  });

  it('a repeated upgraded PUT at B for a slot whose resource A created: sent to the same Location, resumed at B', async () => {
    const data = randomData(300 * KiB);
    const s = slot(a().uploadUrl, `${slotDir()}/again.jpg`, data.length);
    const first = await rufhRequest(a().baseUrl, { method: 'PUT', target: s.putPath, headers: upgrade(data.length), body: data, cutAfter: 100 * KiB });
    const location = first.interim.find((h) => h.status === 104)!.headers.location!;
    const again = await rufhRequest(b().baseUrl, { method: 'PUT', target: s.putPath, headers: upgrade(data.length), body: data });
    const interim = again.interim.filter((h) => h.status === 104);
    assert.equal(interim.length, 1);
    assert.equal(new URL(interim[0]!.headers.location!).pathname, new URL(location).pathname, 'the same resource');
    assert.equal(again.final, null, 'no final answer: the client resumes');
    await resumeAt(b().baseUrl, location, data, s.getPath);
  });
  it('careful creations of one slot at A and at B in the same moment: one resource, the other gets 409', async () => {
    const size = 10 * KiB;
    const careful = (baseUrl: string, slotUrl: string) =>
      rufhRequest(baseUrl, { method: 'POST', target: '/files/', headers: { 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?0', 'Upload-Length': String(size), 'Upload-Slot': slotUrl } });
    const slots = Array.from({ length: 10 }, (_, r) => slot(a().uploadUrl, `${slotDir()}/careful-${r}.bin`, size));
    const raced = await Promise.all(slots.map(async (s) => Promise.all([careful(a().baseUrl, s.url), careful(b().baseUrl, s.url)])));
    for (const pair of raced) assert.deepEqual(pair.map((r) => r.final?.status).sort(), [201, 409], pair.map((r) => `${r.final?.status} ${r.final?.body}`).join(' | '));
    // The one resource of a slot completes at the other instance and is published.
    const data = randomData(size);
    const won = raced[0]!.find((r) => r.final?.status === 201)!;
    const path = new URL(won.final!.headers.location!).pathname;
    const patch = await rufhRequest(b().baseUrl, { method: 'PATCH', target: path, headers: { 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?1', 'Upload-Offset': '0', 'Content-Type': PARTIAL }, body: data });
    assert.equal(patch.final?.status, 201, patch.final?.body);
    assert.equal(sha256((await getPublished(a().baseUrl, slots[0]!.getPath)).body), sha256(data));
  });
});
