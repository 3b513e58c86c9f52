/**
 * The operator commands against the built CLI: online (a running server found through its lock
 * file, or --url) and offline (its data directory once it stopped), tables and --json, exit
 * codes (0 ok, 1 failed, 2 usage, 3 problems found) and bad input.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { randomData, rawRequest, slotDir } from '../helpers/http.js';
import { ADMIN_TOKEN, putFile, startWebhookReceiver, tusCreate, type WebhookReceiver } from '../helpers/ops.js';
import { runCli, startServer, type LogLine, type SpawnedServer } from '../helpers/server.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const WRONG_SHA = 'cd'.repeat(32);

describe('operator commands, online then offline on the same data directory', () => {
  let server: SpawnedServer;
  let hook: WebhookReceiver;
  let config = '';
  /** Runs the CLI on the server's data dir (lock file, config) with the admin token in the environment. */
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli(args, { HFS_DATA_DIR: server.dataDir, HFS_ADMIN_TOKEN: ADMIN_TOKEN, HFS_CONFIG: join(server.dataDir, '..', `${server.dataDir.split('/').pop()}.toml`), ...env });
  const json = async (args: string[]) => {
    const res = await cli([...args, '--json']);
    assert.equal(res.code, 0, `${args.join(' ')}: ${res.stderr}`);
    return JSON.parse(res.stdout) as Json;
  };
  const deadLog = (jobId: string) => (l: LogLine) => l.jobId === jobId && /moved to dead letter queue$/.test(String(l.msg));
  let partial = { id: '', path: '' };
  let backoffJob = '';
  let deadJob = '';
  let kept = '';

  before(async () => {
    hook = await startWebhookReceiver();
    hook.answer = (e) => (e.path.includes('/fail-') ? 500 : 200);
    config = `[finalize]\nwebhook_url = "${hook.url}"\n[timeouts]\nmax_retry_attempts = 1\nretry_base_delay = "20d"\nretry_max_delay = "24d"\n[testing]\nskip_intake_checksum = true\n`;
    server = await startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config });
    // An unfinished tus upload, a job waiting for its backoff, a dead letter, a published file.
    partial.path = `${slotDir()}/partial.bin`;
    partial.id = (await tusCreate(server, partial.path, randomData(1000), { sent: 300 })).id;
    const put = await putFile(server, `${slotDir()}/fail-notify.txt`, 'waits');
    backoffJob = `put-${put.headers['x-request-id']}`;
    await server.waitForLog((l) => l.jobId === backoffJob && l.msg === 'Finalization attempt failed, will retry');
    const bad = await tusCreate(server, `${slotDir()}/bad.bin`, Buffer.from('bytes'), { sha256: WRONG_SHA });
    deadJob = `tus-${bad.id}`;
    await server.waitForLog(deadLog(deadJob));
    kept = `${slotDir()}/kept.txt`;
    const ok = await putFile(server, kept, 'kept bytes');
    await hook.waitFor((d) => d.id === `put-${ok.headers['x-request-id']}` && d.status === 200);
  });
  after(async () => {
    await server?.dispose();
    await hook?.close();
  });

  it('help says where each command works and what the exit codes mean', async () => {
    const top = await runCli(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /uploads.*\n.*\n?.*queue/s);
    assert.match(top.stdout, /Exit codes: 0 ok, 1 failed, 2 bad usage, 3 problems found/);
    for (const cmd of [['uploads', 'list'], ['uploads', 'expire'], ['queue', 'status'], ['dlq', 'purge'], ['recover'], ['verify']]) {
      const res = await runCli([...cmd, '--help']);
      assert.equal(res.code, 0, cmd.join(' '));
      assert.match(res.stdout, /online +through the admin API/, cmd.join(' '));
      assert.match(res.stdout, /offline +on the data directory/, cmd.join(' '));
    }
  });

  it('online: uploads list, show, expire', async () => {
    const list = await cli(['uploads', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID +SLOT PATH +RECEIVED +SIZE +DONE +AGE +IDLE$/m);
    assert.match(list.stdout, new RegExp(`${partial.id} +${partial.path} +300 B +1000 B +30%`));
    const listed = await json(['uploads', 'list']);
    assert.equal(listed.mode, 'online');
    assert.deepEqual(listed.uploads.map((u: Json) => u.id), [partial.id]);
    const shown = await json(['uploads', 'show', partial.id]);
    assert.deepEqual([shown.offset, shown.size, shown.slotPath, shown.finished], [300, 1000, partial.path, false]);
    const plan = await json(['uploads', 'expire', '--older-than', '0s', '--dry-run']);
    assert.deepEqual(plan.wouldExpire, [partial.id]);
    const expired = await json(['uploads', 'expire', partial.id]);
    assert.deepEqual(expired, { expired: [partial.id], failed: [] });
    const gone = await cli(['uploads', 'show', partial.id]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, new RegExp(`No upload ${partial.id}`));
    // Another unfinished upload, for the offline part.
    partial = { path: `${slotDir()}/later.bin`, id: '' };
    partial.id = (await tusCreate(server, partial.path, randomData(500), { sent: 100 })).id;
  });

  it('online: queue status, list, retry', async () => {
    const status = await cli(['queue', 'status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^TIER +WAITING +RUNNING +TOTAL +DONE \(KEPT\) +DEAD$/m);
    assert.match(status.stdout, /^pressure: normal/m);
    assert.match(status.stdout, /^webhook +closed/m);
    assert.match(status.stdout, /^ +1 +healthy/m);
    const s = await json(['queue', 'status']);
    assert.equal(s.deadLetters, 1);
    assert.deepEqual(s.problems, []);
    const jobs = await json(['queue', 'list', '--state', 'queued,dead']);
    assert.deepEqual(jobs.jobs.map((j: Json) => [j.id, j.state]).sort(), [[backoffJob, 'queued'], [deadJob, 'dead']].sort());
    const table = await cli(['queue', 'list', '--state', 'all', '--tier', 'high']);
    assert.match(table.stdout, new RegExp(`${backoffJob} +high +queued .* +1 +in \\d+[dhms]\\S* +ERR_WEBHOOK_FAILED: webhook answered 500`));
    const unknown = await cli(['queue', 'retry', 'nope']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /No job nope/);
  });

  it('online: dead letters list, replay, purge', async () => {
    const list = await cli(['dlq', 'list']);
    assert.equal(list.code, 0);
    assert.match(list.stdout, new RegExp(`${deadJob} .* ERR_CHECKSUM_MISMATCH`));
    const replay = await cli(['dlq', 'replay', deadJob]);
    assert.deepEqual([replay.code, replay.stdout.trim()], [0, 'replayed 1 dead letter(s)']);
    let seen = 0;
    await server.waitForLog((l) => deadLog(deadJob)(l) && ++seen === 2);
    for (const args of [['dlq', 'replay', 'nope'], ['dlq', 'purge', 'nope']]) {
      const res = await cli(args);
      assert.equal(res.code, 1, args.join(' '));
      assert.match(res.stderr, /no dead letter nope/);
    }
    assert.deepEqual((await json(['dlq', 'list'])).deadLetters.map((d: Json) => d.id), [deadJob]);
  });

  it('online: verify and recover find nothing on a healthy server', async () => {
    const verify = await cli(['verify']);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /checked \d+ file\(s\), .*: 0 problem\(s\)/);
    const recover = await cli(['recover', '--dry-run']);
    assert.deepEqual([recover.code, recover.stdout.trim()], [0, 'nothing to recover (the server runs: files touched in the last 15 minutes are left for a later run)']);
  });

  it('bad input: malformed flags exit 2, a wrong token or an unreachable server exit 1', async () => {
    const usage: string[][] = [
      ['queue', 'list', '--state', 'bogus'],
      ['queue', 'list', '--limit', '0'],
      ['queue', 'list', '--tier', 'urgent'],
      ['uploads', 'list', '--older-than', 'ten'],
      ['uploads', 'expire'],
      ['uploads', 'expire', 'x', '--older-than', '1h'],
      ['dlq', 'replay'],
      ['dlq', 'purge', 'x', '--all'],
      ['queue', 'status', '--url', 'http://x', '--offline'],
      ['queue', 'status', '--url', 'not a url'],
      ['queue', 'bogus'],
      ['uploads', 'show'],
    ];
    for (const args of usage) assert.equal((await cli(args)).code, 2, args.join(' '));
    const wrong = await cli(['queue', 'status'], { HFS_ADMIN_TOKEN: 'wrong' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /refused the token \(401\)/);
    const noToken = await cli(['queue', 'status'], { HFS_ADMIN_TOKEN: '' });
    assert.equal(noToken.code, 2);
    const unreachable = await cli(['queue', 'status', '--url', 'http://127.0.0.1:1/admin']);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach the admin API at http:\/\/127\.0\.0\.1:1\/admin/);
    const busy = await cli(['dlq', 'list', '--offline']);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /a server \(pid \d+\) is running on .*: stop it before using --offline/);
    const explicit = await cli(['queue', 'status', '--url', `${server.baseUrl}/admin`, '--json']);
    assert.equal(explicit.code, 0, explicit.stderr);
  });

  it('offline after the server stopped: status, list, uploads, dead letters, verify', async () => {
    assert.equal(await server.stop(), 0);
    assert.equal(existsSync(join(server.dataDir, 'server.json')), false, 'the lock file went with the server');
    const s = await json(['queue', 'status']);
    assert.equal(s.mode, 'offline');
    assert.equal(s.pressure, null);
    assert.equal(s.deadLetters, 1);
    const text = await cli(['queue', 'status']);
    assert.match(text.stdout, /pressure: - \(offline: no server running\)/);
    const jobs = await json(['queue', 'list', '--offline']);
    assert.deepEqual(jobs.jobs.map((j: Json) => j.id), [backoffJob]);
    assert.deepEqual((await json(['dlq', 'list'])).deadLetters.map((d: Json) => [d.id, d.errors.at(-1).code]), [[deadJob, 'ERR_CHECKSUM_MISMATCH']]);
    const uploads = await json(['uploads', 'list']);
    assert.deepEqual([uploads.mode, uploads.uploads.map((u: Json) => [u.id, u.offset, u.size])], ['offline', [[partial.id, 100, 500]]]);
    assert.equal((await json(['uploads', 'show', partial.id])).slotPath, partial.path);
    assert.equal((await cli(['uploads', 'show', 'nope'])).code, 1);
    assert.deepEqual(await json(['uploads', 'expire', '--older-than', '0s']), { expired: [partial.id], failed: [] });
    assert.equal(existsSync(join(server.dataDir, 'tus', partial.id)), false);

    const clean = await cli(['verify']);
    assert.equal(clean.code, 0, clean.stdout);
    const fh = await open(join(server.dataDir, 'files', kept), 'r+');
    await fh.write('KEPT', 0);
    await fh.close();
    const corrupt = await cli(['verify', '--json']);
    assert.equal(corrupt.code, 3, 'problems found');
    assert.deepEqual(JSON.parse(corrupt.stdout).problems.map((p: Json) => [p.slotPath, p.kind]), [[kept, 'corrupt']]);
  });

  it('offline: purge a dead letter with its bytes, retry a job in backoff; the restarted server runs it at once', async () => {
    const tusId = deadJob.slice('tus-'.length);
    assert.ok(existsSync(join(server.dataDir, 'tus', tusId)));
    const purged = await cli(['dlq', 'purge', deadJob]);
    assert.deepEqual([purged.code, purged.stdout.trim()], [0, 'purged 1 dead letter(s) and their bytes']);
    assert.equal(existsSync(join(server.dataDir, 'tus', tusId)), false, 'bytes gone');
    assert.equal(existsSync(join(server.dataDir, 'tus', `${tusId}.json`)), false, 'record gone');
    assert.deepEqual((await json(['dlq', 'list'])).deadLetters, []);

    const retried = await json(['queue', 'retry', backoffJob]);
    assert.deepEqual(retried, { id: backoffJob, action: 'made_available', state: 'queued' });
    hook.answer = () => 200; // the receiver is fixed meanwhile
    const restarted = await startServer({ dataDir: server.dataDir, env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config });
    try {
      await hook.waitFor((d) => d.id === backoffJob && d.status === 200);
      const lock = JSON.parse(await readFile(join(server.dataDir, 'server.json'), 'utf8')) as Json;
      assert.equal(lock.adminUrl, `${restarted.baseUrl}/admin`);
    } finally {
      await restarted.stop();
    }
  });
});

