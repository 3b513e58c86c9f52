/**
 * Incident drill (issue 5, item 7): the notification webhook breaks, every upload of the
 * incident ends up in the dead letter queue; the webhook is fixed, an operator replays the dead
 * letters with the CLI; every file is then published exactly once, notified exactly once with
 * success, and nothing is left behind.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { randomData, rawRequest, slotDir } from '../helpers/http.js';
import { ADMIN_TOKEN, putFile, startWebhookReceiver, tusCreate, type WebhookReceiver } from '../helpers/ops.js';
import { runCli, startServer, type LogLine, type SpawnedServer } from '../helpers/server.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let server: SpawnedServer;
let hook: WebhookReceiver;
before(async () => {
  hook = await startWebhookReceiver();
  hook.answer = () => 500; // the incident: the receiver is down
  // One retry, quickly; fewer failures than the breaker's threshold (10), so every job is tried.
  server = await startServer({
    env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN },
    config: `[logging]\nlevel = "debug"\n[finalize]\nwebhook_url = "${hook.url}"\n[timeouts]\nmax_retry_attempts = 1\nretry_base_delay = "10ms"\nretry_max_delay = "20ms"\n`,
  });
});
after(async () => {
  await server?.dispose();
  await hook?.close();
});

it('dead letters from a broken webhook, fixed, replayed with the CLI: each file published and notified once', async () => {
  const cli = (args: string[]) => runCli(args, { HFS_DATA_DIR: server.dataDir, HFS_ADMIN_TOKEN: ADMIN_TOKEN, HFS_CONFIG: '/dev/null' });
  const files = new Map<string, { path: string; body: Buffer }>(); // job id -> upload
  for (let i = 0; i < 2; i++) {
    const path = `${slotDir()}/put-${i}.bin`;
    const body = randomData(1000 + i);
    const res = await putFile(server, path, body);
    assert.equal(res.status, 201);
    files.set(`put-${res.headers['x-request-id']}`, { path, body });
  }
  for (let i = 0; i < 2; i++) {
    const path = `${slotDir()}/tus-${i}.bin`;
    const body = randomData(3000 + i);
    const { id } = await tusCreate(server, path, body);
    files.set(`tus-${id}`, { path, body });
  }
  const jobIds = [...files.keys()];
  for (const id of jobIds) await server.waitForLog((l: LogLine) => l.jobId === id && l.msg === 'Upload failed after 1 retries, moved to dead letter queue');

  // What the operator sees during the incident.
  const listed = await cli(['dlq', 'list', '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const dead = JSON.parse(listed.stdout).deadLetters as Json[];
  assert.deepEqual(dead.map((d) => d.id).sort(), [...jobIds].sort());
  assert.ok(dead.every((d) => d.errors.length === 2 && d.errors.every((e: Json) => e.code === 'ERR_WEBHOOK_FAILED')));
  const status = JSON.parse((await cli(['queue', 'status', '--json'])).stdout) as Json;
  assert.equal(status.deadLetters, jobIds.length);

  // The fix, then the replay.
  hook.answer = () => 200;
  const replay = await cli(['dlq', 'replay', '--all']);
  assert.deepEqual([replay.code, replay.stdout.trim()], [0, `replayed ${jobIds.length} dead letter(s)`]);
  for (const id of jobIds) await server.waitForLog((l) => l.jobId === id && l.msg === 'Finalization job done');

  for (const [id, { path, body }] of files) {
    assert.equal(hook.deliveries.filter((d) => d.id === id && d.status === 200).length, 1, `${id}: one successful notification`);
    assert.equal(hook.deliveries.filter((d) => d.id === id).length, 3, `${id}: two failed attempts, then the replayed one`);
    assert.equal(server.logs.filter((l) => l.jobId === id && l.msg === 'File published').length, 1, `${id}: published once`);
    const got = await rawRequest(server.baseUrl, `/upload/${path}`);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(body), `${path}: its own bytes`);
  }
  const after = JSON.parse((await cli(['queue', 'status', '--json'])).stdout) as Json;
  assert.equal(after.deadLetters, 0);
  assert.deepEqual(after.problems, []);
  assert.deepEqual(JSON.parse((await cli(['dlq', 'list', '--json'])).stdout).deadLetters, []);
  assert.deepEqual(await readdir(join(server.dataDir, 'queue', 'staging')), [], 'no staged bodies left');
  const tusLeft = (await readdir(join(server.dataDir, 'tus'))).filter((n) => !n.endsWith('.json'));
  assert.deepEqual(tusLeft, [], 'no tus bytes left (records stay for resuming clients)');
  const verify = await cli(['verify']);
  assert.equal(verify.code, 0, verify.stdout);
  assert.match(verify.stdout, new RegExp(`checked ${files.size} file\\(s\\)`));
});
