/**
 * Slow links (issue 18 B): a moving body is never ended by a deadline; only a body below
 * `min_upload_rate` (over its window) or a silence past the stall timeout is. When the server
 * ends a PUT, the client gets 408/503 with Retry-After and Connection: close.
 *
 * The mobile cases of the issue (4 MiB at 40 KiB/s, 1 MiB at 12 KiB/s, a 20 s tunnel) run at
 * their real rates with every time-based default divided by 10 (deadline 6 s, window 6 s, stall
 * 3 s) and sizes divided by 10, so each still outlasts its deadline, the old cut-off.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tus from 'tus-js-client';
import { signSlotUrl } from '../../src/index.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { pathOf, randomData, rawRequest, sha256, slotDir, type RawResponse } from '../helpers/http.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const ENDED = /^Upload request ended by the server/;
const TUS = { 'Tus-Resumable': '1.0.0' };

const proxyFor = (server: SpawnedServer) => new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port) }).start();

/** A PUT through `proxy`; resolves with the answer as soon as it arrives (the body may still be sending). */
function putThrough(proxy: FaultProxy, url: string, body: Buffer): Promise<RawResponse | Error> {
  return rawRequest(proxy.url, pathOf(url), { method: 'PUT', body }).catch((e: Error) => e);
}

/** Writes a PUT's headers and the first `sent` bytes of its body on a raw socket, then goes quiet; resolves with the raw answer text. */
async function quietPut(server: SpawnedServer, url: string, size: number, sent: number): Promise<{ answer: Promise<string>; socket: net.Socket }> {
  const u = new URL(server.baseUrl);
  const socket = net.connect(Number(u.port), u.hostname);
  await new Promise((r) => socket.once('connect', r));
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => {});
  const answer = new Promise<string>((resolve) => socket.once('close', () => resolve(text)));
  socket.write(`PUT ${pathOf(url)} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Length: ${size}\r\n\r\n`);
  socket.write(randomData(sent));
  return { answer, socket };
}

describe('slow but moving uploads complete with default settings (times and sizes / 10)', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer({ config: '[server]\nupload_stall_timeout = "6s"\n[timeouts]\nsmall_file_timeout = "6s"\nmin_upload_rate_window = "6s"\n' });
  });
  after(async () => server.dispose());

  it('3G PUT (400 KiB at 40 KiB/s), EDGE PUT (100 KiB at 12 KiB/s), tunnel PUT (200 KiB at 40 KiB/s, 2 s silence), tus PATCH (400 KiB at 40 KiB/s): all published, none ended', { timeout: 120_000 }, async () => {
    const cases = [
      { name: '3G', size: 400 * KiB, rate: 40 * KiB, tunnel: false, protocol: 'put' },
      { name: 'EDGE', size: 100 * KiB, rate: 12 * KiB, tunnel: false, protocol: 'put' },
      { name: 'tunnel', size: 200 * KiB, rate: 40 * KiB, tunnel: true, protocol: 'put' },
      { name: 'tus 3G', size: 400 * KiB, rate: 40 * KiB, tunnel: false, protocol: 'tus' },
    ] as const;
    await Promise.all(
      cases.map(async (c) => {
        const proxy = await proxyFor(server);
        try {
          proxy.throttle(c.rate);
          const data = randomData(c.size);
          const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/${c.name}.jpg`, baseUrl: server.uploadUrl, size: data.length });
          if (c.protocol === 'put') {
            const res = putThrough(proxy, slot.url, data);
            if (c.tunnel) {
              await proxy.waitForBytes(c.size / 2);
              proxy.blackhole();
              await sleep(2000); // the tunnel: 2 s without a byte, under the 3 s small-class stall
              proxy.restore();
            }
            const answer = await res;
            assert.ok(!(answer instanceof Error) && answer.status === 201, `${c.name}: ${answer instanceof Error ? answer.message : answer.status}`);
          } else {
            let patches = 0;
            await new Promise<void>((resolve, reject) => {
              new tus.Upload(data, {
                endpoint: `${proxy.url}/files/`,
                headers: { 'Upload-Slot': slot.url },
                retryDelays: [],
                onBeforeRequest: (req) => void (req.getMethod() === 'PATCH' && patches++),
                onSuccess: () => resolve(),
                onError: reject,
              }).start();
            });
            assert.equal(patches, 1, 'one PATCH, no retry');
          }
          assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data), c.name);
        } finally {
          await proxy.close();
        }
      }),
    );
    assert.deepEqual(server.logs.filter((l) => ENDED.test(String(l.msg))), [], 'no upload was ended by the server');
  });

  it('a PUT below the floor (2 KiB/s < 8 KiB/s) is ended past its deadline: 408 ERR_UPLOAD_TOO_SLOW, Retry-After, Connection: close; the log names reason and rate', { timeout: 60_000 }, async () => {
    const proxy = await proxyFor(server);
    try {
      proxy.throttle(2 * KiB);
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/gprs.jpg`, baseUrl: server.uploadUrl, size: 100 * KiB });
      const answer = await putThrough(proxy, slot.url, randomData(100 * KiB));
      assert.ok(!(answer instanceof Error), answer instanceof Error ? answer.message : '');
      assert.equal(answer.status, 408);
      assert.equal(answer.json().code, 'ERR_UPLOAD_TOO_SLOW');
      assert.equal(answer.headers.connection, 'close');
      assert.ok(Number(answer.headers['retry-after']) > 0);
      const line = await server.waitForLog((l) => ENDED.test(String(l.msg)) && l.reason === 'floor' && l.protocol === 'put');
      assert.ok(Number(line.rateBytesPerSec) > 0 && Number(line.rateBytesPerSec) < 8 * KiB, `rate seen ${line.rateBytesPerSec}`);
      assert.equal(line.minRateBytesPerSec, 8 * KiB);
      assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).status, 404, 'nothing published');
    } finally {
      await proxy.close();
    }
  });
});

