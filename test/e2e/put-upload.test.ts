/**
 * XEP-0363 PUT over real HTTP against the spawned server: every status code the issue names, on
 * both storage backends (the data directory, and S3 on a throw-away RadosGW: helpers/backends.ts).
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { encodeSlotPath } from '../../src/auth/slot-path.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { storageBackends } from '../helpers/backends.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const MAX = 64 * 1024;
const REPEATED_PUT_LOG = "Repeated PUT with the slot's file's bytes: answered 201 again";

for (const backend of storageBackends()) describe(`XEP-0363 PUT [${backend.name}]`, () => {
  let server: SpawnedServer;
  const slot = (path: string, opts: Partial<Parameters<typeof signSlotUrl>[0]> = {}) =>
    pathOf(signSlotUrl({ secret: TEST_SECRET, path, baseUrl: server.uploadUrl, size: 11, ...opts }).url);

  before(async () => {
    server = await startServer({ config: `[server]\nmax_upload_size = ${MAX}\n${await backend.config()}` });
  });
  after(async () => server.dispose());

  it('201 for each scheme, then GET serves the same bytes', async () => {
    for (const scheme of ['v', 'v2', 'token', 'v3'] as const) {
      const data = randomData(1000 + scheme.length);
      const path = `${slotDir()}/file-${scheme}.bin`;
      const url = slot(path, { scheme, size: data.length, contentType: 'image/png', expires: Math.floor(Date.now() / 1000) + 600 });
      const put = await rawRequest(server.baseUrl, url, { method: 'PUT', body: data, headers: { 'Content-Type': 'image/png' } });
      assert.equal(put.status, 201, `${scheme}: ${put.text}`);
      const get = await rawRequest(server.baseUrl, `/upload/${path}`);
      assert.equal(get.status, 200);
      assert.equal(sha256(get.body), sha256(data), scheme);
    }
  });

  it('works for ejabberd-style three-level paths and names with spaces and non-ASCII', async () => {
    const path = `${slotDir()}/${slotDir()}/Grüße aus Köln (1).txt`;
    const data = Buffer.from('hello world');
    const res = await rawRequest(server.baseUrl, slot(path), { method: 'PUT', body: data });
    assert.equal(res.status, 201, res.text);
    const get = await rawRequest(server.baseUrl, pathOf(signSlotUrl({ secret: TEST_SECRET, path, baseUrl: server.uploadUrl, size: 11 }).getUrl));
    assert.equal(get.body.toString(), 'hello world');
  });

  it('accepts a URL the client re-encoded differently from the signer (decode, then verify)', async () => {
    const dir = slotDir();
    // Prosody encodes with lowercase hex and encodes "(" ")"; a client re-encoded it uppercase and raw.
    const signed = signSlotUrl({ secret: TEST_SECRET, path: `${dir}/ü(1).txt`, baseUrl: server.uploadUrl, size: 11 });
    const reencoded = `/upload/${dir}/%C3%BC(1).txt?${signed.query.toString()}`;
    const res = await rawRequest(server.baseUrl, reencoded, { method: 'PUT', body: 'hello world' });
    assert.equal(res.status, 201, res.text);
  });

  it('a Content-Type that is no media type (a non-ASCII byte) is published as application/octet-stream', async () => {
    const path = `${slotDir()}/odd-type.jpg`;
    const data = randomData(3000);
    // Node sends a string's chars up to \xff as single bytes: the header carries \xc3\xa9.
    const put = await rawRequest(server.baseUrl, slot(path, { size: data.length }), { method: 'PUT', body: data, headers: { 'Content-Type': 'image/jp\xc3\xa9g' } });
    assert.equal(put.status, 201, put.text);
    const got = await rawRequest(server.baseUrl, `/upload/${path}`);
    assert.equal(got.status, 200, got.text);
    assert.equal(got.headers['content-type'], 'application/octet-stream');
    assert.equal(sha256(got.body), sha256(data));
  });

  it('403 for a missing, wrong or expired signature, with a stable code', async () => {
    const path = `${slotDir()}/a.txt`;
    const cases: Array<[string, string]> = [
      [`/upload/${path}`, 'ERR_SIGNATURE_MISSING'],
      [`/upload/${path}?v=${'0'.repeat(64)}`, 'ERR_SIGNATURE_INVALID'],
      [`/upload/${path}?v=nothex`, 'ERR_SIGNATURE_INVALID'],
      [slot(path, { size: 12 }), 'ERR_SIGNATURE_INVALID'], // signed for another size
      [slot(path, { secret: 'another-secret-entirely' }), 'ERR_SIGNATURE_INVALID'],
      [slot(path, { scheme: 'v3', expires: Math.floor(Date.now() / 1000) - 10 }), 'ERR_SIGNATURE_EXPIRED'],
      [slot(path, { scheme: 'v2', contentType: 'image/png' }), 'ERR_SIGNATURE_INVALID'], // PUT declares text/plain
    ];
    for (const [url, code] of cases) {
      const res = await rawRequest(server.baseUrl, url, { method: 'PUT', body: 'hello world', headers: { 'Content-Type': 'text/plain' } });
      assert.equal(res.status, 403, url);
      assert.equal(res.json().code, code, url);
    }
    assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`)).status, 404, 'nothing was published');
  });

  it('409 when the path already holds a file, and the first file stays', async () => {
    const path = `${slotDir()}/once.txt`;
    assert.equal((await rawRequest(server.baseUrl, slot(path), { method: 'PUT', body: 'first file!' })).status, 201);
    const again = await rawRequest(server.baseUrl, slot(path), { method: 'PUT', body: 'other file!' });
    assert.equal(again.status, 409);
    assert.equal(again.json().code, 'ERR_FILE_EXISTS');
    assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`)).text, 'first file!');
  });

  it('a GET pipelined behind the PUT of its file on one connection is answered after it, with the file', async () => {
    const path = `${slotDir()}/pipelined.txt`;
    const { hostname, port } = new URL(server.baseUrl);
    const answers = await new Promise<string>((resolve) => {
      const socket = connect({ host: hostname, port: Number(port) });
      let got = '';
      socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
      socket.on('error', () => {});
      socket.on('close', () => resolve(got));
      // Both requests in one write: the GET is parsed while the PUT is still being handled.
      socket.write(`PUT ${slot(path)} HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello worldGET /upload/${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    });
    const statuses = [...answers.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [201, 200], answers);
    assert.ok(answers.endsWith('\r\n\r\nhello world'), answers);
  });

  it('a repeated PUT with the same bytes (its 201 was lost) gets 201 again; the file is unchanged and stored once', async () => {
    const path = `${slotDir()}/retried.txt`;
    assert.equal((await rawRequest(server.baseUrl, slot(path), { method: 'PUT', body: 'first file!' })).status, 201);
    assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`)).text, 'first file!', 'published');
    const again = await rawRequest(server.baseUrl, slot(path), { method: 'PUT', body: 'first file!' });
    assert.equal(again.status, 201, again.text);
    assert.ok(await server.waitForLog((l) => l.msg === REPEATED_PUT_LOG && l.slotPath === path));
    const shorter = await rawRequest(server.baseUrl, slot(path, { size: 5 }), { method: 'PUT', body: 'first' });
    assert.equal(shorter.status, 409, 'a prefix is another file');
    assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`)).text, 'first file!');
  });

  it('a repeated PUT while the first is still being finalized: the same bytes get 201 again, other bytes 409', async () => {
    // Jobs wait at their first finalization step until SIGUSR2: the first PUT is answered (its job
    // is durable) but its file is not published yet, as under a busy queue.
    const held = await startServer({ config: `[server]\nmax_upload_size = ${MAX}\n[testing]\nhold_at = "start"\n${await backend.config()}` });
    try {
      const path = `${slotDir()}/queued.txt`;
      const url = pathOf(signSlotUrl({ secret: TEST_SECRET, path, baseUrl: held.uploadUrl, size: 11 }).url);
      assert.equal((await rawRequest(held.baseUrl, url, { method: 'PUT', body: 'first file!' })).status, 201);
      assert.ok(await held.waitForLog((l) => l.msg === 'Test hold: job waiting for SIGUSR2'), 'the job is held, not published');
      const again = await rawRequest(held.baseUrl, url, { method: 'PUT', body: 'first file!' });
      assert.equal(again.status, 201, again.text);
      assert.ok(await held.waitForLog((l) => l.msg === REPEATED_PUT_LOG && l.slotPath === path));
      const other = await rawRequest(held.baseUrl, url, { method: 'PUT', body: 'other file!' });
      assert.equal(other.status, 409, other.text);
      assert.equal(other.json().code, 'ERR_FILE_EXISTS');
      held.proc.kill('SIGUSR2');
      assert.equal((await rawRequest(held.baseUrl, `/upload/${path}`)).text, 'first file!', 'published once released');
    } finally {
      await held.dispose();
    }
  });

  it('413 from Content-Length before reading the body', async () => {
    const size = MAX + 1;
    const res = await rawRequest(server.baseUrl, slot(`${slotDir()}/big.bin`, { size }), {
      method: 'PUT',
      headers: { 'Content-Length': size, Expect: '100-continue' },
      body: randomData(size),
    });
    assert.equal(res.status, 413);
    assert.equal(res.json().code, 'ERR_TOO_LARGE');
  });

  it('413 while streaming a chunked body (v3 binds no size)', async () => {
    const path = `${slotDir()}/chunked.bin`;
    const url = slot(path, { scheme: 'v3', expires: Math.floor(Date.now() / 1000) + 600 });
    const body = Readable.from((function* () {
      for (let i = 0; i < 10; i++) yield randomData(16 * 1024);
    })());
    const res = await rawRequest(server.baseUrl, url, { method: 'PUT', body, headers: { 'Transfer-Encoding': 'chunked' } }).catch((e: Error) => e);
    // The server answers 413 mid-body and closes; depending on timing the client sees the answer or a reset.
    if (!(res instanceof Error)) assert.equal(res.status, 413);
    assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`)).status, 404);
    assert.deepEqual(await backend.incomingLeftovers(server), [], 'no temp file left behind');
  });

  it('411 when a size-binding signature meets a body without Content-Length', async () => {
    const res = await rawRequest(server.baseUrl, slot(`${slotDir()}/c.bin`), {
      method: 'PUT',
      body: Readable.from([Buffer.from('hello '), Buffer.from('world')]),
      headers: { 'Transfer-Encoding': 'chunked' },
    });
    assert.equal(res.status, 411);
    assert.equal(res.json().code, 'ERR_LENGTH_REQUIRED');
  });

  it('400 for traversal, NUL, backslash, empty segments and bad encoding, before any signature check', async () => {
    for (const bad of ['/upload/a/../b.txt', '/upload/a/%2e%2e/b.txt', '/upload/a/b%00.txt', '/upload/a\\b.txt', '/upload/a/%5Cb.txt', '/upload/a//b.txt', '/upload/a/b/', '/upload/a/%2Fb.txt', '/upload/a/%zz.txt', '/upload/']) {
      const res = await rawRequest(server.baseUrl, `${bad}?v=${'0'.repeat(64)}`, { method: 'PUT', body: 'x' });
      assert.equal(res.status, 400, bad);
      assert.equal(res.json().code, 'ERR_BAD_PATH', bad);
    }
  });

  it('the longest name (250 bytes) and path (900 bytes) accepted are published; one byte more is 400 before the body', async () => {
    const dir = slotDir();
    const name = `${'n'.repeat(246)}.txt`;
    const pathOfLength = (bytes: number) => `${dir}/${'d'.repeat(250)}/${'e'.repeat(250)}/${'f'.repeat(bytes - 250 - 250 - 250 - dir.length - 4)}/${name}`;
    const longPath = pathOfLength(900);
    assert.equal(Buffer.byteLength(longPath), 900);
    for (const path of [`${dir}/${name}`, longPath]) {
      const body = randomData(100);
      const put = await rawRequest(server.baseUrl, slot(path, { size: body.length }), { method: 'PUT', body });
      assert.equal(put.status, 201, `${Buffer.byteLength(path)}-byte path: ${put.text}`);
      const got = await rawRequest(server.baseUrl, `/upload/${encodeSlotPath(path)}`);
      assert.equal(got.status, 200, `${Buffer.byteLength(path)}-byte path published`);
      assert.ok(got.body.equals(body));
    }
    for (const path of [`${dir}/x${name}`, pathOfLength(901)]) {
      // Refused before the signature is checked (the signer would not sign it either).
      const res = await rawRequest(server.baseUrl, `/upload/${encodeSlotPath(path)}?v=${'0'.repeat(64)}`, { method: 'PUT', body: 'x' });
      assert.equal(res.status, 400, `${Buffer.byteLength(path)} bytes`);
      assert.equal(res.json().code, 'ERR_BAD_PATH');
    }
  });

  // Folders are the file backend's: on S3 `a/b` and `a/b/c` are two keys and both publish.
  if (backend.name === 'file') {
    it("409 before the body for a slot path another slot's file or folder is in the way of (never 201 and then no file)", async () => {
      const dir = slotDir();
      const put = (path: string, body = 'hello') => rawRequest(server.baseUrl, slot(path, { size: Buffer.byteLength(body) }), { method: 'PUT', body });
      assert.equal((await put(`${dir}/file.bin`)).status, 201);
      assert.equal((await put(`${dir}/rec.json/inner.txt`)).status, 201); // its record's folder: meta/<dir>/rec.json/
      // Published (a GET waits for a file still being finalized): their folders exist from here on.
      for (const path of [`${dir}/file.bin`, `${dir}/rec.json/inner.txt`]) assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`)).status, 200, path);
      for (const blocked of [`${dir}/file.bin/under.txt`, dir, `${dir}/rec`]) {
        const res = await put(blocked);
        assert.equal(res.status, 409, `${blocked}: ${res.text}`);
        assert.equal(res.json().code, 'ERR_FILE_EXISTS');
        assert.match(res.json<{ message: string }>().message, /in the way/);
      }
      const tus = await rawRequest(server.baseUrl, '/files/', {
        method: 'POST',
        headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': 5, 'Upload-Slot': signSlotUrl({ secret: TEST_SECRET, path: `${dir}/file.bin/t.txt`, baseUrl: server.uploadUrl, size: 5 }).url },
      });
      assert.equal(tus.status, 409, tus.text);
      assert.equal((await put(`${dir}/free.txt`)).status, 201, 'a free path beside them still publishes');
    });
  }

  it('400 for a malformed Content-Length (refused by the HTTP parser, connection closed)', async () => {
    const url = new URL(server.baseUrl);
    const reply = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(url.port), url.hostname, () => {
        sock.end(`PUT ${slot(`${slotDir()}/x.txt`)} HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\nhello world`);
      });
      let text = '';
      sock.on('data', (d: Buffer) => (text += d.toString()));
      sock.on('close', () => resolve(text));
      sock.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 400 /);
  });

  it('a client that drops mid-PUT leaves nothing published and no temp file', async () => {
    const path = `${slotDir()}/dropped.bin`;
    const size = 60 * 1024;
    const url = slot(path, { size });
    const first = randomData(20 * 1024);
    // Logged once the temp file is removed ("Request finished" can come first, on the socket's close).
    const since = server.logs.length;
    const logged = server.waitForLog((l) => l.msg === 'PUT aborted by the client; nothing published' && server.logs.indexOf(l) >= since);
    await new Promise<void>((resolve) => {
      void rawRequest(server.baseUrl, url, {
        method: 'PUT',
        headers: { 'Content-Length': size },
        onRequest: (req) => {
          req.write(first, () => setImmediate(() => req.destroy()));
          req.on('error', () => resolve());
          req.on('close', () => resolve());
        },
      }).catch(() => {});
    });
    await logged;
    assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`)).status, 404);
    assert.deepEqual(await backend.incomingLeftovers(server), []);
    // The slot is still free: the full upload succeeds afterwards.
    const data = randomData(size);
    assert.equal((await rawRequest(server.baseUrl, url, { method: 'PUT', body: data })).status, 201);
  });

  it('an app killed mid-PUT (its socket ends with a FIN, not a reset) is logged as the client leaving, with the bytes it sent; never as a 400', async () => {
    const path = `${slotDir()}/killed.bin`;
    const target = slot(path, { size: 10_000 });
    const since = server.logs.length;
    const { hostname, port } = new URL(server.baseUrl);
    const socket = connect({ host: hostname, port: Number(port) });
    socket.on('error', () => {});
    // Headers and the first 3000 bytes in one write: they arrive in one read, before the request starts.
    socket.write(`PUT ${target} HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n${'x'.repeat(3000)}`);
    socket.end();
    const line = await server.waitForLog((l) => l.msg === 'Request finished' && l.path === `/upload/${path}` && server.logs.indexOf(l) >= since);
    socket.destroy();
    assert.equal(line.status, 0, JSON.stringify(line));
    assert.equal(line.aborted, true);
    assert.equal(line.code, undefined);
    assert.ok(Number(line.bytesIn) >= 3000, `the bytes it sent are counted (${String(line.bytesIn)})`);
    assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`)).status, 404);
  });

  it('clients that reset right after the headers leave no temp file behind, even many at once (issue 9.11)', async () => {
    // End to end beside the deterministic case in test/integration/receive-file.test.ts: bodies
    // that fail at once, many in parallel; every temp file must be gone once each PUT is over.
    const N = 16; // below [limits] max_bodies_per_client (32): every one reaches its body
    const url = new URL(server.baseUrl);
    const aborted = () => server.logs.filter((l) => l.msg === 'PUT aborted by the client; nothing published').length;
    const before = aborted();
    await Promise.all(
      Array.from({ length: N }, () => {
        const target = slot(`${slotDir()}/reset.bin`, { size: 4096 });
        return new Promise<void>((resolve) => {
          // 100 Continue comes right before the server opens the temp file: reset at that moment.
          const sock = connect(Number(url.port), url.hostname, () => {
            sock.write(`PUT ${target} HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\nExpect: 100-continue\r\n\r\n`);
          });
          sock.once('data', () => sock.write('abc', () => sock.resetAndDestroy()));
          sock.on('error', () => {});
          sock.on('close', () => resolve());
        });
      }),
    );
    await server.waitForLog(() => aborted() - before >= N);
    // A data-dir write (the readiness probe) goes through the same thread pool as any open still in flight.
    assert.equal((await rawRequest(server.baseUrl, '/ready')).status, 200);
    assert.deepEqual(await backend.incomingLeftovers(server), []);
  });

  it('a declared checksum: a matching one publishes, a malformed one is 400 before the body', async () => {
    const data = randomData(5000);
    const path = `${slotDir()}/sum.bin`;
    const ok = await rawRequest(server.baseUrl, slot(path, { size: data.length }), { method: 'PUT', body: data, headers: { 'X-Content-SHA256': sha256(data) } });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(sha256((await rawRequest(server.baseUrl, `/upload/${path}`)).body), sha256(data));
    const bad = await rawRequest(server.baseUrl, slot(`${slotDir()}/bad.bin`, { size: data.length }), { method: 'PUT', body: data, headers: { 'X-Content-SHA256': 'not-hex' } });
    assert.equal(bad.status, 400);
  });

  it('405 for other methods on the upload prefix, 404 for unknown routes', async () => {
    const res = await rawRequest(server.baseUrl, '/upload/a/b.txt', { method: 'DELETE' });
    assert.equal(res.status, 405);
    assert.match(String(res.headers.allow), /PUT/);
    assert.equal((await rawRequest(server.baseUrl, '/nope')).status, 404);
  });
});

/** The counter of source re-reads by reason; 0 while the series does not exist yet. */
async function rereads(server: SpawnedServer, reason: string): Promise<number> {
  const m = new RegExp(`^hmac_finalize_source_rereads_total\\{reason="${reason}"\\} (\\S+)$`, 'm').exec((await rawRequest(server.baseUrl, '/metrics')).text);
  return m ? Number(m[1]) : 0;
}

