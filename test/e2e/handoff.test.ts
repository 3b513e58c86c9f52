/**
 * WiFi -> 4G handoffs (issue 18 A): the relay resets the phone's side of its connections, leaves
 * the server's side half-open and silent (no FIN, no RST) and sends new connections from another
 * source address (127.0.0.2 -> 127.0.0.3). With lock_drain_timeout = 30 s, the resumed upload
 * still completes: the silent holder is ended at once (takeover outcome idle_ended, never
 * drain_timeout). Asserted by metrics and log lines, never by elapsed time. The network switch
 * itself runs on both storage backends (helpers/backends.ts).
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { signSlotUrl } from '../../src/index.js';
import { FaultProxy, type ProxyConnection } from '../helpers/fault-proxy.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { storageBackends } from '../helpers/backends.js';
import { startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';

const MiB = 1024 * 1024;
const TAKEN_OVER = 'Upload taken over by a newer request';

const metricValue = async (server: SpawnedServer, series: string): Promise<number> => {
  const text = (await rawRequest(server.baseUrl, '/metrics')).text;
  const escaped = series.replace(/[{}"=]/g, (c) => `\\${c}`);
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

/** Body bytes of the last PATCH (or PUT) the relay forwarded on `conn`: everything after its header block. */
function lastBodyBytes(conn: ProxyConnection, method: 'PATCH' | 'PUT'): number {
  const data = Buffer.concat(conn.upChunks);
  const start = data.lastIndexOf(Buffer.from(`${method} /`));
  assert.ok(start >= 0, `no ${method} on this connection`);
  const headerEnd = data.indexOf('\r\n\r\n', start);
  return data.length - (headerEnd + 4);
}

/** A tus-js-client upload through the relay; collects the Upload-Offset of every HEAD. */
function tusUpload(proxy: FaultProxy, slotUrl: string, data: Buffer, options: Partial<tus.UploadOptions> = {}) {
  const headOffsets: number[] = [];
  let upload!: tus.Upload;
  const done = new Promise<void>((resolve, reject) => {
    upload = new tus.Upload(data, {
      endpoint: `${proxy.url}/files/`,
      headers: { 'Upload-Slot': slotUrl },
      retryDelays: [250, 250, 500, 1000],
      onAfterResponse: (req, res) => {
        if (req.getMethod() === 'HEAD') headOffsets.push(Number(res.getHeader('Upload-Offset')));
      },
      onSuccess: () => resolve(),
      onError: reject,
      ...options,
    });
  });
  upload.start();
  return { done, headOffsets, upload: () => upload };
}