describe('recover after a crash between "upload finished" and "job admitted"', () => {
  let server: SpawnedServer;
  after(async () => server?.dispose());

  it('dry run shows the plan (exit 3), the run re-admits, the next start publishes it', async () => {
    server = await startServer({ env: { HFS_TEST_CRASH_AT: 'admit-before-insert' } });
    const body = randomData(2000);
    const path = `${slotDir()}/crashed.bin`;
    const { location, id } = await tusCreate(server, path, body, { sent: 0 });
    await rawRequest(server.baseUrl, location, {
      method: 'PATCH',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': 0, 'Content-Type': 'application/offset+octet-stream' },
      body,
    }).catch(() => null); // the server dies before answering
    assert.equal(await server.exited, null, 'killed by SIGKILL');
    assert.ok(existsSync(join(server.dataDir, 'server.json')), 'a stale lock file stays behind');

    const env = { HFS_DATA_DIR: server.dataDir, HFS_CONFIG: '/dev/null' };
    const plan = await runCli(['recover', '--dry-run'], env);
    assert.equal(plan.code, 3, plan.stderr);
    assert.match(plan.stdout, new RegExp(`unqueued_upload +readmit +tus/${id} +finished upload of ${path} never reached the queue`));
    assert.match(plan.stdout, /dry run: \d+ item\(s\) would be handled/);
    const run = await runCli(['recover', '--json'], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout) as Json;
    assert.equal(report.mode, 'offline');
    assert.deepEqual(report.items.filter((i: Json) => i.kind === 'unqueued_upload').map((i: Json) => [i.target, i.result]), [[`tus/${id}`, 'done']]);
    const jobs = JSON.parse((await runCli(['queue', 'list', '--json'], env)).stdout) as Json;
    assert.deepEqual(jobs.jobs.map((j: Json) => [j.id, j.slotPath, j.state]), [[`tus-${id}`, path, 'queued']]);

    const restarted = await startServer({ dataDir: server.dataDir });
    try {
      await restarted.waitForLog((l) => l.msg === 'File published' && l.jobId === `tus-${id}`);
      const got = await rawRequest(restarted.baseUrl, `/upload/${path}`);
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(body));
      assert.equal(restarted.logs.some((l) => l.msg === 'Finished uploads found without a finalization job after a crash'), false, 'recover did it before the start');
    } finally {
      await restarted.stop();
    }
  });
});

