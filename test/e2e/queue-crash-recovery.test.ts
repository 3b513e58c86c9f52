/**
 * Exactly-once publish under crashes. The built server is killed with SIGKILL at a named point
 * of admission or of the finalization pipeline (test-only HFS_TEST_CRASH_AT), then restarted on
 * the same data dir. After recovery, every completed upload is published exactly once with its
 * own bytes (one file at its slot, one content-store entry, no stray copies, nothing left in
 * staging), the dead letter from before the crash is still there, and clients see what a client
 * would: a PUT retried after a lost response gets 201 or 409, a tus HEAD reports the upload
 * finished. The webhook is delivered at least once, with a stable delivery id.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, sha256, slotDir, type RawResponse } from '../helpers/http.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const b64 = (s: string) => Buffer.from(s).toString('base64');

type Protocol = 'put' | 'tus';
/** Crash points (FinalizeStep) and the protocol of the upload that runs into each. */
const CASES: [point: string, protocol: Protocol][] = [
  ['admit-before-insert', 'put'],
  ['admit-before-insert', 'tus'],
  ['admit-after-insert', 'put'],
  ['admit-after-insert', 'tus'],
  ['start', 'tus'],
  ['hashed', 'put'],
  ['content-stored', 'tus'],
  ['record-written', 'put'],
  ['linked', 'tus'],
  ['published', 'put'],
  ['notified', 'tus'],
];