for (const backend of storageBackends()) describe(`handoff: a silent holder is taken over at once [${backend.name}]`, () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer({ config: `[tus]\nlock_drain_timeout = "30s"\n${await backend.config()}` });
  });
  after(async () => server.dispose());

  const takeoverLines = (uploadId: string): LogLine[] => server.logs.filter((l) => l.msg === TAKEN_OVER && l.uploadId === uploadId);

  for (const [name, chunkSize] of [['one PATCH for the whole file', undefined], ['chunked PATCHes (256 KiB)', 256 * 1024]] as const) {
    it(`tus-js-client, ${name}: resumes from every byte the old connection delivered, outcome idle_ended`, { timeout: 60_000 }, async () => {
      const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port), localAddress: '127.0.0.2', recordUp: true }).start();
      try {
        const drainTimeoutsBefore = await metricValue(server, 'hmac_takeovers_total{outcome="drain_timeout"}');
        const data = randomData(3 * MiB);
        const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/clip.mp4`, baseUrl: server.uploadUrl, size: data.length });
        proxy.throttle(MiB);
        const run = tusUpload(proxy, slot.url, data, chunkSize ? { chunkSize } : {});
        await proxy.waitForBytes(MiB + 100_000);
        const hanging = proxy.handoff('127.0.0.3');
        const oldPatch = hanging.find((c) => Buffer.concat(c.upChunks).includes('PATCH /'));
        assert.ok(oldPatch, 'a PATCH was in flight at the handoff');
        await run.done;

        assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data), 'bytes identical after publishing');
        const uploadId = pathOf(run.upload().url!).split('/').pop()!;
        await server.waitForLog((l) => l.msg === TAKEN_OVER && l.uploadId === uploadId);
        const lines = takeoverLines(uploadId);
        assert.equal(lines.length, 1, 'one log line per takeover');
        assert.equal(lines[0]!.outcome, 'idle_ended');
        assert.equal(lines[0]!.oldClient, '127.0.0.2');
        assert.equal(lines[0]!.newClient, '127.0.0.3');
        // The HEAD after the handoff reports exactly what the old connection delivered: with one
        // PATCH, all of its body; chunked, the earlier chunks plus the body of the cut one.
        const delivered = lastBodyBytes(oldPatch, 'PATCH');
        const resumedAt = run.headOffsets[0]!;
        if (!chunkSize) assert.equal(resumedAt, delivered);
        else assert.ok(resumedAt >= delivered && (resumedAt - delivered) % chunkSize === 0, `HEAD ${resumedAt}: earlier chunks + ${delivered} of the cut one`);
        assert.equal(await metricValue(server, 'hmac_takeovers_total{outcome="drain_timeout"}'), drainTimeoutsBefore, 'never waited for the 30 s drain');
      } finally {
        await proxy.close();
      }
    });
  }

  it('a retried XEP-0363 PUT ends the silent earlier body and proceeds: 201, never 409/423, nothing of the old body published', { timeout: 60_000 }, async () => {
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port), localAddress: '127.0.0.2', recordUp: true }).start();
    try {
      const data = randomData(2 * MiB);
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/photo.jpg`, baseUrl: server.uploadUrl, size: data.length });
      proxy.throttle(MiB);
      const put = (): Promise<number> =>
        new Promise((resolve, reject) => {
          const u = new URL(proxy.url);
          const req = httpRequest({ host: u.hostname, port: u.port, path: pathOf(slot.url), method: 'PUT', agent: false, headers: { 'Content-Length': data.length } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end(data);
        });
      const first = put().then(
        (status) => ({ status }),
        (err: Error) => ({ err }),
      );
      await proxy.waitForBytes(MiB);
      proxy.handoff('127.0.0.3');
      const outcome = await first;
      assert.ok('err' in outcome, 'the phone saw its WiFi connection die');
      // The client retries at once, like an XMPP client would.
      proxy.throttle(null);
      assert.equal(await put(), 201);
      assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
      const putPath = decodeURIComponent(new URL(slot.url).pathname.replace(/^\/upload\//, ''));
      await server.waitForLog((l) => l.msg === TAKEN_OVER && l.uploadId === putPath);
      const lines = takeoverLines(putPath);
      assert.equal(lines.length, 1, JSON.stringify(server.logs.filter((l) => l.msg === TAKEN_OVER)));
      assert.equal(lines[0]!.outcome, 'idle_ended');
      assert.deepEqual([lines[0]!.oldClient, lines[0]!.newClient], ['127.0.0.2', '127.0.0.3']);
      // The only 409 is the old, silent request's own answer (ERR_UPLOAD_TAKEN_OVER, sent into its dead socket).
      const metricsText = (await rawRequest(server.baseUrl, '/metrics')).text;
      assert.doesNotMatch(metricsText, /hmac_errors_total\{code="ERR_UPLOAD_IN_PROGRESS"\} [1-9]/);
      assert.doesNotMatch(metricsText, /hmac_errors_total\{code="ERR_UPLOAD_LOCKED"\} [1-9]/);
      assert.match(metricsText, /hmac_errors_total\{code="ERR_UPLOAD_TAKEN_OVER"\} 1/);
    } finally {
      await proxy.close();
    }
  });
});

