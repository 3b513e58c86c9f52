/**
 * Issue 9.5 and 9.6: the socket idle timeout (`upload_stall_timeout`) never fires before the
 * watchdog that owns a request: stall classes above the base, per-class overrides, admission
 * waiters (503 + Retry-After at queue_timeout) and a HEAD waiting for a takeover. And a PUT that
 * completes during shutdown gets its 201. Small timeouts keep the tests short; assertions are on
 * log lines, statuses and metrics, not on elapsed time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTETS = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };
const KiB = 1024;
const ENDED = 'Upload request ended by the server; received bytes kept';

async function create(server: SpawnedServer, size: number): Promise<string> {
  const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/f.bin`, baseUrl: server.uploadUrl, size });
  const res = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': String(size), 'Upload-Slot': slot.url } });
  assert.equal(res.status, 201, res.text);
  return pathOf(String(res.headers.location));
}

describe('the socket idle timeout never fires before the watchdog that owns the request', () => {
  let server: SpawnedServer;
  before(async () => {
    // Base 1 s: small 0.5 s, medium 1 s, large 1.5 s, huge overridden to 2.5 s. The old code cut
    // every idle socket at 1 s, with no log line: large and huge never reached their watchdog.
    server = await startServer({ config: '[server]\nupload_stall_timeout = "1s"\n[timeouts]\nhuge_file_stall_timeout = "2500ms"\n[tus]\nlock_drain_timeout = "500ms"\n' });
  });
  after(async () => server.dispose());

  const classes = [
    ['small', 5_000_000, 500],
    ['medium', 50_000_000, 1000],
    ['large', 500_000_000, 1500],
    ['huge', 2_000_000_000, 2500],
  ] as const;
  for (const [sizeClass, size, stallMs] of classes) {
    it(`${sizeClass}: a silent PATCH is ended by its own stall watchdog (${stallMs} ms), logged and counted`, { timeout: 30_000 }, async () => {
      const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port) }).start();
      try {
        const location = await create(server, size);
        const id = location.split('/').pop();
        const patch = rawRequest(proxy.url, location, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0', 'Content-Length': 256 * KiB }, body: randomData(256 * KiB) }).catch((e: Error) => e);
        await proxy.waitForBytes(64 * KiB);
        proxy.blackhole(); // half-open: no byte, no FIN
        const line = await server.waitForLog((l) => l.msg === ENDED && l.uploadId === id, 20_000);
        assert.equal(line.reason, 'stall');
        assert.equal(line.sizeClass, sizeClass);
        assert.equal(line.stallMs, stallMs);
        await proxy.close();
        await patch;
      } finally {
        await proxy.close();
      }
    });
  }

  it('a HEAD waiting for a receiving holder to drain is not cut by the socket timeout', { timeout: 30_000 }, async () => {
    const drainServer = await startServer({ config: '[server]\nupload_stall_timeout = "1s"\n[tus]\nlock_drain_timeout = "3s"\n' });
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(drainServer.baseUrl).port) }).start();
    try {
      const size = 500_000_000;
      const location = await create(drainServer, size);
      proxy.throttle(64 * KiB); // keeps receiving: the holder drains for 3 s, three socket timeouts long
      const patch = rawRequest(proxy.url, location, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0', 'Content-Length': size }, body: randomData(2 * 1024 * KiB) }).catch((e: Error) => e);
      await proxy.waitForBytes(32 * KiB);
      const head = await rawRequest(drainServer.baseUrl, location, { method: 'HEAD', headers: TUS });
      assert.equal(head.status, 200);
      assert.ok(Number(head.headers['upload-offset']) > 0);
      await drainServer.waitForLog((l) => l.msg === 'Upload taken over by a newer request' && l.outcome === 'drain_timeout');
      await proxy.close();
      await patch;
    } finally {
      await proxy.close();
      await drainServer.dispose();
    }
  });

  it('an admission waiter gets 503 with Retry-After at queue_timeout, not a dropped socket', { timeout: 30_000 }, async () => {
    const busy = await startServer({ config: '[server]\nupload_stall_timeout = "1s"\nmax_concurrent_uploads = 1\n[workers]\nqueue_timeout = "3s"\n' });
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(busy.baseUrl).port) }).start();
    try {
      const holderAt = await create(busy, 500_000_000);
      proxy.throttle(64 * KiB);
      const holder = rawRequest(proxy.url, holderAt, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0', 'Content-Length': 500_000_000 }, body: randomData(1024 * KiB) }).catch((e: Error) => e);
      await proxy.waitForBytes(32 * KiB);
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/wait.txt`, baseUrl: busy.uploadUrl, size: 5 });
      const waiter = await rawRequest(busy.baseUrl, pathOf(slot.url), { method: 'PUT', body: 'hello' });
      assert.equal(waiter.status, 503);
      assert.equal(waiter.json().code, 'ERR_SERVER_BUSY');
      assert.ok(Number(waiter.headers['retry-after']) > 0);
      await busy.waitForLog((l) => l.msg === 'Upload refused: no streaming slot within queue_timeout');
      assert.match((await rawRequest(busy.baseUrl, '/metrics')).text, /hmac_admission_rejected_total 1/);
      await proxy.close();
      await holder;
    } finally {
      await proxy.close();
      await busy.dispose();
    }
  });
});

describe('shutdown delivers the answer of a PUT that completed before the grace period ended (issue 9.6)', () => {
  it('a PUT finishing during shutdown gets its 201 and is published; a retry after restart is not needed', { timeout: 60_000 }, async () => {
    const server = await startServer({ config: '[server]\ngraceful_shutdown_timeout = "20s"\n' });
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port) }).start();
    try {
      const data = randomData(600 * KiB);
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/deploy.jpg`, baseUrl: server.uploadUrl, size: data.length });
      proxy.throttle(256 * KiB);
      const put = rawRequest(proxy.url, pathOf(slot.url), { method: 'PUT', body: data }).catch((e: Error) => e);
      await proxy.waitForBytes(100 * KiB);
      server.proc.kill('SIGTERM');
      await server.waitForLog((l) => String(l.msg).startsWith('Shutting down'));
      proxy.throttle(null);
      const answer = await put;
      assert.ok(!(answer instanceof Error), answer instanceof Error ? answer.message : '');
      assert.equal(answer.status, 201);
      assert.equal(await server.exited, 0);
      const restarted = await startServer({ dataDir: server.dataDir });
      try {
        assert.equal(sha256((await rawRequest(restarted.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
      } finally {
        await restarted.stop();
      }
    } finally {
      await proxy.close();
      await server.dispose();
    }
  });
});
