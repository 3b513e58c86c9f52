/**
 * Real XMPP signers and clients: Prosody 0.12 with mod_http_upload_external (protocol v1, then
 * v2) hands out slots under a path-prefixed base URL; go-sendxmpp and slixmpp request them and
 * upload to the spawned server, whose upload prefix is that path.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tus from 'tus-js-client';
import { pathOf, randomData, rawRequest, sha256 } from '../helpers/http.js';
import { goSendxmppUpload, slixmpp, startProsody, xmppUnavailable, type RunningProsody } from '../helpers/prosody.js';
import { startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';

const PREFIX = '/xmpp/upload/';
const LIMIT = 4 * 1024 * 1024;
const skip = xmppUnavailable() ?? false;
const requestsSince = (server: SpawnedServer, from: number) => server.logs.slice(from).filter((l: LogLine) => l.msg === 'Request finished');
/** Index in the server's log after which only requests made from now on appear (earlier lines can trail their response). */
async function logMark(server: SpawnedServer): Promise<number> {
  const marker = `/mark-${Math.random().toString(36).slice(2)}`;
  await rawRequest(server.baseUrl, marker);
  const line = await server.waitForLog((l) => l.msg === 'Request finished' && l.path === marker);
  return server.logs.indexOf(line) + 1;
}

