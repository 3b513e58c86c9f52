/**
 * Issue 9.1 and 9.2: one slot must not starve everyone. One body streams per slot at a time,
 * per-client caps on concurrent bodies and starts per minute (X-Forwarded-For with trust_proxy),
 * one unfinished tus upload per slot, and a cap on the bytes unfinished uploads hold.
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, slotDir } from '../helpers/http.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTETS = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

interface Trickler {
  /** Resolves with the status once the server answers (or 0 when the connection died). */
  answered: Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>;
  stop(): void;
}

/** Sends the request headers and one byte, then one byte every 2 s, from `localAddress`. */
function trickle(server: SpawnedServer, path: string, options: { method: string; headers: Record<string, string | number>; localAddress?: string }): Trickler {
  const u = new URL(server.baseUrl);
  let timer: NodeJS.Timeout | undefined;
  const req = httpRequest({ host: u.hostname, port: u.port, path, method: options.method, headers: options.headers, agent: false, localAddress: options.localAddress });
  const answered = new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', () => resolve({ status: 0, headers: {}, body: '' }));
  });
  req.write(Buffer.from('x'));
  timer = setInterval(() => req.writable && req.write(Buffer.from('x')), 2000);
  void answered.then(() => clearInterval(timer));
  return { answered, stop: () => (clearInterval(timer), req.destroy()) };
}

const metrics = async (server: SpawnedServer) => (await rawRequest(server.baseUrl, '/metrics')).text;

/** Re-reads /metrics until it matches (no event says "the server counted it"). */
async function untilMetric(server: SpawnedServer, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (pattern.test(await metrics(server))) return;
    await sleep(50);
  }
  throw new Error(`metrics never matched ${pattern}`);
}

/** Resolves once `n` of `answers` have settled. */
function settled(answers: Array<Promise<unknown>>, n: number): Promise<void> {
  let count = 0;
  return new Promise((resolve) => {
    for (const a of answers) void a.then(() => ++count === n && resolve());
  });
}

