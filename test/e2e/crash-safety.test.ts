/**
 * kill -9 during 20 concurrent uploads (10 tus, 10 PUT), then restart on the same data dir:
 * every tus upload resumes from a non-zero stored offset and completes byte-identically; no
 * interrupted PUT is ever published, and its slot still accepts the file afterwards. On both
 * backends (helpers/backends.ts); on S3 bytes become durable a part (5 MiB) at a time, so the
 * files are larger there, and fewer (RadosGW keeps every object in memory). On S3 the parts
 * being received are staged in the server's own folder (s3-parts/ of the data directory, not
 * /tmp): the kill leaves files there, and the restart removes them.
 */
import assert from 'node:assert/strict';
import { appendFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { storageBackends } from '../helpers/backends.js';
import { startServer, TEST_SECRET } from '../helpers/server.js';

const TUS = { 'Tus-Resumable': '1.0.0' };

/** Polls a condition on the filesystem until it holds (bounded by the test timeout). */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 50));
}

for (const backend of storageBackends()) it(`kill -9 mid-upload, restart: tus uploads resume from their stored offsets, no PUT is published [${backend.name}]`, { timeout: 120_000 }, async () => {
  const onS3 = backend.name === 's3';
  const SIZE = onS3 ? 12 * 1024 * 1024 : 2 * 1024 * 1024;
  const COUNT = onS3 ? 5 : 10;
  const config = await backend.config();
  const server = await startServer({ config });
  const proxy = await new FaultProxy({ upstreamPort: Number(new URL(server.baseUrl).port) }).start();
  try {
    proxy.throttle(onS3 ? 2 * 1024 * 1024 : 256 * 1024); // per connection
    const tusUploads = await Promise.all(
      Array.from({ length: COUNT }, async () => {
        const data = randomData(SIZE);
        const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/t.bin`, baseUrl: server.uploadUrl, size: SIZE });
        const res = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': String(SIZE), 'Upload-Slot': slot.url } });
        assert.equal(res.status, 201);
        const location = pathOf(String(res.headers.location));
        const id = location.split('/').pop()!;
        return { data, slot, location, id };
      }),
    );
    const putUploads = Array.from({ length: COUNT }, () => {
      const data = randomData(SIZE);
      return { data, slot: signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/p.bin`, baseUrl: server.uploadUrl, size: SIZE }) };
    });
    const inFlight = [
      ...tusUploads.map((u) =>
        rawRequest(proxy.url, u.location, {
          method: 'PATCH',
          headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
          body: u.data,
        }).catch(() => undefined),
      ),
      ...putUploads.map((u) => rawRequest(proxy.url, pathOf(u.slot.url), { method: 'PUT', body: u.data }).catch(() => undefined)),
    ];
    // Wait until every tus upload has bytes stored and every PUT has bytes in the store.
    await until(async () => {
      const sizes = await Promise.all(tusUploads.map((u) => backend.storedTusBytes(server, u.id)));
      return sizes.every((s) => s > 0) && (await backend.incomingInFlight(server)) === putUploads.length;
    });
    const stagedParts = () => readdir(join(server.dataDir, 's3-parts')).catch(() => [] as string[]);
    if (onS3) await until(async () => (await stagedParts()).length > 0); // @tus/s3-store stages the next parts there
    server.proc.kill('SIGKILL');
    await server.exited;
    await proxy.close();
    await Promise.all(inFlight);

    const restarted = await startServer({ dataDir: server.dataDir, config });
    try {
      assert.deepEqual(await backend.incomingLeftovers(restarted), [], 'what interrupted PUTs left is removed at start');
      if (onS3) {
        const removed = await restarted.waitForLog((l) => l.msg === 'Removed S3 parts a previous run had staged locally');
        assert.ok(Number(removed.files) > 0);
        assert.deepEqual(await stagedParts(), [], 'the parts staged before the kill are removed at start');
      }
      for (const u of putUploads) {
        assert.equal((await rawRequest(restarted.baseUrl, pathOf(u.slot.getUrl))).status, 404, 'an interrupted PUT is never published');
      }
      for (const u of tusUploads) {
        const head = await rawRequest(restarted.baseUrl, u.location, { method: 'HEAD', headers: TUS });
        assert.equal(head.status, 200);
        const offset = Number(head.headers['upload-offset']);
        assert.ok(offset > 0 && offset < SIZE, `resumes from ${offset}, not from zero`);
        const rest = await rawRequest(restarted.baseUrl, u.location, {
          method: 'PATCH',
          headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) },
          body: u.data.subarray(offset),
        });
        assert.equal(rest.status, 204, rest.text);
        assert.equal(sha256((await rawRequest(restarted.baseUrl, pathOf(u.slot.getUrl))).body), sha256(u.data));
      }
      for (const u of putUploads) {
        assert.equal((await rawRequest(restarted.baseUrl, pathOf(u.slot.url), { method: 'PUT', body: u.data })).status, 201);
        assert.equal(sha256((await rawRequest(restarted.baseUrl, pathOf(u.slot.getUrl))).body), sha256(u.data));
      }
    } finally {
      await restarted.stop();
    }
  } finally {
    await proxy.close();
    await server.dispose();
  }
});

// A kill -9 between a PATCH's last write and its completion leaves every byte stored and the
// upload unmarked. Made here by writing the last bytes into the data file directly, as that PATCH
// had. A client's HEAD then reads offset = length and counts the upload as done, so the server
// must complete it: at that HEAD (another instance, or this one running on), and at start.
it('every byte stored but never marked finished: the next HEAD completes it, and so does a restart without any HEAD [file]', { timeout: 60_000 }, async () => {
  const data = randomData(300_000);
  const stored = async (server: Awaited<ReturnType<typeof startServer>>) => {
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/whole.bin`, baseUrl: server.uploadUrl, size: data.length });
    const created = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': String(data.length), 'Upload-Slot': slot.url } });
    assert.equal(created.status, 201, created.text);
    const at = pathOf(String(created.headers.location));
    const first = await rawRequest(server.baseUrl, at, { method: 'PATCH', headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body: data.subarray(0, 100_000) });
    assert.equal(first.status, 204, first.text);
    return { at, getPath: pathOf(slot.getUrl), dataFile: join(server.dataDir, 'tus', at.split('/').pop()!) };
  };

  const server = await startServer();
  let restarted: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    const headed = await stored(server);
    await appendFile(headed.dataFile, data.subarray(100_000));
    assert.equal((await rawRequest(server.baseUrl, headed.getPath)).status, 404, 'not published yet');
    const head = await rawRequest(server.baseUrl, headed.at, { method: 'HEAD', headers: TUS });
    assert.equal(head.headers['upload-offset'], String(data.length));
    const got = await rawRequest(server.baseUrl, headed.getPath); // waits (bounded) for a file being finalized
    assert.equal(got.status, 200, 'published after the HEAD');
    assert.equal(sha256(got.body), sha256(data));

    const silent = await stored(server);
    await server.stop('SIGKILL');
    await appendFile(silent.dataFile, data.subarray(100_000));
    restarted = await startServer({ dataDir: server.dataDir });
    await restarted.waitForLog((l) => l.msg?.startsWith('Completed uploads that held every byte') === true && l.completed === 1);
    const after = await rawRequest(restarted.baseUrl, silent.getPath);
    assert.equal(after.status, 200, 'published at start, no HEAD asked');
    assert.equal(sha256(after.body), sha256(data));
  } finally {
    await restarted?.stop();
    await server.dispose();
  }
});