describe('kill -9 at any point of finalization, then restart: every upload published exactly once', () => {
  let baseDir = '';
  let workRoot = '';
  let hook: Server;
  let hookUrl = '';
  const deliveries: { id: string; path: string }[] = [];
  // skip_intake_checksum: the dead letter below comes from a declared sha256 that finalization finds wrong.
  const config = () => `[logging]\nlevel = "debug"\n[finalize]\nwebhook_url = "${hookUrl}"\nwebhook_secret = "s3cret"\n[testing]\nskip_intake_checksum = true\n`;

  const slotFor = (server: SpawnedServer, path: string, size: number) => signSlotUrl({ secret: TEST_SECRET, path, baseUrl: server.uploadUrl, size });

  before(async () => {
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        deliveries.push({ id: String(req.headers['x-hfs-delivery']), path: (JSON.parse(body) as { path: string }).path });
        res.end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
    workRoot = await mkdtemp(join(tmpdir(), 'hfs-crash-'));
    baseDir = join(workRoot, 'base');
    // The state every crash starts from: one published file and one dead letter (a tus upload
    // whose declared sha256 does not match its bytes).
    const server = await startServer({ dataDir: baseDir, config: config() });
    try {
      const kept = randomData(1000);
      const keptSlot = slotFor(server, 'kept/kept.bin', kept.length);
      assert.equal((await rawRequest(server.baseUrl, pathOf(keptSlot.url), { method: 'PUT', body: kept })).status, 201);
      const created = await rawRequest(server.baseUrl, '/files/', {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': '5', 'Upload-Slot': slotFor(server, 'dead/dead.bin', 5).url, 'Upload-Metadata': `sha256 ${b64('0'.repeat(64))}`, 'Content-Type': 'application/offset+octet-stream' },
        body: 'wrong',
      });
      assert.equal(created.status, 201, created.text);
      await server.waitForLog((l) => l.msg === 'Upload failed permanently, moved to dead letter queue');
      await server.waitForLog((l) => l.msg === 'Finalization job done');
    } finally {
      await server.dispose();
    }
  });

  after(async () => {
    await new Promise<void>((r) => hook.close(() => r()));
    if (workRoot) await rm(workRoot, { recursive: true, force: true });
  });

  for (const [point, protocol] of CASES) {
    it(`${protocol} upload, killed at ${point}`, async () => {
      const dataDir = join(workRoot, `${point}-${protocol}`);
      // cp -a keeps hard links (fs.cp would turn the content-store links into copies).
      await promisify(execFile)('cp', ['-a', baseDir, dataDir]);
      const data = randomData(protocol === 'put' ? 300_000 : 200_000);
      const path = `${slotDir()}/${point}.bin`;
      let location = '';

      // Run 1: armed. The upload runs into the crash point and the process dies with SIGKILL.
      const armed = await startServer({ dataDir, config: config(), env: { HFS_TEST_CRASH_AT: point } });
      const died = new Promise<NodeJS.Signals | null>((resolve) => armed.proc.once('exit', (_code, signal) => resolve(signal)));
      try {
        const slot = slotFor(armed, path, data.length);
        if (protocol === 'put') {
          await rawRequest(armed.baseUrl, pathOf(slot.url), { method: 'PUT', body: data }).catch((e: Error) => e);
        } else {
          const created = await rawRequest(armed.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': String(data.length), 'Upload-Slot': slot.url } });
          assert.equal(created.status, 201);
          location = pathOf(String(created.headers.location));
          await rawRequest(armed.baseUrl, location, {
            method: 'PATCH',
            headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
            body: data,
          }).catch((e: Error) => e);
        }
        assert.equal(await died, 'SIGKILL', `the server died at ${point}`);
      } finally {
        await armed.dispose();
      }
      const firstRun = armed.logs;

      // Run 2: plain restart on the same data dir.
      const server = await startServer({ dataDir, config: config() });
      try {
        await server.waitForLog((l) => String(l.msg).startsWith('Queue recovery completed'));
        const slot = slotFor(server, path, data.length);
        if (protocol === 'put') {
          // The client never got its answer and sends the PUT again. Before admission nothing was
          // kept: the retry is the upload. After it, the upload is published by the restarted
          // server (the GET waits for it), and the retry of the same bytes gets its 201 again.
          if (point !== 'admit-before-insert') assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).status, 200);
          const retry = await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body: data });
          assert.equal(retry.status, 201, `retried PUT after a crash at ${point}: ${retry.text}`);
          const other = await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body: randomData(data.length) });
          assert.equal(other.status, 409, 'other bytes for the published slot');
        } else {
          // tus-js-client resumes with HEAD: the upload is finished, nothing to send again.
          const head = await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: TUS });
          assert.equal(head.status, 200);
          assert.equal(head.headers['upload-offset'], String(data.length));
        }
        const get: RawResponse = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
        assert.equal(get.status, 200);
        assert.equal(sha256(get.body), sha256(data), 'its own bytes');
        const jobDone = await server.waitForLog((l) => l.msg === 'Finalization job done' && String(l.jobId).startsWith(`${protocol}-`));
        const jobId = String(jobDone.jobId);

        // Exactly once on disk: each published file is one hard link of one content-store entry.
        const files = await listFiles(join(dataDir, 'files'));
        assert.deepEqual(files.sort(), [path, 'kept/kept.bin'].sort());
        for (const f of files) assert.equal((await stat(join(dataDir, 'files', f))).nlink, 2, `${f}: slot + content store, no copy`);
        const cas = await listFiles(join(dataDir, 'cas'));
        assert.equal(cas.length, 2, 'one content-store entry per distinct content');
        assert.deepEqual(await readdir(join(dataDir, 'queue', 'staging')), [], 'no staged body left');
        assert.deepEqual(await readdir(join(dataDir, 'incoming')), [], 'no temp file left');
        const publishedLogs = [...firstRun, ...server.logs].filter((l) => l.msg === 'File published' && l.jobId === jobId);
        assert.ok(publishedLogs.length <= 1, 'never published twice');

        // Dead letters survive the crash.
        const metricsText = (await rawRequest(server.baseUrl, '/metrics')).text;
        assert.match(metricsText, /^hmac_dead_letter_queue_length 1$/m);

        // The webhook: at least once, with one delivery id per job (a crash after the receiver
        // answered, before the job was marked done, delivers it again).
        await server.waitForLog((l) => l.msg === 'Finalization job done' && l.jobId === jobId);
        const mine = deliveries.filter((d) => d.id === jobId);
        assert.ok(mine.length >= 1 && mine.every((d) => d.path === path));
        assert.equal(mine.length, point === 'notified' ? 2 : 1, 'redelivered only when the crash followed the delivery');
      } finally {
        await server.dispose();
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  }
});

async function listFiles(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(root, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(root, rel)));
    else out.push(rel);
  }
  return out;
}
