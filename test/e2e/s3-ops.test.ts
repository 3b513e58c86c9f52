/**
 * The operator commands ONLINE on storage.backend = "s3" (issue 12.6): the CLI and the admin API
 * talking to a running server whose uploads, records and files live in a RadosGW bucket:
 * uploads list/show/expire, dlq list/replay/purge (purge removes the bytes from the bucket),
 * verify (a changed object is reported), recover (a finished upload that never reached the queue
 * is re-admitted and published). What the commands did is checked in the bucket itself.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@tus/utils';
import { signSlotUrl } from '../../src/index.js';
import { LEGACY_SLOT_KEY, LEGACY_TYPE_KEY } from '../../src/storage/index.js';
import { S3TusStore } from '../../src/storage/s3.js';
import { pathOf, randomData, rawRequest, slotDir } from '../helpers/http.js';
import { ADMIN_TOKEN, AUTH, ndjson, putFile, startWebhookReceiver, tusCreate, type WebhookReceiver } from '../helpers/ops.js';
import { startRgwForServers, type RgwForServers } from '../helpers/rgw-server.js';
import { runCli, startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const WRONG_SHA = 'cd'.repeat(32);

describe('operator commands online on S3 (RadosGW)', () => {
  let gw: RgwForServers;
  let server: SpawnedServer;
  let hook: WebhookReceiver;
  let bucket = '';
  let toml = '';
  const PREFIX = 'hfs/';
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli(args, { HFS_DATA_DIR: server.dataDir, HFS_ADMIN_TOKEN: ADMIN_TOKEN, HFS_CONFIG: join(server.dataDir, '..', `${server.dataDir.split('/').pop()}.toml`), ...env });
  const json = async (args: string[]) => {
    const res = await cli([...args, '--json']);
    assert.equal(res.code, 0, `${args.join(' ')}: ${res.stderr}`);
    return JSON.parse(res.stdout) as Json;
  };
  const admin = (method: string, path: string) => rawRequest(server.baseUrl, `/admin${path}`, { method, headers: AUTH });
  /** The server again on the same data directory and bucket, for a test that stops it (offline commands refuse a running server). */
  const restart = async () => {
    await server.stop();
    return startServer({ dataDir: server.dataDir, env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config: toml });
  };
  const deadLog = (jobId: string) => (l: LogLine) => l.jobId === jobId && /moved to dead letter queue$/.test(String(l.msg));
  /** Keys below `hfs/<under>` and the multipart uploads there. */
  const keys = async (under: string) => {
    const objects = (await gw.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${PREFIX}${under}` }))).Contents ?? [];
    const multipart = (await gw.client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${PREFIX}${under}` }))).Uploads ?? [];
    return [...objects.map((o) => o.Key!), ...multipart.map((u) => `multipart ${u.Key!}`)];
  };

  before(async () => {
    gw = await startRgwForServers();
    hook = await startWebhookReceiver();
    hook.answer = (e) => (e.path.includes('/fail-') ? 500 : 200);
    const s3 = await gw.serverConfig({
      extra: `[finalize]\nwebhook_url = "${hook.url}"\n[timeouts]\nmax_retry_attempts = 1\nretry_base_delay = "20d"\nretry_max_delay = "24d"\n[testing]\nskip_intake_checksum = true\n`,
    });
    bucket = s3.bucket;
    toml = s3.toml;
    server = await startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config: toml });
  });
  after(async () => {
    await server?.dispose();
    await hook?.close();
    await gw?.stop();
  });

  it('uploads list, show, expire: the unfinished upload is listed from the bucket, and expire removes its objects there', async () => {
    const path = `${slotDir()}/partial.bin`;
    const { id } = await tusCreate(server, path, randomData(1000), { sent: 300 });
    assert.ok((await keys(`uploads/${id}`)).length > 0, 'the upload lives in the bucket');
    const list = await cli(['uploads', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${id} +${path} +300 B +1000 B +30%`));
    const listed = await json(['uploads', 'list']);
    assert.equal(listed.mode, 'online');
    assert.deepEqual(listed.uploads.map((u: Json) => u.id), [id]);
    const shown = await json(['uploads', 'show', id]);
    assert.deepEqual([shown.offset, shown.size, shown.slotPath, shown.finished], [300, 1000, path, false]);
    assert.deepEqual((await json(['uploads', 'expire', '--older-than', '0s', '--dry-run'])).wouldExpire, [id]);
    assert.deepEqual(await json(['uploads', 'expire', id]), { expired: [id], failed: [] });
    assert.deepEqual(await keys(`uploads/${id}`), [], 'record, parts and multipart upload are gone from the bucket');
    const gone = await cli(['uploads', 'show', id]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, new RegExp(`No upload ${id}`));
    assert.equal((await rawRequest(server.baseUrl, `/files/${id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })).status, 404);
  });

  it('dlq list, replay, purge: the dead upload keeps its bytes in the bucket until purged', async () => {
    const bad = await tusCreate(server, `${slotDir()}/bad.bin`, Buffer.from('not what was declared'), { sha256: WRONG_SHA });
    const deadJob = `tus-${bad.id}`;
    await server.waitForLog(deadLog(deadJob));
    assert.ok((await keys(`uploads/${bad.id}`)).length > 0, 'a dead letter keeps its bytes');
    const list = await cli(['dlq', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${deadJob} .* ERR_CHECKSUM_MISMATCH`));
    const replay = await cli(['dlq', 'replay', deadJob]);
    assert.deepEqual([replay.code, replay.stdout.trim()], [0, 'replayed 1 dead letter(s)']);
    let seen = 0;
    await server.waitForLog((l) => deadLog(deadJob)(l) && ++seen === 2); // the bytes still do not match
    const purge = await cli(['dlq', 'purge', deadJob]);
    assert.equal(purge.code, 0, purge.stderr);
    assert.deepEqual((await json(['dlq', 'list'])).deadLetters, []);
    assert.deepEqual(await keys(`uploads/${bad.id}`), [], 'purge removed the bytes from the bucket');
    for (const args of [['dlq', 'replay', 'nope'], ['dlq', 'purge', 'nope']]) {
      const res = await cli(args);
      assert.equal(res.code, 1, args.join(' '));
      assert.match(res.stderr, /no dead letter nope/);
    }
    // The admin API lists a PUT job waiting for its backoff (its webhook failed).
    const put = await putFile(server, `${slotDir()}/fail-notify.txt`, 'waits for a webhook that fails');
    const putJob = `put-${put.headers['x-request-id']}`;
    await server.waitForLog((l) => l.jobId === putJob && l.msg === 'Finalization attempt failed, will retry');
    const jobs = JSON.parse((await admin('GET', '/queue/jobs?state=queued')).text) as Json;
    assert.ok(jobs.jobs.some((j: Json) => j.id === putJob), 'a job waiting for its backoff is listed');
  });

  it('verify: clean, then an object changed in the bucket is reported (CLI exit 3, admin API NDJSON)', async () => {
    const path = `${slotDir()}/kept.txt`;
    const body = Buffer.from('the original bytes');
    const ok = await putFile(server, path, body);
    await server.waitForLog((l) => l.msg === 'File published' && l.jobId === `put-${ok.headers['x-request-id']}`);
    const clean = await cli(['verify']);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    assert.match(clean.stdout, /checked \d+ file\(s\), .*: 0 problem\(s\)/);

    // Same size, same record (metadata), other bytes.
    const key = `${PREFIX}files/${path}`;
    const head = await gw.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    await gw.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from('THE original bytes'), ContentType: head.ContentType, Metadata: head.Metadata }));
    const corrupt = await cli(['verify', '--json']);
    assert.equal(corrupt.code, 3, corrupt.stderr);
    assert.deepEqual(JSON.parse(corrupt.stdout).problems.map((p: Json) => [p.slotPath, p.kind]), [[path, 'corrupt']]);
    const lines = ndjson(await admin('POST', '/verify'));
    assert.ok(lines.slice(0, -1).every((l) => 'progress' in l));
    assert.deepEqual((lines.at(-1)!.result as Json).problems.map((p: Json) => [p.slotPath, p.kind]), [[path, 'corrupt']]);
    // Put the bytes back for the tests after this one.
    await gw.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: head.ContentType, Metadata: head.Metadata }));
  });

  it('recover: nothing on a healthy server; a finished upload that never reached the queue is re-admitted and published', async () => {
    const nothing = await cli(['recover', '--dry-run']);
    assert.deepEqual([nothing.code, nothing.stdout.trim()], [0, 'nothing to recover (the server runs: files touched in the last 15 minutes are left for a later run)'], nothing.stderr);

    // A crash between the last PATCH and admission leaves this: finished in the bucket, no job.
    const { settings } = s3SettingsOf(gw, bucket, PREFIX);
    const store = new S3TusStore({ settings, expirationMs: 0 });
    const id = `r${Date.now().toString(36)}`;
    const slotPath = `${slotDir()}/recovered.bin`;
    const body = randomData(40_000);
    await store.datastore.create(new Upload({ id, offset: 0, size: body.length, metadata: { [LEGACY_SLOT_KEY]: slotPath, [LEGACY_TYPE_KEY]: 'application/octet-stream' } }));
    await store.datastore.write(Readable.from([body]), id, 0);
    await store.markFinished(id);
    store.s3.destroy();

    const plan = await cli(['recover', '--dry-run', '--json']);
    assert.equal(plan.code, 3, `a plan is a finding: ${plan.stderr}`);
    assert.deepEqual(
      (JSON.parse(plan.stdout).items as Json[]).map((i) => [i.kind, i.action, i.target]),
      [['unqueued_upload', 'readmit', `uploads/${id}`]],
    );
    const run = ndjson(await admin('POST', '/recover')).at(-1)!.result as Json;
    assert.deepEqual([run.failed, run.items.map((i: Json) => i.result)], [0, ['done']]);
    await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === id);
    const slot = signSlotUrl({ secret: TEST_SECRET, path: slotPath, size: body.length, baseUrl: server.uploadUrl });
    const got = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
    assert.equal(got.status, 200);
    assert.equal(sha(got.body), sha(body));
    const stored = await gw.client.send(new GetObjectCommand({ Bucket: bucket, Key: `${PREFIX}files/${slotPath}` }));
    assert.equal(sha(Buffer.from(await stored.Body!.transformToByteArray())), sha(body), 'published in the bucket');
    assert.deepEqual([(await cli(['recover', '--dry-run'])).stdout.trim()], ['nothing to recover (the server runs: files touched in the last 15 minutes are left for a later run)']);
  });

  it('recover: a completed PUT body left below incoming/ by a crash before admission is removed (offline; online leaves recent ones)', async () => {
    // What a kill -9 right after the body's last part leaves: the object, no job, no 201 sent.
    const orphan = `${PREFIX}incoming/${'0b1e5f2a-7c3d-4e8f-9a0b-1c2d3e4f5a6b'}-0123456789ab`;
    await gw.client.send(new PutObjectCommand({ Bucket: bucket, Key: orphan, Body: randomData(10_000) }));
    const online = await cli(['recover', '--dry-run']);
    assert.deepEqual([online.code, online.stdout.trim()], [0, 'nothing to recover (the server runs: files touched in the last 15 minutes are left for a later run)'], 'a body this recent may be in flight');
    assert.equal(await server.stop(), 0);
    const plan = await cli(['recover', '--dry-run', '--json']);
    assert.equal(plan.code, 3, plan.stderr);
    assert.deepEqual(
      (JSON.parse(plan.stdout).items as Json[]).map((i) => [i.kind, i.action, i.target]),
      [['orphan_file', 'remove', orphan.slice(PREFIX.length)]],
    );
    const run = await cli(['recover', '--json']);
    assert.equal(JSON.parse(run.stdout).failed, 0, run.stdout + run.stderr);
    assert.deepEqual(await keys('incoming/'), [], 'removed from the bucket');
  });

  it('uploads list offline shows the slot path the admin API showed (the record\'s server state is read offline too)', async () => {
    const again = await restart();
    const path = `${slotDir()}/listed offline.bin`;
    let id: string;
    try {
      id = (await tusCreate(again, path, randomData(1000), { sent: 100 })).id;
      const online = JSON.parse((await rawRequest(again.baseUrl, `/admin/uploads/${id}`, { headers: AUTH })).text) as Json;
      assert.equal(online.slotPath, path);
    } finally {
      await again.stop();
    }
    const listed = await json(['uploads', 'list', '--offline']);
    assert.equal(listed.mode, 'offline');
    assert.deepEqual(listed.uploads.filter((u: Json) => u.id === id).map((u: Json) => [u.slotPath, u.offset, u.size]), [[path, 100, 1000]]);
    const shown = await json(['uploads', 'show', id, '--offline']);
    assert.equal(shown.slotPath, path);
  });

  it('verify reports a published object deleted from the bucket by hand (admin API, CLI online and offline); recover releases its claim (a new upload there: ops-s3.test.ts)', async () => {
    const running = await restart();
    const path = `${slotDir()}/deleted by hand.txt`;
    try {
      const put = await putFile(running, path, Buffer.from('soon gone'));
      await running.waitForLog((l) => l.msg === 'File published' && l.jobId === `put-${put.headers['x-request-id']}`);
      await gw.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${PREFIX}files/${path}` }));
      assert.deepEqual(await keys(`claims/${path}`), [`${PREFIX}claims/${path}`], 'only its claim is left');

      const lines = ndjson(await rawRequest(running.baseUrl, '/admin/verify', { method: 'POST', headers: AUTH }));
      const missing = ((lines.at(-1)!.result as Json).problems as Json[]).filter((p) => p.slotPath === path);
      assert.deepEqual(missing.map((p) => p.kind), ['missing'], 'reported as the file backend reports a missing file');
      assert.match(missing[0]!.detail, /recover releases it/);
      const online = await cli(['verify', '--json']);
      assert.equal(online.code, 3, online.stderr);
      assert.deepEqual((JSON.parse(online.stdout).problems as Json[]).map((p) => [p.slotPath, p.kind]), [[path, 'missing']]);
      // Online recover leaves a claim this recent alone (it may be a publish in flight).
      assert.equal((await cli(['recover', '--dry-run'])).code, 0);
    } finally {
      await running.stop();
    }

    const offline = await cli(['verify', '--json', '--offline']);
    assert.equal(offline.code, 3, offline.stderr);
    assert.deepEqual((JSON.parse(offline.stdout).problems as Json[]).map((p) => [p.slotPath, p.kind]), [[path, 'missing']]);
    const run = await cli(['recover', '--json', '--offline']);
    const items = (JSON.parse(run.stdout).items as Json[]).filter((i) => i.target === `claims/${path}`);
    assert.deepEqual(items.map((i) => [i.kind, i.action, i.result]), [['stale_metadata', 'remove', 'done']], run.stdout + run.stderr);
    assert.deepEqual(await keys(`claims/${path}`), [], 'the claim is released');
    assert.equal((await cli(['verify', '--offline'])).code, 0, 'nothing left to report');
  });
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function s3SettingsOf(gw: RgwForServers, bucket: string, keyPrefix: string) {
  return {
    settings: {
      bucket,
      region: gw.rgw.region,
      endpoint: gw.rgw.endpoint,
      forcePathStyle: true,
      accessKeyId: gw.rgw.accessKeyId,
      secretAccessKey: gw.rgw.secretAccessKey,
      keyPrefix,
      partBytes: 5 * 1024 * 1024,
    },
  };
}