for (const protocol of ['v1', 'v2'] as const) {
  const param = protocol === 'v1' ? 'v' : 'v2';

  describe(`Prosody mod_http_upload_external ${protocol} with real XMPP clients`, { skip }, () => {
    let server: SpawnedServer;
    let prosody: RunningProsody;
    let fileDir: string;

    before(async () => {
      fileDir = await mkdtemp(join(tmpdir(), 'hfs-xmpp-'));
      server = await startServer({ config: `[server]\nupload_path = "${PREFIX}"\n` });
      prosody = await startProsody({ uploadBaseUrl: `${server.baseUrl}${PREFIX}`, secret: TEST_SECRET, protocol, fileSizeLimit: LIMIT });
    });
    after(async () => {
      await prosody?.stop();
      await server?.dispose();
      if (fileDir) await rm(fileDir, { recursive: true, force: true });
    });

    it('go-sendxmpp --http-upload: slot under the prefix, PUT 201, the GET URL serves identical bytes', async () => {
      const data = randomData(300_000);
      const file = join(fileDir, `go-${protocol}.bin`);
      await writeFile(file, data);
      const start = await logMark(server);
      const res = await goSendxmppUpload(prosody, file);
      assert.equal(res.code, 0, res.output);
      assert.ok(res.slot, `a slot in go-sendxmpp's stanzas:\n${res.output}`);
      assert.ok(res.slot.get.startsWith(`${server.baseUrl}${PREFIX}`), res.slot.get);
      assert.equal(new URL(res.slot.put).searchParams.has(param), true, `signed with ${param}: ${res.slot.put}`);
      const put = requestsSince(server, start).find((l) => l.method === 'PUT');
      assert.equal(put?.status, 201);
      assert.equal(put?.path, new URL(res.slot.get).pathname);
      const get = await rawRequest(server.baseUrl, pathOf(res.slot.get));
      assert.equal(get.status, 200);
      assert.equal(sha256(get.body), sha256(data));
    });

    it('slixmpp: a name with spaces and non-ASCII characters, typed text/plain; charset=utf-8', async () => {
      const name = 'Résumé März (final) + ü 1.txt';
      const data = Buffer.from('Grüße aus dem Test, ünïcödé bytes\n'.repeat(500));
      const file = join(fileDir, `slix-${protocol}.txt`);
      await writeFile(file, data);
      const res = await slixmpp(prosody, { action: 'upload', filename: name, size: data.length, contentType: 'text/plain; charset=utf-8', file });
      assert.equal(res.ok, true, JSON.stringify(res));
      assert.ok(res.ok && res.get.startsWith(`${server.baseUrl}${PREFIX}`));
      const getUrl = res.ok ? res.get : '';
      assert.equal(decodeURIComponent(getUrl.split('/').pop()!), name, 'Prosody percent-encoded the whole name');
      const get = await rawRequest(server.baseUrl, pathOf(getUrl));
      assert.equal(get.status, 200);
      assert.equal(sha256(get.body), sha256(data));
      assert.match(String(get.headers['content-type']), /^text\/plain/);
    });

    it('a slot Prosody refuses for size never reaches the server', async () => {
      const start = await logMark(server);
      const res = await slixmpp(prosody, { action: 'slot', filename: 'too-big.bin', size: LIMIT + 1 });
      assert.equal(res.ok, false);
      // prosody-modules 2023-02 + Prosody 0.12.3 raise while building the "file-too-large" error,
      // so the client gets no answer at all ("no-reply"); a fixed module answers not-acceptable.
      assert.ok(!res.ok && ['no-reply', 'not-acceptable'].includes(res.condition), JSON.stringify(res));
      await prosody.waitForOutput(new RegExp(`File too large \\(${LIMIT + 1} > ${LIMIT}\\)`));
      // The slot request for a small file right after it is answered: Prosody is fine and the
      // server is reachable, yet nothing of the refused request ever arrived there.
      const ok = await slixmpp(prosody, { action: 'slot', filename: 'small.bin', size: 10 });
      assert.equal(ok.ok, true, JSON.stringify(ok));
      assert.deepEqual(requestsSince(server, start), []);
    });

    it('a tampered slot URL gets 403; the untouched slot takes its one file, served as the signed type', async () => {
      const data = randomData(5000);
      const type = 'image/png';
      const res = await slixmpp(prosody, { action: 'slot', filename: 'tamper.png', size: data.length, contentType: type });
      assert.ok(res.ok && res.put, JSON.stringify(res));
      const slotUrl = new URL(res.put!);
      const sig = slotUrl.searchParams.get(param)!;
      assert.match(sig, /^[0-9a-f]{64}$/);
      const put = (url: URL, body: Buffer, contentType = type) =>
        rawRequest(server.baseUrl, `${url.pathname}${url.search}`, { method: 'PUT', headers: { 'Content-Type': contentType }, body });
      const flipped = new URL(slotUrl);
      flipped.searchParams.set(param, `${sig[0] === 'a' ? 'b' : 'a'}${sig.slice(1)}`);
      const renamed = new URL(slotUrl);
      renamed.pathname = renamed.pathname.replace(/tamper\.png$/, 'tamper2.png');
      const cases: Array<[string, Promise<Awaited<ReturnType<typeof put>>>]> = [
        ['signature changed', put(flipped, data)],
        ['file name changed', put(renamed, data)],
        ['size changed', put(slotUrl, data.subarray(1))],
        ['signature removed', put(new URL(`${slotUrl.origin}${slotUrl.pathname}`), data)],
      ];
      for (const [what, pending] of cases) {
        const r = await pending;
        assert.equal(r.status, 403, `${what}: ${r.text}`);
        assert.match(String(r.json().code), /^ERR_SIGNATURE_|^ERR_SIZE_MISMATCH$|^ERR_TYPE_MISMATCH$/, what);
      }
      // v2 binds the type the slot was signed for: a PUT sending another one (as the Go server
      // allowed, deriving it from the name) is stored and served as the signed type.
      assert.equal((await put(slotUrl, data, protocol === 'v2' ? 'image/jpeg' : type)).status, 201);
      assert.equal((await rawRequest(server.baseUrl, pathOf(res.get), { method: 'HEAD' })).headers['content-type'], type);
      // A retry with the same bytes (its 201 was lost) is answered 201 again; other bytes are not.
      assert.equal((await put(slotUrl, data)).status, 201, 'a repeated PUT of the same file');
      assert.equal((await put(slotUrl, randomData(data.length))).status, 409, 'a slot takes one file');
      assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(res.get))).body), sha256(data));
    });

    it('tus-js-client uploads through a Prosody slot (Upload-Slot header) under the prefix', async () => {
      const data = randomData(600_000);
      const type = 'application/octet-stream';
      const res = await slixmpp(prosody, { action: 'slot', filename: 'via tus.bin', size: data.length, contentType: type });
      assert.ok(res.ok && res.put, JSON.stringify(res));
      const upload = await new Promise<tus.Upload>((resolve, reject) => {
        const u: tus.Upload = new tus.Upload(data, {
          endpoint: server.tusUrl,
          headers: { 'Upload-Slot': res.put! },
          metadata: { filename: 'via tus.bin', filetype: type },
          chunkSize: 256 * 1024,
          retryDelays: [0, 200],
          onSuccess: () => resolve(u),
          onError: reject,
        });
        u.start();
      });
      const id = upload.url!.split('/').pop();
      await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === id);
      assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(res.get))).body), sha256(data));
    });
  });
}
