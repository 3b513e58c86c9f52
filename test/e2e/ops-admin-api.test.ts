/**
 * The operations part of the admin API (src/ops/admin-routes.ts): queue status and jobs, retry,
 * dead letters, workers, breakers, verify, recover, the status page's data, and /ready's queue,
 * emergency and Redis checks. Dead letters come from real failures: a declared sha256 that does
 * not match (permanent) and a webhook that answers 500 (retried after a backoff of up to 20 days).
 */
import assert from 'node:assert/strict';
import { open, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rawRequest, slotDir } from '../helpers/http.js';
import { ADMIN_TOKEN, AUTH, ndjson, putFile, startWebhookReceiver, tusCreate, type WebhookReceiver } from '../helpers/ops.js';
import { startServer, type LogLine, type SpawnedServer } from '../helpers/server.js';

const WRONG_SHA = 'ab'.repeat(32);
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('ops admin API', () => {
  let server: SpawnedServer;
  let hook: WebhookReceiver;
  const get = async (path: string, headers: Record<string, string> = AUTH) => rawRequest(server.baseUrl, `/admin${path}`, { headers });
  const call = async (method: string, path: string) => rawRequest(server.baseUrl, `/admin${path}`, { method, headers: AUTH });
  /** The n-th log line (1-based) matching pred, seen or future. */
  const nth = (pred: (l: LogLine) => boolean, n: number) => {
    let seen = 0;
    return server.waitForLog((l) => pred(l) && ++seen === n);
  };
  const deadLog = (jobId: string) => (l: LogLine) => l.jobId === jobId && /moved to dead letter queue$/.test(String(l.msg));
  const retryLog = (jobId: string) => (l: LogLine) => l.jobId === jobId && l.msg === 'Finalization attempt failed, will retry';
  /** A tus upload whose declared checksum is wrong: a dead letter at once. */
  const deadLetter = async () => {
    const { id } = await tusCreate(server, `${slotDir()}/bad.bin`, Buffer.from('not what was declared'), { sha256: WRONG_SHA });
    await server.waitForLog(deadLog(`tus-${id}`));
    return `tus-${id}`;
  };

  before(async () => {
    hook = await startWebhookReceiver();
    hook.answer = (e) => (e.path.includes('/fail-') ? 500 : 200);
    server = await startServer({
      env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN },
      config: `[finalize]\nwebhook_url = "${hook.url}"\n[timeouts]\nmax_retry_attempts = 1\nretry_base_delay = "20d"\nretry_max_delay = "24d"\n[testing]\nskip_intake_checksum = true\n`,
    });
  });
  after(async () => {
    await server?.dispose();
    await hook?.close();
  });

  it('401 on every operations route without or with a wrong token, revealing nothing', async () => {
    const routes: Array<[string, string]> = [
      ['GET', '/queue'],
      ['GET', '/queue/jobs'],
      ['GET', '/queue/jobs/x'],
      ['POST', '/queue/jobs/x/retry'],
      ['GET', '/workers'],
      ['GET', '/breakers'],
      ['GET', '/dead-letters'],
      ['POST', '/dead-letters/replay'],
      ['POST', '/dead-letters/x/replay'],
      ['POST', '/dead-letters/purge'],
      ['DELETE', '/dead-letters/x'],
      ['POST', '/recover'],
      ['POST', '/verify'],
      ['GET', '/status/data'],
    ];
    for (const [method, path] of routes) {
      for (const headers of [{}, { Authorization: 'Bearer wrong' }, { Authorization: `Basic ${ADMIN_TOKEN}` }] as Array<Record<string, string>>) {
        const res = await rawRequest(server.baseUrl, `/admin${path}`, { method, headers });
        assert.equal(res.status, 401, `${method} ${path}`);
        assert.deepEqual(Object.keys(res.json()).sort(), ['code', 'message', 'requestId']);
      }
    }
  });

  it('queue status, workers and breakers', async () => {
    const q = (await get('/queue')).json<Json>();
    assert.deepEqual(Object.keys(q.counts).sort(), ['dead', 'done', 'leased', 'queued']);
    assert.deepEqual(Object.keys(q.pending).sort(), ['high', 'low', 'medium']);
    assert.equal(q.pressure.level, 'normal');
    assert.equal(q.workers.length, 4);
    const workers = (await get('/workers')).json<Json>().workers;
    assert.deepEqual(workers.map((w: Json) => w.id), [1, 2, 3, 4]);
    assert.ok(workers.every((w: Json) => w.status === 'healthy' && typeof w.processed === 'number'));
    const breakers = (await get('/breakers')).json<Json>().breakers;
    assert.deepEqual(breakers.map((b: Json) => [b.dependency, b.state, b.retryAtMs]), [['storage', 'closed', null], ['webhook', 'closed', null]]);
  });

  it('a job waiting for its backoff is listed with its error, and retry runs it now', async () => {
    const res = await putFile(server, `${slotDir()}/fail-once.txt`, 'notify me');
    assert.equal(res.status, 201);
    const jobId = `put-${res.headers['x-request-id']}`;
    await nth(retryLog(jobId), 1);
    const jobs = (await get('/queue/jobs')).json<Json>().jobs;
    const job = jobs.find((j: Json) => j.id === jobId);
    assert.equal(job.state, 'queued');
    assert.equal(job.attempts, 1);
    assert.equal(job.lastError.code, 'ERR_WEBHOOK_FAILED');
    assert.ok(job.availableAtMs > Date.now(), 'waits for its backoff (up to 20 days)');
    assert.equal((await get(`/queue/jobs/${jobId}`)).json<Json>().id, jobId);

    const retried = await call('POST', `/queue/jobs/${jobId}/retry`);
    assert.equal(retried.status, 200, retried.text);
    const r = retried.json<Json>();
    assert.deepEqual([r.id, r.action], [jobId, 'made_available']);
    assert.ok(['queued', 'leased'].includes(r.state), 'the workers are woken at once');
    await server.waitForLog(deadLog(jobId)); // its one retry, now: failed again, out of retries
    assert.equal((await get(`/queue/jobs/${jobId}`)).json<Json>().state, 'dead');
  });

  it('retry of a dead letter replays it (attempts reset)', async () => {
    const jobId = await deadLetter();
    const dead = (await get(`/queue/jobs/${jobId}`)).json<Json>();
    assert.equal(dead.state, 'dead');
    assert.equal(dead.attempts, 1);
    const replayed = await call('POST', `/queue/jobs/${jobId}/retry`);
    assert.equal(replayed.status, 200, replayed.text);
    assert.deepEqual(replayed.json(), { id: jobId, action: 'replayed', state: 'queued' });
    await nth(deadLog(jobId), 2); // the declared checksum still does not match
    const again = (await get(`/queue/jobs/${jobId}`)).json<Json>();
    assert.equal(again.attempts, 1, 'attempts restarted at the replay');
    assert.equal(again.errors, undefined, 'the job view carries the last error only');
    assert.equal(again.lastError.code, 'ERR_CHECKSUM_MISMATCH');
  });

  it('retry: unknown id 404, a done job 409', async () => {
    const unknown = await call('POST', '/queue/jobs/nope/retry');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json().code, 'ERR_NOT_FOUND');
    const ok = await putFile(server, `${slotDir()}/fine.txt`, 'fine');
    const jobId = `put-${ok.headers['x-request-id']}`;
    await hook.waitFor((d) => d.id === jobId && d.status === 200);
    await server.waitForLog((l) => l.msg === 'File published' && l.jobId === jobId);
    // Done once the webhook answered (or, a moment before, still running): neither can be retried.
    const done = await call('POST', `/queue/jobs/${jobId}/retry`);
    assert.equal(done.status, 409, done.text);
    assert.equal(done.json().code, 'ERR_JOB_NOT_RETRYABLE');
    assert.equal((await get('/queue/jobs/nope')).status, 404);
  });

  it('dead letters: list with errors, replay one, purge one with its bytes, purge all; unknown ids 404', async () => {
    await call('POST', '/dead-letters/purge');
    const [a, b, c] = [await deadLetter(), await deadLetter(), await deadLetter()];
    const list = (await get('/dead-letters')).json<Json>();
    assert.equal(list.total, 3);
    assert.deepEqual(list.deadLetters.map((d: Json) => d.id), [a, b, c], 'oldest first');
    assert.equal(list.deadLetters[0].protocol, 'tus');
    assert.equal(list.deadLetters[0].errors.at(-1).code, 'ERR_CHECKSUM_MISMATCH');
    assert.deepEqual((await get('/dead-letters?limit=1&offset=1')).json<Json>().deadLetters.map((d: Json) => d.id), [b]);
    assert.deepEqual((await get('/queue/jobs?state=dead')).json<Json>().jobs.map((j: Json) => j.id), [a, b, c]);

    const replay = await call('POST', `/dead-letters/${a}/replay`);
    assert.deepEqual(replay.json(), { replayed: 1 });
    await nth(deadLog(a), 2); // the checksum still does not match

    const purge = await call('DELETE', `/dead-letters/${b}`);
    assert.deepEqual(purge.json(), { purged: 1 });
    const tusId = b.slice('tus-'.length);
    assert.equal((await rawRequest(server.baseUrl, `/files/${tusId}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })).status, 404, 'bytes and record gone');

    for (const [method, path] of [['POST', '/dead-letters/nope/replay'], ['DELETE', '/dead-letters/nope']] as const) {
      const res = await call(method, path);
      assert.equal(res.status, 404, path);
      assert.equal(res.json().code, 'ERR_NOT_FOUND');
    }
    const wrong = await call('GET', '/dead-letters/purge');
    assert.equal(wrong.status, 405);
    assert.deepEqual(String(wrong.headers.allow).split(', ').sort(), ['DELETE', 'POST']);
    assert.deepEqual((await call('POST', '/dead-letters/purge')).json(), { purged: 2 });
    assert.equal((await get('/dead-letters')).json<Json>().total, 0);
  });

  it('bad query parameters answer 400 with the reason', async () => {
    for (const q of ['limit=0', 'limit=abc', 'limit=1001', 'offset=-1', 'state=bogus', 'state=queued,nope', 'state=', 'state=,', 'priority=', 'priority=urgent', 'limit=1&limit=2']) {
      const res = await get(`/queue/jobs?${q}`);
      assert.equal(res.status, 400, q);
      assert.equal(res.json().code, 'ERR_BAD_REQUEST');
    }
    assert.equal((await get('/dead-letters?limit=x')).status, 400);
    assert.equal((await call('POST', '/recover?dry_run=maybe')).status, 400);
    assert.equal((await get('/queue/jobs/%zz')).status, 400);
  });

  it('verify streams progress and reports a corrupted published file', async () => {
    const path = `${slotDir()}/keep.txt`;
    const ok = await putFile(server, path, 'the original bytes');
    await server.waitForLog((l) => l.msg === 'File published' && l.jobId === `put-${ok.headers['x-request-id']}`);
    let lines = ndjson(await call('POST', '/verify'));
    let result = lines.at(-1)!.result as Json;
    assert.ok(lines.slice(0, -1).every((l) => 'progress' in l));
    assert.ok(result.checked >= 1);
    assert.deepEqual(result.problems, []);

    const fh = await open(join(server.dataDir, 'files', path), 'r+');
    await fh.write('THE', 0); // same size, other bytes
    await fh.close();
    lines = ndjson(await call('POST', '/verify'));
    result = lines.at(-1)!.result as Json;
    assert.deepEqual(result.problems.map((p: Json) => [p.slotPath, p.kind]), [[path, 'corrupt']]);
  });

  it('recover: the dry run plans, the run removes; files touched recently are left alone', async () => {
    const old = join(server.dataDir, 'tus', 'f'.repeat(32));
    const fresh = join(server.dataDir, 'tus', 'e'.repeat(32));
    await writeFile(old, 'orphaned bytes');
    await writeFile(fresh, 'maybe in flight');
    const hourAgo = (Date.now() - 3_600_000) / 1000;
    await utimes(old, hourAgo, hourAgo);
    const plan = ndjson(await call('POST', '/recover?dry_run=1')).at(-1)!.result as Json;
    assert.equal(plan.dryRun, true);
    assert.deepEqual(plan.items.map((i: Json) => [i.kind, i.action, i.target]), [['orphan_file', 'remove', `tus/${'f'.repeat(32)}`]]);
    const run = ndjson(await call('POST', '/recover')).at(-1)!.result as Json;
    assert.deepEqual(run.items.map((i: Json) => i.result), ['done']);
    assert.equal(run.failed, 0);
    await assert.rejects(open(old), { code: 'ENOENT' });
    await (await open(fresh)).close();
  });

  it('a published file deleted by hand: verify names it missing, recover links it back from the content store', async () => {
    const path = `${slotDir()}/lost.txt`;
    const ok = await putFile(server, path, 'bytes the content store keeps');
    await server.waitForLog((l) => l.msg === 'File published' && l.jobId === `put-${ok.headers['x-request-id']}`);
    const hourAgo = (Date.now() - 3_600_000) / 1000;
    await utimes(join(server.dataDir, 'meta', `${path}.json`), hourAgo, hourAgo); // a settled record, not a publish in progress
    await rm(join(server.dataDir, 'files', path));
    const verify = ndjson(await call('POST', '/verify')).at(-1)!.result as Json;
    assert.deepEqual(verify.problems.filter((p: Json) => p.kind === 'missing').map((p: Json) => [p.slotPath, /recover restores it/.test(p.detail)]), [[path, true]]);
    const plan = ndjson(await call('POST', '/recover?dry_run=1')).at(-1)!.result as Json;
    assert.deepEqual(plan.items.map((i: Json) => [i.kind, i.action, i.target, i.bytes]), [['lost_file', 'restore', `files/${path}`, Buffer.byteLength('bytes the content store keeps')]]);
    const run = ndjson(await call('POST', '/recover')).at(-1)!.result as Json;
    assert.deepEqual(run.items.map((i: Json) => i.result), ['done']);
    const back = await rawRequest(server.baseUrl, `/upload/${path}`);
    assert.deepEqual([back.status, back.text], [200, 'bytes the content store keeps']);
  });

  it('the status page shell needs no token, its data does', async () => {
    const page = await rawRequest(server.baseUrl, '/admin/status');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'.*connect-src 'self'/);
    assert.match(page.text, /src="\/admin\/status\/status\.js"/);
    assert.doesNotMatch(page.text, /%PREFIX%/);
    assert.equal((await rawRequest(server.baseUrl, '/admin/status/status.js')).status, 200);
    assert.equal((await rawRequest(server.baseUrl, '/admin/status/data')).status, 401);
    const data = (await get('/status/data')).json<Json>();
    assert.deepEqual(Object.keys(data).sort(), ['generatedAtMs', 'queue', 'recentDeadLetters', 'uploads']);
    assert.equal(typeof data.uploads.streaming, 'number');
    assert.equal(typeof data.uploads.incomplete, 'number');
  });

  // Redis (cluster mode) is reported in /ready's `cluster` field: test/e2e/cluster-*.test.ts.
  it('/ready names the queue, emergency and storage checks', async () => {
    const res = await rawRequest(server.baseUrl, '/ready');
    assert.equal(res.status, 200, res.text);
    const checks = res.json<Json>().checks.map((c: Json) => [c.name, c.ok]);
    assert.deepEqual(checks, [['data_dir_writable', true], ['accepting_uploads', true], ['queue_usable', true], ['not_emergency', true], ['storage_space', true]]);
    assert.equal(res.json<Json>().cluster, undefined, 'single-node: no cluster field');
  });
});

describe('readiness failures', () => {
  let server: SpawnedServer;
  let hook: WebhookReceiver;
  before(async () => {
    hook = await startWebhookReceiver();
    hook.answer = () => 500;
    // queue_size 2 and emergency at 50%: one job stuck in its backoff is an emergency.
    server = await startServer({
      config:
        `[workers]\nqueue_size = 2\nqueue_backpressure_threshold = 0.4\n[queue_resilience]\nemergency_mode_threshold = 0.5\n` +
        `[finalize]\nwebhook_url = "${hook.url}"\n[timeouts]\nretry_base_delay = "20d"\nretry_max_delay = "24d"\n`,
    });
  });
  after(async () => {
    await server?.dispose();
    await hook?.close();
  });

  it('503 naming emergency mode, without internals', async () => {
    let res = await rawRequest(server.baseUrl, '/ready');
    assert.equal(res.status, 200);
    const put = await putFile(server, `${slotDir()}/stuck.txt`, 'x');
    assert.equal(put.status, 201);
    await server.waitForLog((l) => String(l.msg).startsWith('Queue emergency mode activated'));
    res = await rawRequest(server.baseUrl, '/ready');
    assert.equal(res.status, 503);
    const failing = res.json<Json>().checks.filter((c: Json) => !c.ok);
    assert.deepEqual(failing, [{ name: 'not_emergency', ok: false, reason: 'the finalization queue is in emergency mode' }]);
    assert.doesNotMatch(res.text, /\/tmp\//, 'no paths');
  });
});
