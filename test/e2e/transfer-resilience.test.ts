/**
 * Transfer resilience through the fault proxy: stalls, cuts, resets, lock takeover, overlong
 * bodies, shutdown, the WiFi -> 4G network switch, and admission under load. Each case asserts
 * the stored offset from the server's side and the final sha256.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { signSlotUrl } from '../../src/index.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { pathOf, randomData, rawRequest, sha256, slotDir, type RawResponse } from '../helpers/http.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTETS = { ...TUS, 'Content-Type': 'application/offset+octet-stream' };
const MiB = 1024 * 1024;

async function createUpload(server: SpawnedServer, size: number): Promise<{ location: string; getPath: string }> {
  const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/f.bin`, baseUrl: server.uploadUrl, size });
  const res = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': String(size), 'Upload-Slot': slot.url } });
  assert.equal(res.status, 201, res.text);
  return { location: pathOf(String(res.headers.location)), getPath: pathOf(slot.getUrl) };
}

const headOffset = async (server: SpawnedServer, location: string) => {
  const res = await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: TUS });
  assert.equal(res.status, 200, `HEAD answered ${res.status}`);
  return Number(res.headers['upload-offset']);
};

/** Sends the rest from the server's offset, directly (no proxy), and checks the published bytes. */
async function finishAndVerify(server: SpawnedServer, upload: { location: string; getPath: string }, data: Buffer): Promise<number> {
  const offset = await headOffset(server, upload.location);
  const res = await rawRequest(server.baseUrl, upload.location, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': String(offset) }, body: data.subarray(offset) });
  assert.equal(res.status, 204, res.text);
  const get = await rawRequest(server.baseUrl, upload.getPath);
  assert.equal(sha256(get.body), sha256(data));
  return offset;
}

/** A PATCH of the whole file through the proxy; resolves (never rejects) when the request ends either way. */
function patchThrough(proxy: FaultProxy, location: string, data: Buffer, offset = 0): Promise<RawResponse | Error> {
  return rawRequest(proxy.url, location, {
    method: 'PATCH',
    headers: { ...OCTETS, 'Upload-Offset': String(offset), 'Content-Length': data.length - offset },
    body: data.subarray(offset),
  }).catch((e: Error) => e);
}

const requestEnded = (server: SpawnedServer, reason: string) =>
  server.waitForLog((l) => l.msg === 'Upload request ended by the server; received bytes kept' && l.reason === reason);

describe('transfer resilience', () => {
  describe('stall, cut, reset, takeover, overlong body', () => {
    let server: SpawnedServer;
    let proxy: FaultProxy;
    before(async () => {
      // 4s base stall: a small file (<10MB) stalls after 2s; lock drain 1s.
      server = await startServer({ config: '[server]\nupload_stall_timeout = "4s"\n[tus]\nlock_drain_timeout = "1s"\n' });
    });
    after(async () => server.dispose());
    const freshProxy = async () => {
      proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port) }).start();
      return proxy;
    };
    const closeProxy = async () => proxy?.close();

    it('an idle connection (no FIN, no RST) is ended after the stall timeout and keeps its bytes', async () => {
      await freshProxy();
      try {
        const data = randomData(4 * MiB);
        const upload = await createUpload(server, data.length);
        proxy.throttle(512 * 1024);
        const patch = patchThrough(proxy, upload.location, data);
        await proxy.waitForBytes(300 * 1024);
        proxy.blackhole();
        await requestEnded(server, 'stall');
        const offset = await headOffset(server, upload.location);
        assert.ok(offset > 0 && offset <= proxy.bytesUp, `kept ${offset} of ${proxy.bytesUp} forwarded`);
        const metricsText = (await rawRequest(server.baseUrl, '/metrics')).text;
        assert.match(metricsText, /hmac_timeouts_total\{type="upload"\} [1-9]/);
        await finishAndVerify(server, upload, data);
        await proxy.close();
        await patch;
      } finally {
        await closeProxy();
      }
    });

    for (const [fault, arm] of [
      ['a cut connection (FIN)', (p: FaultProxy) => p.cutAfter(MiB)],
      ['a reset connection (RST)', (p: FaultProxy) => p.resetAfter(MiB)],
    ] as const) {
      it(`${fault} keeps the bytes received`, async () => {
        await freshProxy();
        try {
          const data = randomData(3 * MiB);
          const upload = await createUpload(server, data.length);
          arm(proxy);
          await patchThrough(proxy, upload.location, data);
          await server.waitForLog((l) => l.msg === 'Request finished' && l.method === 'PATCH' && l.path === upload.location);
          const offset = await finishAndVerify(server, upload, data);
          assert.ok(offset > 0 && offset <= MiB, `offset ${offset}`);
        } finally {
          await closeProxy();
        }
      });
    }

    it('a HEAD during a slow PATCH takes the lock over promptly and reports the bytes', { timeout: 15_000 }, async () => {
      await freshProxy();
      try {
        // A large declared size: its stall timeout (6s) is longer than this test's whole budget,
        // so only the lock takeover (drain 1s) can let the HEAD through in time.
        const data = randomData(2 * MiB);
        const declared = 150_000_000;
        const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/big.bin`, baseUrl: server.uploadUrl, size: declared });
        const created = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': String(declared), 'Upload-Slot': slot.url } });
        const location = pathOf(String(created.headers.location));
        proxy.throttle(256 * 1024);
        const patch = rawRequest(proxy.url, location, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0', 'Content-Length': declared }, body: data }).catch((e: Error) => e);
        await proxy.waitForBytes(200 * 1024);
        const offset = await headOffset(server, location);
        assert.ok(offset > 0, `HEAD reports ${offset}`);
        const patchResult = await patch;
        assert.ok(patchResult instanceof Error || patchResult.status < 500, 'the old PATCH ended without a 5xx');
        assert.ok(!server.logs.some((l) => l.msg === 'Upload request ended by the server; received bytes kept' && l.reason === 'stall' && l.sizeClass === 'large'), 'not ended by the stall timeout');
      } finally {
        await closeProxy();
      }
    });

    it('a body longer than Upload-Length is refused or cut at the length, never stored past it', async () => {
      const data = randomData(100_000);
      const upload = await createUpload(server, data.length);
      const tooLong = await rawRequest(server.baseUrl, upload.location, { method: 'PATCH', headers: { ...OCTETS, 'Upload-Offset': '0' }, body: Buffer.concat([data, randomData(5000)]) });
      assert.equal(tooLong.status, 413);
      const chunked = await rawRequest(server.baseUrl, upload.location, {
        method: 'PATCH',
        headers: { ...OCTETS, 'Upload-Offset': '0', 'Transfer-Encoding': 'chunked' },
        body: (await import('node:stream')).Readable.from([data.subarray(0, 60_000), Buffer.concat([data.subarray(60_000), randomData(5000)])]),
      });
      assert.ok(chunked.status === 413 || chunked.status === 204, `status ${chunked.status}`);
      const offset = await headOffset(server, upload.location);
      assert.ok(offset <= data.length, `stored ${offset} of ${data.length}`);
      if (offset < data.length) await finishAndVerify(server, upload, data);
      else assert.equal(sha256((await rawRequest(server.baseUrl, upload.getPath)).body), sha256(data));
    });
  });

  it('past its size-class deadline a PATCH below the rate floor ends with the bytes kept (reason floor) and tus-js-client carries on to completion', { timeout: 60_000 }, async () => {
    // 512 KiB/s against a 1 MiB/s floor judged from the 1 s deadline: each PATCH is ended by the floor.
    const server = await startServer({ config: '[timeouts]\nsmall_file_timeout = "1s"\nmin_upload_rate = "1MiB"\n[tus]\nlock_drain_timeout = "1s"\n' });
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port) }).start();
    try {
      proxy.throttle(512 * 1024);
      const data = randomData(Math.floor(1.5 * MiB));
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/slow.bin`, baseUrl: server.uploadUrl, size: data.length });
      const patchStatuses: number[] = [];
      await new Promise<void>((resolve, reject) => {
        new tus.Upload(data, {
          endpoint: `${proxy.url}/files/`,
          headers: { 'Upload-Slot': slot.url },
          retryDelays: [0, 100, 200, 400, 800],
          onAfterResponse: (req, res) => {
            if (req.getMethod() === 'PATCH') patchStatuses.push(res.getStatus());
          },
          onSuccess: () => resolve(),
          onError: reject,
        }).start();
      });
      assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
      const floors = server.logs.filter((l) => l.msg === 'Upload request ended by the server; received bytes kept' && l.reason === 'floor');
      assert.ok(floors.length >= 1, 'at least one PATCH fell below the floor past the 1 s deadline');
      assert.ok(floors.every((l) => typeof l.rateBytesPerSec === 'number' && l.rateBytesPerSec < 1024 * 1024), 'the log names the rate seen');
      assert.ok(patchStatuses.length >= 2, `the upload took several PATCHes: ${patchStatuses.join(',')}`);
      assert.ok(patchStatuses.every((s) => s === 204), `each PATCH answered 204 with the stored offset: ${patchStatuses.join(',')}`);
    } finally {
      await proxy.close();
      await server.dispose();
    }
  });

  it('shutdown: new uploads get 503 with Retry-After, the running one is ended with its bytes kept, exit 0', { timeout: 30_000 }, async () => {
    const server = await startServer({ config: '[server]\ngraceful_shutdown_timeout = "1s"\n[tus]\nlock_drain_timeout = "1s"\n' });
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port) }).start();
    try {
      const data = randomData(4 * MiB);
      const upload = await createUpload(server, data.length);
      proxy.throttle(512 * 1024);
      const patch = patchThrough(proxy, upload.location, data);
      await proxy.waitForBytes(200 * 1024);
      server.proc.kill('SIGTERM');
      await server.waitForLog((l) => String(l.msg).startsWith('Shutting down'));
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/late.bin`, baseUrl: server.uploadUrl, size: 3 });
      const late = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': '3', 'Upload-Slot': slot.url } });
      assert.equal(late.status, 503);
      assert.ok(Number(late.headers['retry-after']) > 0);
      const latePut = await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body: 'abc' });
      assert.equal(latePut.status, 503);
      assert.equal(await server.exited, 0, server.output().slice(-3000));
      assert.ok(server.logs.some((l) => l.msg === 'Upload request ended by the server; received bytes kept' && l.reason === 'shutdown'));
      await patch;
      const restarted = await startServer({ dataDir: server.dataDir });
      try {
        const offset = await finishAndVerify(restarted, upload, data);
        assert.ok(offset > 0, `resumed from ${offset}`);
      } finally {
        await restarted.stop();
      }
    } finally {
      await proxy.close();
      await server.dispose();
    }
  });

  it('WiFi -> 4G: 100 MiB, half-open connection at ~30%, new peer resumes with at most one chunk re-sent', { timeout: 120_000 }, async () => {
    const server = await startServer({ config: '[tus]\nlock_drain_timeout = "1s"\n' });
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port) }).start();
    try {
      const data = randomData(100 * MiB);
      const chunkSize = 8 * MiB;
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/phone video.mp4`, baseUrl: server.uploadUrl, size: data.length });
      // The phone's requests always go to the network it is on now: rewrite to the current proxy port.
      const base = new tus.DefaultHttpStack({});
      const httpStack: tus.HttpStack = {
        createRequest: (method, url) => {
          const u = new URL(url);
          u.port = String(proxy.port);
          return base.createRequest(method, u.toString());
        },
        getName: () => 'switching-stack',
      };
      proxy.throttle(40 * MiB);
      let upload!: tus.Upload;
      const done = new Promise<void>((resolve, reject) => {
        upload = new tus.Upload(data, {
          endpoint: `${proxy.url}/files/`,
          headers: { 'Upload-Slot': slot.url },
          chunkSize,
          retryDelays: [0, 200, 500, 1000],
          httpStack,
          onSuccess: () => resolve(),
          onError: reject,
        });
      });
      upload.start();
      await proxy.waitForBytes(30 * MiB);
      await proxy.switchNetwork(); // the old connection hangs open, no FIN, no RST
      // The app notices the network change and resumes on the new network.
      await upload.abort();
      const storedBeforeResume = await headOffset(server, pathOf(upload.url!));
      upload.start();
      await done;
      assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
      const resent = proxy.bytesUp - data.length;
      assert.ok(storedBeforeResume > 20 * MiB, `stored ${storedBeforeResume} before resuming`);
      assert.ok(resent <= chunkSize + 64 * 1024, `re-sent ${resent} bytes (headers included), at most one chunk`);
    } finally {
      await proxy.close();
      await server.dispose();
    }
  });

  it('admission: a body that sends nothing gives its streaming slot up to a waiting one (silent bodies held every slot until their stall timeout)', { timeout: 60_000 }, async () => {
    // One streaming slot; a wait longer than the 5 s silence but shorter than the 30 s stall of a small file.
    const server = await startServer({ config: '[server]\nmax_concurrent_uploads = 1\n[workers]\nqueue_timeout = "15s"\n' });
    const { connect } = await import('node:net');
    try {
      const silentSlot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/silent.bin`, baseUrl: server.uploadUrl, size: 1000 });
      const socket = connect({ host: '127.0.0.1', port: Number(new URL(server.baseUrl).port) });
      socket.on('error', () => {});
      let answer = '';
      socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
      socket.write(`PUT ${pathOf(silentSlot.url)} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n`); // and then nothing
      const streaming = async () => Number(/^hmac_active_uploads (\S+)$/m.exec((await rawRequest(server.baseUrl, '/metrics')).text)?.[1]);
      const deadline = Date.now() + 10_000;
      while ((await streaming()) !== 1) {
        assert.ok(Date.now() < deadline, 'the silent PUT never held the streaming slot');
        await new Promise((r) => setTimeout(r, 20));
      }
      const data = randomData(5000);
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/waiting.bin`, baseUrl: server.uploadUrl, size: data.length });
      const put = await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body: data });
      assert.equal(put.status, 201, put.text);
      await server.waitForLog((l) => l.msg === 'Silent upload body ended: other bodies wait for a streaming slot');
      await new Promise((resolve) => (socket.destroyed ? resolve(null) : socket.once('close', resolve)));
      assert.match(answer, /^HTTP\/1\.1 408 /, 'the silent one is told why');
      assert.equal((await rawRequest(server.baseUrl, pathOf(silentSlot.getUrl))).status, 404, 'nothing of it published');
    } finally {
      await server.dispose();
    }
  });

  it('admission: 3x max_concurrent_uploads parallel uploads all complete, none rejected', { timeout: 60_000 }, async () => {
    const server = await startServer({ config: '[server]\nmax_concurrent_uploads = 2\n[workers]\nqueue_timeout = "60s"\n' });
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port) }).start();
    try {
      proxy.throttle(2 * MiB);
      const files = Array.from({ length: 6 }, (_, i) => randomData(MiB + i * 1000));
      const uploads = files.map(async (data) => {
        const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/p.bin`, baseUrl: server.uploadUrl, size: data.length });
        await new Promise<void>((resolve, reject) => {
          new tus.Upload(data, { endpoint: `${proxy.url}/files/`, headers: { 'Upload-Slot': slot.url }, retryDelays: [], onSuccess: () => resolve(), onError: reject }).start();
        });
        return sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body) === sha256(data);
      });
      assert.deepEqual(await Promise.all(uploads), files.map(() => true));
      const text = (await rawRequest(server.baseUrl, '/metrics')).text;
      const waited = Number(/hmac_admission_wait_seconds_sum (\S+)/.exec(text)?.[1]);
      assert.ok(waited > 0, 'some uploads waited for a slot');
      assert.match(text, /hmac_admission_rejected_total 0/);
      assert.ok(!server.logs.some((l) => l.msg === 'Request finished' && l.status === 503));
    } finally {
      await proxy.close();
      await server.dispose();
    }
  });
});