describe('a tus record that is no JSON record (a disk error, a hand edit)', () => {
  const UNREADABLE = 'Some tus upload records cannot be read (not JSON): those uploads answer 404; `recover` removes them now, expiry once their record is older than [tus] expiration';

  it('is named at start, answers 404, and recover removes it with its bytes', async () => {
    const first = await startServer();
    const { location, id } = await tusCreate(first, `${slotDir()}/cut-record.bin`, randomData(1000), { sent: 300 });
    await first.stop();
    const record = join(first.dataDir, 'tus', `${id}.json`);
    await writeFile(record, (await readFile(record, 'utf8')).slice(0, 20));

    const server = await startServer({ dataDir: first.dataDir });
    try {
      const warned = await server.waitForLog((l) => l.msg === UNREADABLE);
      assert.deepEqual([warned.count, warned.uploads], [1, [id]]);
      assert.equal((await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })).status, 404);
    } finally {
      await server.stop();
    }
    const env = { HFS_DATA_DIR: first.dataDir, HFS_CONFIG: '/dev/null' };
    const plan = await runCli(['recover', '--dry-run'], env);
    assert.equal(plan.code, 3, plan.stdout + plan.stderr);
    assert.match(plan.stdout, new RegExp(`corrupt_record +remove +tus/${id}\\.json +tus record is not readable \\(not JSON\\)`));
    const run = await runCli(['recover'], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(existsSync(record) || existsSync(join(first.dataDir, 'tus', id)), false, 'record and bytes removed');

    const again = await startServer({ dataDir: first.dataDir });
    try {
      await again.waitForLog((l) => l.msg === 'Server listening');
      assert.equal(again.logs.some((l) => l.msg === UNREADABLE), false);
    } finally {
      await again.stop();
      await rm(first.dataDir, { recursive: true, force: true });
    }
  });
});