describe('a PUT ended by the server gets an answer it can act on (issue 18.9)', () => {
  it('stall: 408 ERR_UPLOAD_STALLED with Retry-After and Connection: close, not a bare reset', { timeout: 30_000 }, async () => {
    const server = await startServer({ config: '[server]\nupload_stall_timeout = "2s"\n' });
    try {
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/quiet.jpg`, baseUrl: server.uploadUrl, size: 50_000 });
      const { answer } = await quietPut(server, slot.url, 50_000, 10_000);
      const text = await answer;
      assert.match(text, /^HTTP\/1\.1 408 /);
      assert.match(text, /\r\nconnection: close\r\n/i);
      assert.match(text, /\r\nretry-after: \d+\r\n/i);
      assert.match(text, /ERR_UPLOAD_STALLED/);
      const line = await server.waitForLog((l) => ENDED.test(String(l.msg)) && l.reason === 'stall');
      assert.equal(line.sizeClass, 'small');
    } finally {
      await server.dispose();
    }
  });

  it('shutdown: 503 ERR_SERVER_SHUTDOWN with Retry-After and Connection: close', { timeout: 30_000 }, async () => {
    const server = await startServer({ config: '[server]\ngraceful_shutdown_timeout = "1s"\n' });
    try {
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/deploy.jpg`, baseUrl: server.uploadUrl, size: 50_000 });
      const { answer, socket } = await quietPut(server, slot.url, 50_000, 10_000);
      const trickle = setInterval(() => socket.writable && socket.write(Buffer.alloc(10)), 100); // alive and moving
      await untilMetric(server, /^hmac_active_uploads 1$/m); // the body streams
      server.proc.kill('SIGTERM');
      const text = await answer;
      clearInterval(trickle);
      assert.match(text, /^HTTP\/1\.1 503 /);
      assert.match(text, /\r\nconnection: close\r\n/i);
      assert.match(text, /\r\nretry-after: \d+\r\n/i);
      assert.match(text, /ERR_SERVER_SHUTDOWN/);
      assert.equal(await server.exited, 0);
    } finally {
      await server.dispose();
    }
  });
});

describe('deadlines and floors for every size class', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer({
      config:
        '[server]\nupload_stall_timeout = "20s"\n' +
        '[timeouts]\nsmall_file_timeout = "1s"\nmedium_file_timeout = "1500ms"\nlarge_file_timeout = "2s"\nhuge_file_timeout = "2500ms"\n' +
        'min_upload_rate = "64KiB"\nmin_upload_rate_window = "1s"\n',
    });
  });
  after(async () => server.dispose());

  it('past each class deadline a body above the floor goes on to 204; one below it is ended (reason floor) with its class', { timeout: 60_000 }, async () => {
    const classes = [
      ['small', 5_000_000, 1000],
      ['medium', 50_000_000, 1500],
      ['large', 500_000_000, 2000],
      ['huge', 2_000_000_000, 2500],
    ] as const;
    const slow = await proxyFor(server);
    const fast = await proxyFor(server);
    try {
      slow.throttle(16 * KiB);
      fast.throttle(512 * KiB);
      const create = async (size: number) => {
        const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/c.bin`, baseUrl: server.uploadUrl, size });
        const res = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': String(size), 'Upload-Slot': slot.url } });
        assert.equal(res.status, 201, res.text);
        return pathOf(String(res.headers.location));
      };
      const patch = (proxy: FaultProxy, location: string, bytes: number) =>
        rawRequest(proxy.url, location, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0' }, body: randomData(bytes) }).catch((e: Error) => e);
      await Promise.all(
        classes.map(async ([sizeClass, size, deadlineMs]) => {
          const [slowAt, fastAt] = [await create(size), await create(size)];
          const [slowRes, fastRes] = await Promise.all([patch(slow, slowAt, 256 * KiB), patch(fast, fastAt, 2 * MiB)]);
          const slowId = slowAt.split('/').pop();
          const fastId = fastAt.split('/').pop();
          const ended = await server.waitForLog((l) => ENDED.test(String(l.msg)) && l.uploadId === slowId);
          assert.equal(ended.reason, 'floor', sizeClass);
          assert.equal(ended.sizeClass, sizeClass);
          assert.equal(ended.deadlineMs, deadlineMs);
          assert.ok(!(slowRes instanceof Error) && slowRes.status === 204, `${sizeClass}: the slow PATCH is answered with its stored offset`);
          assert.ok(!(fastRes instanceof Error) && fastRes.status === 204 && fastRes.headers['upload-offset'] === String(2 * MiB), `${sizeClass}: the fast PATCH ran to its end`);
          assert.ok(!server.logs.some((l) => ENDED.test(String(l.msg)) && l.uploadId === fastId), `${sizeClass}: the moving body was not ended`);
        }),
      );
    } finally {
      await slow.close();
      await fast.close();
    }
  });
});

const OCTETS = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };

/** Re-reads /metrics until it matches (the server emits no event for "a body is streaming"). */
async function untilMetric(server: SpawnedServer, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (pattern.test((await rawRequest(server.baseUrl, '/metrics')).text)) return;
    await sleep(50);
  }
  throw new Error(`metrics never matched ${pattern}`);
}