describe('one slot does not block everyone (issue 9.1)', () => {
  it('100 trickling PUTs and 100 trickling tus PATCHes from one slot each hold one body; a 5-byte PUT from another client goes straight through', { timeout: 120_000 }, async () => {
    const server = await startServer({ config: '[server]\nmax_concurrent_uploads = 20\n[workers]\nqueue_timeout = "60s"\n[limits]\nmax_bodies_per_client = 200\nmax_connections_per_client = 0\ncreations_per_minute_per_client = 1000\n' });
    const attackers: Trickler[] = [];
    try {
      const size = 50_000_000;
      const putSlot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/a.bin`, baseUrl: server.uploadUrl, size });
      for (let i = 0; i < 100; i++) attackers.push(trickle(server, pathOf(putSlot.url), { method: 'PUT', headers: { 'Content-Length': size }, localAddress: '127.0.0.2' }));

      const tusSlot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/t.bin`, baseUrl: server.uploadUrl, size });
      const creations = await Promise.all(
        Array.from({ length: 100 }, () => rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': String(size), 'Upload-Slot': tusSlot.url } })),
      );
      const locations = new Set(creations.map((c) => String(c.headers.location)));
      assert.equal(locations.size, 1, 'one unfinished upload per slot: every creation names the same upload');
      assert.deepEqual(creations.map((c) => c.status).sort((x, y) => x - y), [...Array<number>(99).fill(200), 201]);
      const location = pathOf([...locations][0]!);
      for (let i = 0; i < 100; i++) attackers.push(trickle(server, location, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0', 'Content-Length': size }, localAddress: '127.0.0.2' }));

      // All but one request per slot get an answer: each newer one took over the silent older one.
      await settled(attackers.slice(0, 100).map((a) => a.answered), 99);
      const patchAnswers = attackers.slice(100).map((a) => a.answered);
      await settled(patchAnswers, 99);
      await untilMetric(server, /^hmac_active_uploads [0-2]$/m);

      const legit = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/hello.txt`, baseUrl: server.uploadUrl, size: 5 });
      const put = await rawRequest(server.baseUrl, pathOf(legit.url), { method: 'PUT', body: 'hello' });
      assert.equal(put.status, 201);
      const text = await metrics(server);
      assert.match(text, /hmac_admission_rejected_total 0/);
      assert.match(text, /hmac_admission_waiting 0/);
      assert.match(text, /hmac_takeovers_total\{outcome="idle_ended"\} ([1-9]\d*)/);
    } finally {
      for (const a of attackers) a.stop();
      await server.dispose();
    }
  });
});

describe('per-client caps (issue 9.1)', () => {
  it('concurrent bodies per client address: the cap answers 429 with Retry-After, other clients are unaffected; starts per minute likewise', { timeout: 60_000 }, async () => {
    const server = await startServer({ config: '[limits]\nmax_bodies_per_client = 2\ncreations_per_minute_per_client = 3\n' });
    const held: Trickler[] = [];
    try {
      const slot = () => signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/c.bin`, baseUrl: server.uploadUrl, size: 1_000_000 });
      for (let i = 0; i < 2; i++) held.push(trickle(server, pathOf(slot().url), { method: 'PUT', headers: { 'Content-Length': 1_000_000 }, localAddress: '127.0.0.2' }));
      await untilMetric(server, /^hmac_active_uploads 2$/m);
      const third = await trickle(server, pathOf(slot().url), { method: 'PUT', headers: { 'Content-Length': 1_000_000 }, localAddress: '127.0.0.2' }).answered;
      assert.equal(third.status, 429);
      assert.equal(JSON.parse(third.body).code, 'ERR_RATE_LIMITED');
      assert.ok(Number(third.headers['retry-after']) > 0);
      assert.match(await metrics(server), /hmac_client_limited_total\{limit="bodies"\} 1/);

      // Starts per minute: the fourth start from one address is refused, with when to retry.
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const s = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/s.txt`, baseUrl: server.uploadUrl, size: 2 });
        const res = await putFrom(server, pathOf(s.url), '127.0.0.3');
        statuses.push(res.status);
        if (res.status === 429) assert.ok(Number(res.headers['retry-after']) >= 1);
      }
      assert.deepEqual(statuses, [201, 201, 201, 429]);
      const other = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/o.txt`, baseUrl: server.uploadUrl, size: 2 });
      assert.equal((await putFrom(server, pathOf(other.url), '127.0.0.4')).status, 201, 'another client is not limited');
    } finally {
      for (const t of held) t.stop();
      await server.dispose();
    }
  });

  it("at its cap, a client's retried PUT on its own slot takes over the silent earlier body (201, never 429); another slot is still refused", { timeout: 60_000 }, async () => {
    const server = await startServer({ config: '[limits]\nmax_bodies_per_client = 1\n' });
    const u = new URL(server.baseUrl);
    const from = '127.0.0.5';
    const data = randomData(5000);
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/retried.bin`, baseUrl: server.uploadUrl, size: data.length });
    // The first PUT sends a part, then its network goes away: the connection stays open and silent.
    const first = httpRequest({ host: u.hostname, port: u.port, path: pathOf(slot.url), method: 'PUT', agent: false, localAddress: from, headers: { 'Content-Length': data.length } });
    first.on('error', () => {});
    const firstAnswer = new Promise<number>((resolve) => {
      first.on('response', (res) => (res.resume(), resolve(res.statusCode ?? 0)));
      first.on('close', () => resolve(0));
    });
    try {
      first.write(data.subarray(0, 1000));
      await untilMetric(server, /^hmac_active_uploads 1$/m);
      const other = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/o.txt`, baseUrl: server.uploadUrl, size: 2 });
      assert.equal((await putFrom(server, pathOf(other.url), from)).status, 429, 'the cap holds for another slot');
      const retry = await new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: u.hostname, port: u.port, path: pathOf(slot.url), method: 'PUT', agent: false, localAddress: from, headers: { 'Content-Length': data.length } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(data);
      });
      assert.equal(retry, 201);
      assert.notEqual(await firstAnswer, 201, 'the earlier body was ended');
      assert.ok((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body.equals(data));
      assert.equal((await putFrom(server, pathOf(other.url), from)).status, 201, 'its place is free again once the retry is done');
    } finally {
      first.destroy();
      await server.dispose();
    }
  });

  for (const trustProxy of [true, false]) {
    it(`trust_proxy = ${trustProxy}: the client address is ${trustProxy ? "X-Forwarded-For's last hop" : 'the peer address'}`, { timeout: 60_000 }, async () => {
      const server = await startServer({ config: `[server]\ntrust_proxy = ${trustProxy}\n[limits]\nmax_bodies_per_client = 1\n` });
      const held: Trickler[] = [];
      try {
        const slot = () => pathOf(signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/p.bin`, baseUrl: server.uploadUrl, size: 1_000_000 }).url);
        const via = (xff: string) => trickle(server, slot(), { method: 'PUT', headers: { 'Content-Length': 1_000_000, 'X-Forwarded-For': xff } });
        held.push(via('198.51.100.1'));
        await untilMetric(server, /^hmac_active_uploads 1$/m);
        const second = via('198.51.100.2');
        held.push(second);
        if (trustProxy) {
          await untilMetric(server, /^hmac_active_uploads 2$/m); // another client behind the proxy
          const spoofed = await via('198.51.100.2, 198.51.100.1').answered; // the client's own claim comes first; the proxy's hop last
          assert.equal(spoofed.status, 429);
        } else {
          assert.equal((await second.answered).status, 429, 'one peer address, whatever the header says');
        }
      } finally {
        for (const t of held) t.stop();
        await server.dispose();
      }
    });
  }
});

describe('one unfinished tus upload per slot, and a cap on what unfinished uploads hold (issue 9.2)', () => {
  it('a second creation gets the same upload (200, Location, Upload-Offset); a different length gets 409 naming it', { timeout: 30_000 }, async () => {
    const server = await startServer();
    try {
      // v3 signs path and expiry, not a size: two creations on one slot may declare different lengths.
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/one.bin`, baseUrl: server.uploadUrl, scheme: 'v3', expires: Math.floor(Date.now() / 1000) + 3600 });
      const create = (length: number) => rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length), 'Upload-Slot': slot.url } });
      const first = await create(1000);
      assert.equal(first.status, 201);
      const location = String(first.headers.location);
      const patched = await rawRequest(server.baseUrl, pathOf(location), { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0' }, body: randomData(300) });
      assert.equal(patched.status, 204);
      const again = await create(1000);
      assert.equal(again.status, 200);
      assert.equal(again.headers.location, location);
      assert.equal(again.headers['upload-offset'], '300');
      const other = await create(2000);
      assert.equal(other.status, 409);
      assert.equal(other.json().code, 'ERR_UPLOAD_EXISTS');
      assert.equal(other.headers.location, location);
      assert.match(String(other.json().message), new RegExp(location.split('/').pop()!));
    } finally {
      await server.dispose();
    }
  });

  it('max_unfinished_bytes bounds what unfinished uploads hold or were declared to reach: a creation that would pass it is 503 + Retry-After; one finishing makes room', { timeout: 30_000 }, async () => {
    const server = await startServer({ config: '[limits]\nmax_unfinished_bytes = "300KB"\n' });
    try {
      const create = (name: string, length: number) => {
        const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/${name}`, baseUrl: server.uploadUrl, size: length });
        return rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length), 'Upload-Slot': slot.url } });
      };
      const a = await create('a.bin', 200_000);
      assert.equal(a.status, 201, a.text);
      const at = pathOf(String(a.headers.location));
      // Nothing stored yet, yet 200,000 bytes are on their way: 150,000 more would pass the cap.
      const refused = await create('b.bin', 150_000);
      assert.equal(refused.status, 503);
      assert.equal(refused.json().code, 'ERR_UNFINISHED_FULL');
      assert.ok(Number(refused.headers['retry-after']) > 0);
      assert.match(await metrics(server), /hmac_unfinished_refused_total 1/);
      // Creations at once cannot each take the same room: of three 50,000-byte ones, two fit.
      const burst = await Promise.all([create('c1.bin', 50_000), create('c2.bin', 50_000), create('c3.bin', 50_000)]);
      assert.deepEqual(burst.map((r) => r.status).sort(), [201, 201, 503]);
      const data = randomData(200_000);
      assert.equal((await rawRequest(server.baseUrl, at, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0' }, body: data })).status, 204);
      await untilMetric(server, /^hmac_unfinished_upload_bytes 0$/m);
      assert.equal((await create('b.bin', 150_000)).status, 201, 'the finished upload made room');
    } finally {
      await server.dispose();
    }
  });

  it("max_unfinished_bytes: an admin's `uploads expire` (DELETE /admin/uploads/:id) makes room at once, as a client's DELETE does", { timeout: 30_000 }, async () => {
    const token = 'admin-token-for-the-unfinished-cap-test';
    const server = await startServer({ config: `[limits]\nmax_unfinished_bytes = "300KB"\n[admin]\ntoken = "${token}"\n` });
    try {
      const create = (name: string, length: number) => {
        const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/${name}`, baseUrl: server.uploadUrl, size: length });
        return rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length), 'Upload-Slot': slot.url } });
      };
      const a = await create('a.bin', 250_000);
      assert.equal(a.status, 201, a.text);
      assert.equal((await create('b.bin', 100_000)).status, 503, 'the cap is full');
      const id = String(a.headers.location).split('/').pop()!;
      const expired = await rawRequest(server.baseUrl, `/admin/uploads/${id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
      assert.equal(expired.status, 200, expired.text);
      assert.match(await metrics(server), /^hmac_unfinished_upload_bytes 0$/m);
      const b = await create('b.bin', 100_000);
      assert.equal(b.status, 201, `the expired upload's room is free again: ${b.text}`);
    } finally {
      await server.dispose();
    }
  });

  it("max_unfinished_bytes counts a concatenation's partials as they are created; its final adds nothing and is admitted", { timeout: 30_000 }, async () => {
    const server = await startServer({ config: '[limits]\nmax_unfinished_bytes = "300KB"\n' });
    try {
      const whole = randomData(300_000);
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/joined.bin`, baseUrl: server.uploadUrl, size: whole.length });
      const partial = (slotUrl: string, length: number, slotLength: number) =>
        rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Concat': 'partial', 'Upload-Length': String(length), 'Upload-Slot-Length': String(slotLength), 'Upload-Slot': slotUrl } });
      const bodies = [whole.subarray(0, 150_000), whole.subarray(150_000)];
      const parts: string[] = [];
      for (const [i, part] of bodies.entries()) {
        const created = await partial(slot.url, part.length, whole.length);
        assert.equal(created.status, 201, `part ${i}: ${created.text}`);
        parts.push(pathOf(String(created.headers.location)));
      }
      // Both parts declared, nothing sent yet: another creation's bytes would pass the cap.
      const other = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/more.bin`, baseUrl: server.uploadUrl, size: 10 });
      const over = await partial(other.url, 10, 10);
      assert.equal(over.status, 503, 'a partial past the cap is refused like any creation');
      assert.equal(over.json().code, 'ERR_UNFINISHED_FULL');
      for (const [i, at] of parts.entries()) {
        assert.equal((await rawRequest(server.baseUrl, at, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0' }, body: bodies[i] })).status, 204);
      }
      const final = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Concat': `final;${parts.join(' ')}`, 'Upload-Slot': slot.url } });
      assert.equal(final.status, 201, `the final brings no new bytes: ${final.text}`);
      await untilMetric(server, /^hmac_unfinished_upload_bytes 0$/m);
      assert.ok((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body.equals(whole));
    } finally {
      await server.dispose();
    }
  });
});

function putFrom(server: SpawnedServer, path: string, localAddress: string): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  const u = new URL(server.baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method: 'PUT', agent: false, localAddress, headers: { 'Content-Length': 2 } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end('ok');
  });
}
