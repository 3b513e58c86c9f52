/**
 * A client still sending its body gets the answer that ends it (RFC 9112 §9.6): the server
 * answers, sends its FIN, drops what still arrives and closes after, instead of closing on
 * unread bytes, which makes the kernel reset the connection and the client lose the answer
 * (Node's http client reported EPIPE and never saw the 403).
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { rawRequest, slotDir } from '../helpers/http.js';
import { withTimeout } from '../helpers/service.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const MiB = 2 ** 20;

/** Streams `total` bytes as fast as the socket takes them; resolves with the status, or the error that came first. */
function sendBody(url: string, total: number, headers: Record<string, string> = {}): Promise<{ status: number } | { error: string }> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'PUT', headers: { 'Content-Length': String(total), ...headers } });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode! });
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    const chunk = Buffer.alloc(64 * 1024, 1);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('closing a connection while the client still sends its body', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer({ config: '[server]\nmax_upload_size = "8MiB"\n' });
  });
  after(async () => server?.dispose());

  it('a PUT refused before its body (bad signature, too large) gets its answer, not a reset', async () => {
    const bad = `${server.uploadUrl}${slotDir()}/x.bin?v=${'0'.repeat(64)}`;
    for (let i = 0; i < 3; i++) assert.deepEqual(await withTimeout(sendBody(bad, 64 * MiB), 30_000, 'refused PUT'), { status: 403 }, `attempt ${i}`);
    const large = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/large.bin`, baseUrl: server.uploadUrl, size: 64 * MiB });
    assert.deepEqual(await withTimeout(sendBody(large.url, 64 * MiB), 30_000, 'PUT above max_upload_size'), { status: 413 });
  });

  it('a request pipelined behind the rest of a refused body is never handled (RFC 9112 9.6)', async () => {
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/kept.bin`, baseUrl: server.uploadUrl, size: 10 });
    const created = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': 10, 'Upload-Slot': slot.url } });
    assert.equal(created.status, 201, created.text);
    const upload = new URL(String(created.headers.location)).pathname;
    const url = new URL(server.baseUrl);
    const total = 100_000;
    const answer = await withTimeout(
      new Promise<string>((resolve, reject) => {
        let got = '';
        let restSent = false;
        const sock = connect(Number(url.port), url.hostname, () => {
          sock.write(`PUT /upload/${slotDir()}/refused.bin?v=${'0'.repeat(64)} HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`);
          sock.write(Buffer.alloc(1000, 1));
        });
        sock.on('data', (d: Buffer) => {
          got += d.toString('latin1');
          // The 403 came while the body is still on its way: the rest, and a DELETE behind it.
          if (!restSent && got.includes('\r\n\r\n')) {
            restSent = true;
            sock.write(Buffer.concat([Buffer.alloc(total - 1000, 1), Buffer.from(`DELETE ${upload} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n\r\n`)]));
          }
        });
        sock.on('close', () => resolve(got));
        sock.on('error', reject);
      }),
      10_000,
      'the refused PUT and the close',
    );
    assert.deepEqual([...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]), ['403'], answer);
    const head = await rawRequest(server.baseUrl, upload, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    assert.equal(head.status, 200, 'the pipelined DELETE was not run');
  });

  it('an error answer to a request without a body keeps the connection: what is pipelined behind it is answered', async () => {
    const url = new URL(server.baseUrl);
    const text = await withTimeout(
      new Promise<string>((resolve, reject) => {
        let got = '';
        const sock = connect(Number(url.port), url.hostname, () => {
          sock.write(`GET /upload/${slotDir()}/missing.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        });
        sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
        sock.on('close', () => resolve(got));
        sock.on('error', reject);
      }),
      10_000,
      'two pipelined answers',
    );
    assert.deepEqual([...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]), ['404', '200'], text);
    const first = text.slice(0, text.indexOf('HTTP/1.1 200'));
    assert.doesNotMatch(first, /^connection: close/im, 'the 404 leaves the connection open');
  });

  it('the connection is closed after the linger: a client that never stops sending does not keep it', async () => {
    const bad = `${server.uploadUrl}${slotDir()}/y.bin?v=${'0'.repeat(64)}`;
    const closed = new Promise<number>((resolve) => {
      const started = Date.now();
      const req = request(bad, { method: 'PUT', headers: { 'Content-Length': String(2 ** 40) } });
      req.on('response', (res) => res.resume());
      req.on('error', () => {});
      req.on('close', () => resolve(Date.now() - started));
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = () => {
        while (!req.destroyed && req.write(chunk));
        if (!req.destroyed) req.once('drain', pump);
      };
      pump();
    });
    const ms = await withTimeout(closed, 20_000, 'the server closing the connection');
    assert.ok(Number.isFinite(ms));
  });
});
