/**
 * Stock tus clients against the spawned server, driven the way an app does (the slot URL in the
 * `Upload-Slot` header of every request): tus-js-client 4 in Node (exact metadata, GET on the
 * upload URL, abort(true), parallelUploads with a part cut and resumed, Upload-Checksum), and
 * Debian's python3-tuspy (checksummed chunks, killed mid-upload, resumed from its URL storage).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { signSlotUrl } from '../../src/index.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';
import { startService } from '../helpers/service.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const KiB = 1024;
const MiB = 1024 * KiB;

function tusUpload(data: Buffer, options: tus.UploadOptions): { upload: tus.Upload; done: Promise<tus.Upload> } {
  let upload!: tus.Upload;
  const done = new Promise<tus.Upload>((resolve, reject) => {
    upload = new tus.Upload(data, { retryDelays: [0, 200, 500, 1000], ...options, onSuccess: () => resolve(upload), onError: reject });
  });
  upload.start();
  return { upload, done };
}

const decodeMetadata = (header: string | string[] | undefined) =>
  Object.fromEntries(String(header).split(',').map((pair) => {
    const [k, v] = pair.split(' ');
    return [k, v ? Buffer.from(v, 'base64').toString('utf8') : ''];
  }));

describe('stock tus clients', () => {
  let server: SpawnedServer;
  let work: string;
  const slotFor = (name: string, size: number) => signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/${name}`, baseUrl: server.uploadUrl, size });
  const requests = (pred: (l: LogLine) => boolean) => server.logs.filter((l) => l.msg === 'Request finished' && pred(l));

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'hfs-tus-clients-'));
    server = await startServer({ config: '[tus]\nlock_drain_timeout = "1s"\n' });
  });
  after(async () => {
    await server?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  describe('tus-js-client 4', () => {
    it('HEAD answers the four metadata pairs it sent (non-Latin, empty); GET on the upload URL, whole and Range', async () => {
      const data = randomData(1 * MiB + 3);
      const slot = slotFor('report.pdf', data.length);
      const metadata = { filename: 'Годовой отчёт 2026 — 年度報告.pdf', filetype: 'application/pdf', empty: '', 'app-ref': 'ticket 42' };
      const { done } = tusUpload(data, { endpoint: server.tusUrl, headers: { 'Upload-Slot': slot.url }, metadata, chunkSize: 256 * KiB });
      const upload = await done;
      const url = pathOf(upload.url!);
      const head = await rawRequest(server.baseUrl, url, { method: 'HEAD', headers: TUS });
      assert.deepEqual(decodeMetadata(head.headers['upload-metadata']), metadata);
      const whole = await rawRequest(server.baseUrl, url);
      assert.equal(whole.status, 200);
      assert.equal(sha256(whole.body), sha256(data));
      const range = await rawRequest(server.baseUrl, url, { headers: { Range: 'bytes=-1000' } });
      assert.equal(range.status, 206);
      assert.ok(range.body.equals(data.subarray(data.length - 1000)));
    });

    it('abort(true) on an unfinished upload terminates it; on a finished one deletes the file (slot GET 410)', async () => {
      const data = randomData(2 * MiB);
      const slot = slotFor('aborted.bin', data.length);
      let chunkDone!: () => void;
      const chunked = new Promise<void>((resolve) => (chunkDone = resolve));
      const { upload, done } = tusUpload(data, { endpoint: server.tusUrl, headers: { 'Upload-Slot': slot.url }, chunkSize: 128 * KiB, onChunkComplete: () => chunkDone() });
      done.catch(() => {}); // aborted: never settles with success
      await chunked;
      const url = pathOf(upload.url!);
      await upload.abort(true); // resolves once the DELETE answered 204
      assert.equal((await rawRequest(server.baseUrl, url, { method: 'HEAD', headers: TUS })).status, 404);
      assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).status, 404, 'nothing published');

      const small = randomData(50 * KiB);
      const slot2 = slotFor('finished.bin', small.length);
      const finished = await tusUpload(small, { endpoint: server.tusUrl, headers: { 'Upload-Slot': slot2.url } }).done;
      assert.equal((await rawRequest(server.baseUrl, pathOf(slot2.getUrl))).status, 200);
      await finished.abort(true);
      assert.equal((await rawRequest(server.baseUrl, pathOf(slot2.getUrl))).status, 410);
      assert.equal((await rawRequest(server.baseUrl, pathOf(finished.url!), { method: 'HEAD', headers: TUS })).status, 404);
    });

    for (const parts of [2, 4]) {
      it(`parallelUploads ${parts}: byte-identical file at the slot`, async () => {
        const data = randomData(3 * MiB + 7);
        const slot = slotFor(`parallel-${parts}.bin`, data.length);
        const upload = await tusUpload(data, {
          endpoint: server.tusUrl,
          headers: { 'Upload-Slot': slot.url, 'Upload-Slot-Length': String(data.length) },
          metadata: { filename: `parallel-${parts}.bin` },
          parallelUploads: parts,
        }).done;
        const get = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
        assert.equal(sha256(get.body), sha256(data));
        const head = await rawRequest(server.baseUrl, pathOf(upload.url!), { method: 'HEAD', headers: TUS });
        assert.equal(head.headers['upload-offset'], String(data.length));
        assert.equal(String(head.headers['upload-concat']).split(' ').length, parts);
        assert.equal(requests((l) => l.method === 'POST' && l.status === 201).length >= parts + 1, true);
      });
    }

    it('parallelUploads 2 through a cut connection: the cut part resumes from its offset', async () => {
      const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port) }).start();
      try {
        const data = randomData(4 * MiB);
        const slot = slotFor('cut-parallel.bin', data.length);
        const since = server.logs.length;
        proxy.cutAfter(1 * MiB);
        await tusUpload(data, {
          endpoint: `${proxy.url}/files/`,
          headers: { 'Upload-Slot': slot.url, 'Upload-Slot-Length': String(data.length) },
          parallelUploads: 2,
          chunkSize: 512 * KiB,
        }).done;
        assert.ok(proxy.connections.some((c) => c.killed), 'a connection was cut mid-upload');
        assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
        const mine = server.logs.slice(since).filter((l) => l.msg === 'Request finished');
        const resumed = mine.filter((l) => l.method === 'HEAD' && l.status === 200);
        assert.ok(resumed.length >= 1, 'the cut part asked for its offset');
        const sent = mine.filter((l) => l.method === 'PATCH').reduce((n, l) => n + Number(l.bytesIn), 0);
        assert.ok(sent < data.length + 600 * KiB, `${sent} bytes sent for ${data.length}: resumed, not restarted`);
        assert.equal(mine.filter((l) => l.method === 'POST').length, 3, 'two partials and one final: no part created again');
      } finally {
        await proxy.close();
      }
    });

    it('a wrong Upload-Checksum fails with 460 and the offset stays; the right one completes the upload', async () => {
      const data = randomData(300 * KiB);
      const slot = slotFor('checked.bin', data.length);
      const checksum = (bytes: Buffer | string) => `sha1 ${createHashB64('sha1', bytes)}`;
      const wrong = tusUpload(data, {
        endpoint: server.tusUrl,
        headers: { 'Upload-Slot': slot.url },
        onBeforeRequest: (req) => {
          if (req.getMethod() === 'PATCH') req.setHeader('Upload-Checksum', checksum('not these bytes'));
        },
      });
      const err = await wrong.done.then(() => assert.fail('a wrong checksum must fail'), (e: tus.DetailedError) => e);
      assert.equal(err.originalResponse?.getStatus(), 460);
      const url = wrong.upload.url!;
      assert.equal((await rawRequest(server.baseUrl, pathOf(url), { method: 'HEAD', headers: TUS })).headers['upload-offset'], '0');
      const right = await tusUpload(data, {
        endpoint: server.tusUrl,
        uploadUrl: url,
        headers: { 'Upload-Slot': slot.url },
        onBeforeRequest: (req) => {
          if (req.getMethod() === 'PATCH') req.setHeader('Upload-Checksum', checksum(data));
        },
        onAfterResponse: (req, res) => {
          if (req.getMethod() === 'PATCH') assert.equal(res.getStatus(), 204);
        },
      }).done;
      assert.equal(right.url, url, 'the same upload, resumed');
      assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
    });
  });

  describe('python3-tuspy', () => {
    // Debian's python3 (the tuspy package installs for it); checksummed chunks (sha1).
    const SCRIPT = `
import json, sys
import tusclient
from tusclient import client
from tusclient.storage import filestorage
a = json.loads(sys.argv[1])
storage = filestorage.FileStorage(a['storage'])
c = client.TusClient(a['endpoint'], headers={'Upload-Slot': a['slot']})
u = c.uploader(file_path=a['file'], chunk_size=a['chunk'], metadata={'filename': a['name']} if a.get('name') else None, store_url=True, url_storage=storage, upload_checksum=True)
print(json.dumps({'event': 'start', 'url': u.url, 'offset': u.offset}), flush=True)
u.stop_at = u.get_file_size()
while u.offset < u.stop_at:
    u.upload_chunk()
    print(json.dumps({'event': 'chunk', 'url': u.url, 'offset': u.offset}), flush=True)
print(json.dumps({'event': 'done', 'url': u.url}), flush=True)
`;
    const tuspy = (args: Record<string, unknown>) =>
      startService({ cmd: '/usr/bin/python3', args: ['-c', SCRIPT, JSON.stringify(args)], pkg: 'python3-tuspy', ready: /"event": "start"/ });

    it('uploads a non-Latin file name, is killed mid-upload, resumes from its URL storage', async () => {
      const data = randomData(3 * MiB + 11);
      const name = 'Фото с отпуска 🌅 夏.bin';
      const file = join(work, name);
      await writeFile(file, data);
      const slot = slotFor(name, data.length);
      const since = server.logs.length;
      const args = { endpoint: server.tusUrl, slot: slot.url, file, name, storage: join(work, 'tuspy-urls.json'), chunk: 256 * KiB };

      const first = await tuspy(args);
      const chunk = JSON.parse(await first.waitForOutput(/"event": "chunk"/)) as { url: string; offset: number };
      first.proc.kill('SIGKILL');
      await first.exited;
      assert.match(await readFile(args.storage, 'utf8'), new RegExp(chunk.url.split('/').pop()!), 'the URL is in tuspy\u2019s storage');

      const second = await tuspy(args);
      const start = JSON.parse(await second.waitForOutput(/"event": "start"/)) as { url: string; offset: number };
      assert.equal(start.url, chunk.url, 'found in the URL storage');
      assert.ok(start.offset >= chunk.offset && start.offset < data.length, `resumes at ${start.offset}`);
      await second.waitForOutput(/"event": "done"/, 60_000);
      assert.equal(await second.exited, 0);

      const url = pathOf(start.url);
      const head = await rawRequest(server.baseUrl, url, { method: 'HEAD', headers: TUS });
      assert.deepEqual(decodeMetadata(head.headers['upload-metadata']), { filename: name });
      assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
      const patches = requests((l) => l.method === 'PATCH' && l.path === url);
      // The SIGKILL may cut one PATCH mid-chunk (that chunk is discarded unverified); every other
      // checksummed chunk verified, and none was refused as corrupt.
      assert.ok(patches.length > 0, 'PATCHes were logged');
      assert.ok(patches.every((l) => l.status !== 460), 'no chunk failed its checksum');
      assert.ok(patches.filter((l) => l.status !== 204).length <= 1, `at most the cut PATCH failed: ${patches.map((l) => l.status).join(',')}`);
      const creations = server.logs.slice(since).filter((l) => l.msg === 'Request finished' && l.method === 'POST');
      assert.equal(creations.length, 1, 'the second run created nothing: it resumed');
    });

    it('uploads without metadata (tuspy then sends an empty Upload-Metadata header)', async () => {
      const data = randomData(300 * KiB);
      const file = join(work, 'no-metadata.bin');
      await writeFile(file, data);
      const slot = slotFor('no-metadata.bin', data.length);
      const run = await tuspy({ endpoint: server.tusUrl, slot: slot.url, file, storage: join(work, 'tuspy-urls-2.json'), chunk: 128 * KiB });
      await run.waitForOutput(/"event": "done"/, 60_000);
      assert.equal(await run.exited, 0);
      assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
    });
  });
});

function createHashB64(alg: string, data: Buffer | string): string {
  return createHash(alg).update(data).digest('base64');
}