describe('handoff: other requests for the upload take over the same way', () => {
  it('a DELETE for an upload whose PATCH went silent on a half-open connection terminates it at once (idle_ended, 30 s drain never waited)', { timeout: 30_000 }, async () => {
    const server = await startServer({ config: '[tus]\nlock_drain_timeout = "30s"\n' });
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port), localAddress: '127.0.0.2' }).start();
    try {
      const size = 4 * MiB;
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/gone.bin`, baseUrl: server.uploadUrl, size });
      const created = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(size), 'Upload-Slot': slot.url } });
      const location = pathOf(String(created.headers.location));
      proxy.throttle(MiB);
      const patch = rawRequest(proxy.url, location, {
        method: 'PATCH',
        headers: { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
        body: randomData(size),
      }).catch((e: Error) => e);
      await proxy.waitForBytes(MiB);
      proxy.handoff('127.0.0.3');
      assert.ok((await patch) instanceof Error);
      const deleted = await rawRequest(server.baseUrl, location, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } });
      assert.equal(deleted.status, 204);
      const line = await server.waitForLog((l) => l.msg === TAKEN_OVER);
      assert.equal(line.outcome, 'idle_ended');
      assert.equal((await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })).status, 404);
    } finally {
      await proxy.close();
      await server.dispose();
    }
  });
});

describe('handoff: a holder still receiving keeps its drain', () => {
  it('a HEAD during a trickling PATCH waits for lock_drain_timeout (outcome drain_timeout), then reports the stored bytes', { timeout: 60_000 }, async () => {
    const server = await startServer({ config: '[tus]\nlock_drain_timeout = "1s"\n' });
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port), localAddress: '127.0.0.2' }).start();
    try {
      const declared = 150_000_000; // large class: its stall (90 s) and floor window play no part here
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/big.bin`, baseUrl: server.uploadUrl, size: declared });
      const created = await rawRequest(server.baseUrl, '/files/', {
        method: 'POST',
        headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(declared), 'Upload-Slot': slot.url },
      });
      const location = pathOf(String(created.headers.location));
      proxy.throttle(64 * 1024); // ~20 ms slices: never silent for takeover_idle (200 ms)
      const patch = rawRequest(proxy.url, location, {
        method: 'PATCH',
        headers: { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Content-Length': declared },
        body: randomData(4 * MiB),
      }).catch((e: Error) => e);
      await proxy.waitForBytes(64 * 1024);
      const head = await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
      assert.equal(head.status, 200);
      assert.ok(Number(head.headers['upload-offset']) > 0);
      await patch;
      assert.equal(await metricValue(server, 'hmac_takeovers_total{outcome="drain_timeout"}'), 1);
      assert.equal(await metricValue(server, 'hmac_takeovers_total{outcome="idle_ended"}'), 0);
      const line = await server.waitForLog((l) => l.msg === TAKEN_OVER);
      assert.equal(line?.outcome, 'drain_timeout');
      assert.ok((await metricValue(server, 'hmac_takeover_wait_seconds_count')) >= 1);
    } finally {
      await proxy.close();
      await server.dispose();
    }
  });
  it('a second PUT while the first keeps sending is refused (409 ERR_UPLOAD_IN_PROGRESS) after the moving window; the first completes', { timeout: 60_000 }, async () => {
    const server = await startServer();
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port), localAddress: '127.0.0.2' }).start();
    try {
      const data = randomData(4 * MiB);
      // v3: the signature does not name the size, so the second PUT may be small (and fully sent before its answer).
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/busy.bin`, baseUrl: server.uploadUrl, scheme: 'v3', expires: Math.floor(Date.now() / 1000) + 3600 });
      proxy.throttle(MiB); // ~1 s per MiB in small slices: moving the whole time, never silent for takeover_idle
      const first = rawRequest(proxy.url, pathOf(slot.url), { method: 'PUT', headers: { 'Content-Length': data.length }, body: data });
      await proxy.waitForBytes(256 * 1024);
      const second = await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', headers: { 'Content-Length': 10 }, body: Buffer.alloc(10) });
      assert.equal(second.status, 409, second.text);
      assert.equal(second.json().code, 'ERR_UPLOAD_IN_PROGRESS');
      assert.equal((await first).status, 201, 'the moving body was not ended');
      assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
    } finally {
      await proxy.close();
      await server.dispose();
    }
  });
});
