/**
 * S3 faults seen from outside (issue 12.5): RadosGW stopped mid-run and a black-holed S3. /ready
 * names S3 (a `storage` section: backend, state, breaker, reason; never the endpoint or keys) and
 * answers 503 while S3 does not answer, the metric follows, finalization waits under the storage
 * breaker instead of dead-lettering, and everything comes back by itself. A black-holed S3 cannot
 * hold a download: `[storage.s3] request_timeout` ends the S3 request.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { signSlotUrl } from '../../src/index.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { pathOf, rawRequest, sha256, slotDir, type RawResponse } from '../helpers/http.js';
import { ADMIN_TOKEN, AUTH, putFile, tusCreate } from '../helpers/ops.js';
import type { RadosGw } from '../helpers/rgw.js';
import { startRgwForServers, type RgwForServers } from '../helpers/rgw-server.js';
import { startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';
import { withTimeout } from '../helpers/service.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('S3 faults: /ready, metrics, breaker, timeouts', () => {
  let gw: RgwForServers;
  let rgw: RadosGw;
  before(async () => {
    gw = await startRgwForServers();
    rgw = gw.rgw;
  });
  after(async () => gw?.stop());

  const s3Config = async (endpoint: string, extra = '') => (await gw.serverConfig({ endpoint, s3Extra: extra })).toml;
  const ready = async (server: SpawnedServer) => {
    const res = await rawRequest(server.baseUrl, '/ready');
    return { status: res.status, body: JSON.parse(res.text) as Json, text: res.text };
  };
  const reachableMetric = async (server: SpawnedServer) => {
    const m = /^hmac_storage_backend_reachable\{backend="s3"\} (\S+)$/m.exec((await rawRequest(server.baseUrl, '/metrics')).text);
    return m ? Number(m[1]) : null;
  };
  const storageCheck = (body: Json) => (body.checks as Json[]).find((c) => c.name === 'storage_reachable');
  const lineAfter = (server: SpawnedServer, from: number, pred: (l: LogLine) => boolean, timeoutMs = 60_000) =>
    server.waitForLog((l) => server.logs.indexOf(l) >= from && pred(l), timeoutMs);
  const noSecrets = (text: string) => {
    assert.ok(!text.includes(rgw.accessKeyId) && !text.includes(rgw.secretAccessKey), 'no keys');
    assert.ok(!text.includes(rgw.endpoint) && !text.includes('127.0.0.1'), 'no endpoint');
  };

  it('RadosGW stopped mid-run: /ready 503 naming S3, metric 0, jobs wait under the open breaker; all back by itself', async () => {
    // Jobs wait at their first step until SIGUSR2: the PUTs are admitted while S3 is up and
    // finalized while it is down.
    const server = await startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config: await s3Config(rgw.endpoint, '[testing]\nhold_at = "start"') });
    try {
      const up = await ready(server);
      assert.equal(up.status, 200, up.text);
      assert.deepEqual({ ...up.body.storage, checkedAt: undefined }, { backend: 's3', state: 'ok', breaker: 'closed', checkedAt: undefined });
      assert.equal(storageCheck(up.body)?.ok, true);
      assert.equal(await reachableMetric(server), 1);

      const files = [0, 1, 2].map((i) => ({ path: `${slotDir()}/f${i}.bin`, data: randomBytes(20_000 + i) }));
      for (const f of files) assert.equal((await putFile(server, f.path, f.data)).status, 201);
      const open = await tusCreate(server, `${slotDir()}/resumed.bin`, randomBytes(5000), { sent: 0 });
      assert.equal(open.res.status, 201);

      const mark = server.logs.length;
      await rgw.stopGateway();
      await lineAfter(server, mark, (l) => l.msg === 'S3 does not answer: /ready fails until it does');
      const down = await ready(server);
      assert.equal(down.status, 503, down.text);
      assert.equal(down.body.ready, false);
      assert.equal(down.body.storage.backend, 's3');
      assert.equal(down.body.storage.state, 'unreachable');
      assert.equal(down.body.storage.reason, 'S3 refused the connection');
      assert.deepEqual(storageCheck(down.body), { name: 'storage_reachable', ok: false, reason: 'S3 refused the connection' });
      noSecrets(down.text);
      assert.equal(await reachableMetric(server), 0);

      // A new upload cannot land anywhere: a prompt 503 the client retries, not a hang or a 500.
      const refused = await withTimeout(putFile(server, `${slotDir()}/late.bin`, randomBytes(1000)), 60_000, 'PUT while S3 is down');
      assert.equal(refused.status, 503, refused.text);
      noSecrets(refused.text);
      // The same on the tus door: creation and an append answer 503 (tus-js-client retries those).
      const lateSlot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/late-tus.bin`, size: 1000, baseUrl: server.uploadUrl });
      const creation = await withTimeout(
        rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': 1000, 'Upload-Slot': lateSlot.url } }),
        60_000,
        'tus creation while S3 is down',
      );
      assert.equal(creation.status, 503, creation.text);
      const append = await withTimeout(
        rawRequest(server.baseUrl, `/files/${open.id}`, {
          method: 'PATCH',
          headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
          body: randomBytes(1000),
        }),
        60_000,
        'tus PATCH while S3 is down',
      );
      assert.equal(append.status, 503, append.text);

      server.proc.kill('SIGUSR2');
      await lineAfter(server, mark, (l) => typeof l.msg === 'string' && l.msg.startsWith('Circuit breaker opened') && l['dependency'] === 'storage', 90_000);
      const opened = await ready(server);
      assert.equal(opened.status, 503);
      assert.equal(opened.body.storage.breaker, 'open');
      assert.equal(opened.body.storage.state, 'unreachable', 'unreachable says more than the breaker');
      const breakers = JSON.parse((await rawRequest(server.baseUrl, '/admin/breakers', { headers: AUTH })).text) as Json;
      assert.equal((breakers.breakers as Json[]).find((b) => b.dependency === 'storage')?.state, 'open');
      assert.match((await rawRequest(server.baseUrl, '/metrics')).text, /^hmac_circuit_breaker_state\{dependency="storage",state="open"\} 1$/m);

      const back = server.logs.length;
      await rgw.startGateway();
      await lineAfter(server, back, (l) => l.msg === 'S3 answers again');
      const answering = await ready(server);
      assert.equal(answering.status, 200, answering.text);
      assert.equal(await reachableMetric(server), 1);
      // The breaker closes only after its cool-down and a good probe: meanwhile "recovering".
      if (answering.body.storage.breaker !== 'closed') {
        assert.equal(answering.body.storage.state, 'recovering');
        assert.match(answering.body.storage.reason, /breaker/);
      }
      await lineAfter(server, mark, (l) => l.msg === 'Circuit breaker closed' && l['dependency'] === 'storage', 120_000);
      let published = 0;
      await lineAfter(server, mark, (l) => l.msg === 'File published' && ++published === files.length, 60_000);
      for (const f of files) {
        const slot = signSlotUrl({ secret: TEST_SECRET, path: f.path, size: f.data.length, baseUrl: server.uploadUrl });
        const got = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
        assert.equal(got.status, 200, `${f.path} published once S3 is back`);
        assert.equal(sha256(got.body), sha256(f.data));
      }
      const after = await ready(server);
      assert.equal(after.status, 200);
      assert.deepEqual([after.body.storage.state, after.body.storage.breaker], ['ok', 'closed']);
      const dead = JSON.parse((await rawRequest(server.baseUrl, '/admin/dead-letters', { headers: AUTH })).text) as Json;
      assert.equal(dead.total, 0, 'no job became a dead letter');
    } finally {
      await rgw.startGateway();
      await server.dispose();
    }
  });

  it('S3 silent at start: the server starts unready, and reads its unfinished uploads once S3 answers (one upload per slot holds)', async () => {
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(rgw.endpoint).port) }).start();
    const config = await s3Config(proxy.url, 'connect_timeout = "1s"\nrequest_timeout = "2s"');
    const first = await startServer({ config });
    const path = `${slotDir()}/unfinished.bin`;
    let restarted: SpawnedServer | undefined;
    try {
      await tusCreate(first, path, randomBytes(6 * 1024 * 1024), { sent: 1024 });
      await first.stop();
      proxy.blackhole();
      restarted = await startServer({ dataDir: first.dataDir, config });
      const server = restarted;
      await server.waitForLog((l) => l.msg === 'The store does not answer: unfinished uploads are read once it does');
      assert.equal((await ready(server)).status, 503, 'unready while S3 is silent');

      const back = server.logs.length;
      proxy.restore();
      await lineAfter(server, back, (l) => l.msg === 'Unfinished uploads read from the store, which answers again');
      assert.equal((await ready(server)).status, 200);
      // The slot's unfinished upload from before the restart is known: another creation is refused naming it.
      const slot = signSlotUrl({ secret: TEST_SECRET, path, size: 7, baseUrl: server.uploadUrl });
      const again = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '7', 'Upload-Slot': slot.url } });
      assert.equal(again.status, 409, again.text);
      assert.equal((JSON.parse(again.text) as Json).code, 'ERR_UPLOAD_EXISTS');
    } finally {
      proxy.restore();
      await restarted?.stop();
      await first.dispose();
      await proxy.close();
    }
  });

  it('a black-holed S3: neither a worker nor a download waits for ever (request_timeout), /ready names the timeout; back when the network is', async () => {
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(rgw.endpoint).port) }).start();
    // The job waits at its first step until SIGUSR2: its body is in the bucket, its publish meets the black hole.
    const server = await startServer({ config: await s3Config(proxy.url, 'connect_timeout = "1s"\nrequest_timeout = "2s"\n[testing]\nhold_at = "start"') });
    try {
      const path = `${slotDir()}/clip.bin`;
      const data = randomBytes(300_000);
      assert.equal((await putFile(server, path, data)).status, 201);
      const slot = signSlotUrl({ secret: TEST_SECRET, path, size: data.length, baseUrl: server.uploadUrl });
      await server.waitForLog((l) => l.msg === 'Test hold: job waiting for SIGUSR2');

      const mark = server.logs.length;
      proxy.blackhole();
      server.proc.kill('SIGUSR2');
      // Without a client timeout the worker would wait on the silent socket for ever.
      await lineAfter(server, mark, (l) => l.msg === 'Finalization postponed: storage unreachable', 60_000);
      // Same for a request: with 2 s idle (and the SDK's retries) it ends with a 503 to retry.
      const stuck = await withTimeout(rawRequest(server.baseUrl, pathOf(slot.getUrl)), 45_000, 'GET while S3 is black-holed');
      assert.equal(stuck.status, 503, stuck.text);
      assert.ok(Number(stuck.headers['retry-after']) > 0, 'Retry-After');
      noSecrets(stuck.text);
      await lineAfter(server, mark, (l) => l.msg === 'S3 does not answer: /ready fails until it does');
      const down = await ready(server);
      assert.equal(down.status, 503);
      assert.match(down.body.storage.reason, /^S3 did not answer within \d/);

      const back = server.logs.length;
      proxy.restore();
      await lineAfter(server, back, (l) => l.msg === 'S3 answers again');
      assert.equal((await ready(server)).status, 200);
      await lineAfter(server, mark, (l) => l.msg === 'File published', 120_000);
      const got = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
      assert.equal(got.status, 200);
      assert.equal(sha256(got.body), sha256(data));
    } finally {
      proxy.restore();
      await server.dispose();
      await proxy.close();
    }
  });

  it('S3 black-holed in the middle of a body: a PUT and a tus PATCH answer 503 with Retry-After, never a 500; the tus upload resumes once S3 is back, and the cut PUT\'s multipart upload is aborted', async () => {
    const proxy = await new FaultProxy({ upstreamPort: Number(new URL(rgw.endpoint).port) }).start();
    const { toml, bucket, prefix } = await gw.serverConfig({ endpoint: proxy.url, s3Extra: 'connect_timeout = "1s"\nrequest_timeout = "2s"' });
    const server = await startServer({ config: toml });
    const SIZE = 12 * 1024 * 1024; // more than two 5 MiB parts
    // Sends `data` and black-holes S3 once 1 MiB more of it went through the proxy: S3 took the
    // connections, then answers nothing while the body is on its way.
    const midBody = (send: (body: Buffer) => Promise<RawResponse>, data: Buffer) => {
      const from = proxy.bytesUp;
      void proxy.waitForBytes(from + 1024 * 1024).then(() => proxy.blackhole());
      return withTimeout(send(data), 90_000, 'a request whose body meets a black-holed S3');
    };
    // The held connections are reset, not let through: a part whose request timed out would
    // otherwise land at S3 late, out of order, which @tus/s3-store's offset (the sum of the parts
    // S3 lists) does not expect.
    const s3Back = () => {
      proxy.reset();
      proxy.restore();
    };
    const unavailable = (res: RawResponse, what: string) => {
      // On another answer, say why: the server's last errors.
      assert.equal(res.status, 503, `${what}: ${res.text} ${JSON.stringify(server.logs.filter((l) => Number(l.level) >= 50).slice(-2))}`);
      assert.equal((JSON.parse(res.text) as Json).code, 'ERR_STORAGE_UNAVAILABLE', what);
      assert.ok(Number(res.headers['retry-after']) > 0, `${what}: Retry-After`);
      noSecrets(res.text);
    };
    try {
      const putPath = `${slotDir()}/put.bin`;
      const put = await midBody((body) => putFile(server, putPath, body), randomBytes(SIZE));
      unavailable(put, 'PUT');
      s3Back();

      const data = randomBytes(SIZE);
      const { location } = await tusCreate(server, `${slotDir()}/tus.bin`, data, { sent: 0 });
      const patch = await midBody(
        (body) =>
          rawRequest(server.baseUrl, location, {
            method: 'PATCH',
            headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
            body,
          }),
        data,
      );
      unavailable(patch, 'tus PATCH');
      s3Back();

      // What S3 acknowledged is kept: the upload resumes from the offset HEAD reports, as a tus
      // client does (asking again on 409/423: a part held in the black hole may still land).
      let rest: RawResponse | undefined;
      for (let i = 0; i < 10 && (rest === undefined || rest.status === 409 || rest.status === 423); i++) {
        if (rest !== undefined) await new Promise((r) => setTimeout(r, 500));
        const head = await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
        assert.equal(head.status, 200, head.text);
        const offset = Number(head.headers['upload-offset']);
        rest = await rawRequest(server.baseUrl, location, {
          method: 'PATCH',
          headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
          body: data.subarray(offset),
        });
      }
      assert.equal(rest?.status, 204, rest?.text);
      await server.waitForLog((l) => l.msg === 'File published', 60_000);

      // The PUT's abort met the black hole; it is tried again once S3 answers, not left for the next start.
      const incomingUploads = async () =>
        (await gw.client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}incoming/` }))).Uploads ?? [];
      for (let i = 0; i < 120 && (await incomingUploads()).length > 0; i++) await new Promise((r) => setTimeout(r, 1000));
      assert.deepEqual((await incomingUploads()).map((u) => u.Key), [], 'no multipart upload of the cut PUT is left in the bucket');
    } finally {
      proxy.restore();
      await server.dispose();
      await proxy.close();
    }
  });
});
