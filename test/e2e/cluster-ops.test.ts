/**
 * `recover` and `verify` at one instance while the others run (issue 13.7), with real processes:
 * three instances on one redis-server and one shared directory. B dies between "upload finished"
 * and "job admitted" (crash hook), leaving a finished tus upload without a job; A and C keep
 * taking uploads. recover at A and at C at the same time re-admits B's upload once (one
 * publish), leaves in-flight uploads and other instances' staged bodies alone; verify only reads.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rawRequest, randomData, sha256, slotDir } from '../helpers/http.js';
import { ADMIN_TOKEN, getPublished, publishedJobs, putVia, slot, startCluster, tusVia, type TestCluster } from '../helpers/cluster.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { runCli, type SpawnedServer } from '../helpers/server.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('cluster mode: recover and verify while other instances run', () => {
  let redis: RedisServer;
  let cluster: TestCluster;

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster({
      size: 3,
      redisUrl: redis.url,
      config: '[limits]\nmax_bodies_per_client = 0\ncreations_per_minute_per_client = 0\n',
      envOf: (i) => (i === 1 ? { HFS_TEST_CRASH_AT: 'admit-before-insert' } : {}),
    });
  });
  after(async () => {
    await cluster?.dispose();
    await redis?.stop();
  });

  it('re-admits a dead instance\'s finished upload once, even from two instances at once; touches nothing in flight or of other instances', async () => {
    const [a, b, c] = cluster.servers as [SpawnedServer, SpawnedServer, SpawnedServer];
    const cli = async (server: SpawnedServer, args: string[]) => {
      const run = await runCli([...args, '--url', `${server.baseUrl}/admin`, '--token', ADMIN_TOKEN, '--json']);
      return { code: run.code, report: JSON.parse(run.stdout || '{}') as Json, stderr: run.stderr };
    };

    // Published files at A and C.
    const files = Array.from({ length: 6 }, (_, i) => ({ path: `${slotDir()}/f${i}.bin`, body: randomData(5_000 + i) }));
    for (const [i, f] of files.entries()) assert.equal((await (i % 2 ? tusVia : putVia)((i % 3 === 0 ? a : c).baseUrl, cluster.uploadUrl, f.path, f.body)).status, 201);

    // B dies right after its upload finished, before the job was admitted.
    const lost = { path: `${slotDir()}/lost.bin`, body: randomData(3_000) };
    const s = slot(cluster.uploadUrl, lost.path, lost.body.length);
    const created = await rawRequest(b.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': lost.body.length, 'Upload-Slot': s.url } });
    assert.equal(created.status, 201);
    const id = String(created.headers.location).split('/').pop()!;
    await rawRequest(b.baseUrl, `/files/${id}`, { method: 'PATCH', headers: { ...TUS, 'Upload-Offset': 0, 'Content-Type': 'application/offset+octet-stream' }, body: lost.body }).catch(() => null);
    assert.equal(await b.exited, null, 'B was killed by its crash hook');

    // An unfinished upload in flight at C, and staged PUT bodies nobody owns in A's and B's folders.
    const open = await rawRequest(c.baseUrl, '/files/', {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': 10_000, 'Upload-Slot': slot(cluster.uploadUrl, `${slotDir()}/open.bin`, 10_000).url, 'Content-Type': 'application/offset+octet-stream' },
      body: randomData(4_000),
    });
    assert.equal(open.status, 201);
    const openId = String(open.headers.location).split('/').pop()!;
    const hourAgo = new Date(Date.now() - 3_600_000);
    const staged = (instance: number) => join(cluster.dataDir, 'queue', 'staging', cluster.instanceId(instance), 'put-orphan');
    for (const i of [0, 1]) {
      await mkdir(join(staged(i), '..'), { recursive: true });
      await writeFile(staged(i), 'x');
      await utimes(staged(i), hourAgo, hourAgo);
    }

    // Fresh, the lost upload is left alone (it may be in flight somewhere): recover's 15-minute rule.
    const fresh = await cli(a, ['recover', '--dry-run']);
    assert.equal(fresh.report.items.some((i: Json) => i.target === `tus/${id}`), false, JSON.stringify(fresh.report.items));
    // An hour later (as if): both remaining instances run recover at the same time.
    for (const name of [id, `${id}.json`]) await utimes(join(cluster.dataDir, 'tus', name), hourAgo, hourAgo);
    const [atA, atC] = await Promise.all([cli(a, ['recover']), cli(c, ['recover'])]);
    assert.deepEqual([atA.code, atC.code], [0, 0], atA.stderr + atC.stderr);
    const readmits = [atA, atC].flatMap((r) => r.report.items.filter((i: Json) => i.kind === 'unqueued_upload' && i.target === `tus/${id}`));
    assert.ok(readmits.length >= 1 && readmits.length <= 2, `planned by one or both: ${JSON.stringify(readmits)}`);
    for (const r of [atA, atC]) {
      assert.equal(r.report.items.some((i: Json) => String(i.target).includes(openId)), false, 'the unfinished upload at C is not touched');
      assert.equal(r.report.items.some((i: Json) => String(i.target).includes(cluster.instanceId(1))), false, "B's staging folder is B's");
    }
    assert.equal(existsSync(staged(0)), false, "A's own orphaned staged body is removed by A's recover");
    assert.equal(existsSync(staged(1)), true, "B's is left for B (it may belong to a job in B's journal)");

    const got = await getPublished(a.baseUrl, s.getPath);
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), sha256(lost.body));
    await Promise.any([a, c].map((server) => server.waitForLog((l) => l.msg === 'File published' && l.jobId === `tus-${id}`, 30_000)));
    assert.equal(publishedJobs(cluster).get(`tus-${id}`), 1, 'published exactly once');

    // verify only reads: every published file checks out while C still holds an unfinished upload.
    const verified = await cli(c, ['verify']);
    assert.equal(verified.code, 0, verified.stderr);
    assert.equal(verified.report.checked, files.length + 1);
    assert.deepEqual(verified.report.problems, []);
    const head = await rawRequest(a.baseUrl, `/files/${openId}`, { method: 'HEAD', headers: TUS });
    assert.equal(head.headers['upload-offset'], '4000', 'the upload in flight is still there to resume');
  });
});