for (const backend of storageBackends()) describe(`PUT bodies larger than one part [${backend.name}]`, () => {
  let server: SpawnedServer;
  const SIZE = 12 * 1024 * 1024 + 5;
  const slot = (path: string) => pathOf(signSlotUrl({ secret: TEST_SECRET, path, baseUrl: server.uploadUrl, size: SIZE }).url);

  before(async () => {
    server = await startServer({ config: await backend.config() });
  });
  after(async () => server.dispose());

  it('publishes byte-identically, hashed while it arrived (finalization never re-reads it to hash)', async () => {
    const data = randomData(SIZE);
    const path = `${slotDir()}/big.bin`;
    const before = await rereads(server, 'hash');
    const put = await rawRequest(server.baseUrl, slot(path), { method: 'PUT', body: data });
    assert.equal(put.status, 201, put.text);
    const get = await rawRequest(server.baseUrl, `/upload/${path}`);
    assert.equal(sha256(get.body), sha256(data));
    assert.equal(await rereads(server, 'hash'), before);
    assert.deepEqual(await backend.incomingLeftovers(server), [], 'the incoming bytes are gone once published');
  });

  it('a client that drops after the store took part of the body leaves nothing (S3: the multipart upload is aborted)', async () => {
    const path = `${slotDir()}/dropped.bin`;
    const logged = server.waitForLog((l) => l.msg === 'PUT aborted by the client; nothing published' && l.bytes !== undefined && Number(l.bytes) > 6 * 1024 * 1024);
    await new Promise<void>((resolve) => {
      void rawRequest(server.baseUrl, slot(path), {
        method: 'PUT',
        headers: { 'Content-Length': SIZE },
        onRequest: (req) => {
          req.on('error', () => resolve());
          req.on('close', () => resolve());
          req.write(randomData(7 * 1024 * 1024), () => {
            // Cut only once the store holds bytes of this body (S3: one part sent).
            const poll = async () => {
              while ((await backend.incomingInFlight(server)) === 0) await new Promise((r) => setTimeout(r, 50));
              req.destroy();
            };
            void poll();
          });
        },
      }).catch(() => {});
    });
    await logged;
    assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`)).status, 404);
    assert.deepEqual(await backend.incomingLeftovers(server), []);
  });
});

for (const backend of storageBackends().filter((b) => b.name === 's3')) describe('a full bucket (S3 quota reached)', () => {
  let server: SpawnedServer;
  const SIZE = 2 * 1024 * 1024;
  before(async () => {
    server = await startServer({ config: await backend.config() });
    await backend.limitBucket(server, 1024 * 1024);
  });
  after(async () => server.dispose());

  it('a PUT over the quota answers 507 with Retry-After, like a full disk; nothing is published or left', async () => {
    const path = `${slotDir()}/over.bin`;
    const res = await rawRequest(server.baseUrl, pathOf(signSlotUrl({ secret: TEST_SECRET, path, baseUrl: server.uploadUrl, size: SIZE }).url), { method: 'PUT', body: randomData(SIZE) });
    assert.equal(res.status, 507, res.text);
    assert.equal(res.json().code, 'ERR_INSUFFICIENT_STORAGE');
    assert.ok(Number(res.headers['retry-after']) > 0);
    assert.equal((await rawRequest(server.baseUrl, `/upload/${path}`)).status, 404);
    assert.deepEqual(await backend.incomingLeftovers(server), []);
  });

  it('a tus PATCH over the quota answers 507; the upload stays and reports what it holds', async () => {
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/over-tus.bin`, baseUrl: server.uploadUrl, size: SIZE });
    const created = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': SIZE, 'Upload-Slot': slot.url } });
    assert.equal(created.status, 201, created.text);
    const location = pathOf(String(created.headers.location));
    const patch = await rawRequest(server.baseUrl, location, {
      method: 'PATCH',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': 0, 'Content-Type': 'application/offset+octet-stream' },
      body: randomData(SIZE),
    });
    // On another answer, say why: the server's last warnings and errors (seen once, 500, in a full run under load).
    assert.equal(patch.status, 507, `${patch.text} ${JSON.stringify(server.logs.filter((l) => Number(l.level) >= 40).slice(-3))}`);
    const head = await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    assert.equal(head.status, 200, 'the upload is kept for a retry once there is room');
    assert.equal(head.headers['upload-offset'], '0');
  });
});
