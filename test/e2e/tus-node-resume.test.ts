/**
 * Node tus-js-client with FileUrlStorage: the uploading process is killed (SIGKILL) mid-upload,
 * started again, finds its upload in the storage file and resumes from the server's offset. On
 * both storage backends (helpers/backends.ts).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { storageBackends } from '../helpers/backends.js';
import { REPO_ROOT, startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';

const FIXTURE = join(REPO_ROOT, 'dist/test/fixtures/tus-node-upload.js');
const MiB = 1024 * 1024;

type Event = { event: string; url?: string; accepted?: number; message?: string };

/** Runs the fixture; `until` picks the event to stop waiting at (the process keeps running). */
function runUploader(args: Record<string, unknown>) {
  const proc: ChildProcess = spawn(process.execPath, [FIXTURE, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Event[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const waiters: Array<{ pred: (e: Event) => boolean; resolve: (e: Event) => void; reject: (e: Error) => void }> = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const e = JSON.parse(line) as Event;
    events.push(e);
    for (const w of [...waiters]) {
      if (w.pred(e)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      for (const w of waiters.splice(0)) w.reject(new Error(`uploader exited (${code}) first; events ${JSON.stringify(events)}; ${stderr}`));
      resolve(code);
    }),
  );
  const waitFor = (pred: (e: Event) => boolean) => {
    const seen = events.find(pred);
    return seen ? Promise.resolve(seen) : new Promise<Event>((resolve, reject) => waiters.push({ pred, resolve, reject }));
  };
  return { proc, events, exited, waitFor };
}

for (const backend of storageBackends()) describe(`Node tus-js-client with FileUrlStorage across a killed process [${backend.name}]`, () => {
  let server: SpawnedServer;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-tus-node-'));
    server = await startServer({ config: `[server]\ngraceful_shutdown_timeout = "2s"\n${await backend.config()}` });
  });
  after(async () => {
    await server?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('SIGKILL mid-upload, start again: resumes from storage, not from zero', async () => {
    const data = randomData(48 * MiB + 5);
    const file = join(dir, 'big.bin');
    const storage = join(dir, 'tus-urls.json');
    await writeFile(file, data);
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/big.bin`, size: data.length, baseUrl: server.uploadUrl });
    const args = { file, endpoint: server.tusUrl, slot: slot.url, storage, chunkSize: 4 * MiB };

    const first = runUploader(args);
    assert.equal((await first.waitFor((e) => e.event !== 'url')).event, 'fresh');
    const url = (await first.waitFor((e) => e.event === 'url')).url!;
    await first.waitFor((e) => e.event === 'chunk'); // the first 4 MiB are stored
    first.proc.kill('SIGKILL');
    await first.exited;
    assert.ok(!first.events.some((e) => e.event === 'success'), 'killed before the end');
    assert.match(await readFile(storage, 'utf8'), new RegExp(url.split('/').pop()!), 'the upload URL is in the storage file');

    const head = await rawRequest(server.baseUrl, pathOf(url), { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    assert.equal(head.status, 200);
    const offsetAfterKill = Number(head.headers['upload-offset']);
    assert.ok(offsetAfterKill >= 4 * MiB && offsetAfterKill < data.length, `offset ${offsetAfterKill} after the kill`);

    const restartIndex = server.logs.length;
    const second = runUploader(args);
    const resumed = await second.waitFor((e) => e.event === 'resuming' || e.event === 'fresh');
    assert.deepEqual(resumed, { event: 'resuming', url }, 'found in FileUrlStorage');
    const done = await second.waitFor((e) => e.event === 'success' || e.event === 'error');
    assert.equal(done.event, 'success', done.message);
    assert.equal(await second.exited, 0);
    assert.equal(done.url, url, 'the same upload');

    // The server's view of the second run: no creation; HEAD first, then PATCHes from there.
    const uploadPath = pathOf(url);
    await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === uploadPath.split('/').pop());
    const requests = server.logs.slice(restartIndex).filter((l: LogLine) => l.msg === 'Request finished' && l.path === uploadPath);
    assert.equal(server.logs.slice(restartIndex).filter((l) => l.msg === 'Request finished' && l.method === 'POST').length, 0, 'no new upload');
    assert.equal(requests[0]?.method, 'HEAD');
    assert.equal(requests[0]?.status, 200);
    const patches = requests.filter((l) => l.method === 'PATCH');
    assert.ok(patches.length > 0 && patches.every((l) => l.status === 204));
    assert.ok(patches.length <= Math.ceil((data.length - offsetAfterKill) / (4 * MiB)), `${patches.length} PATCHes cover only the rest`);
    const resent = patches.reduce((n, l) => n + Number(l.bytesIn), 0);
    assert.ok(resent <= data.length - offsetAfterKill + 64 * 1024, `${resent} bytes sent after the restart`);

    assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
    assert.doesNotMatch(await readFile(storage, 'utf8'), /tus::/, 'forgotten after success');
  });
});
