/** CORS for browsers: configured origins get the headers tus-js-client needs; others get none. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rawRequest } from '../helpers/http.js';
import { startServer, type SpawnedServer } from '../helpers/server.js';

const GOOD = 'https://chat.example.org';
const EVIL = 'https://evil.example.net';

describe('CORS with configured origins', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer({ config: `[cors]\nallowed_origins = ["${GOOD}"]\n` });
  });
  after(async () => server.dispose());

  const preflight = (path: string, origin: string, method: string, headers: string) =>
    rawRequest(server.baseUrl, path, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers },
    });

  it('tus endpoint: preflight allows the configured origin and the slot header, and exposes tus headers', async () => {
    const res = await preflight('/files/', GOOD, 'POST', 'tus-resumable, upload-length, upload-metadata, upload-slot, x-request-id');
    assert.ok(res.status === 204 || res.status === 200);
    assert.equal(res.headers['access-control-allow-origin'], GOOD);
    const allowHeaders = String(res.headers['access-control-allow-headers']).toLowerCase().split(/\s*,\s*/);
    // x-request-id: tus-js-client's addRequestId
    for (const h of ['tus-resumable', 'upload-length', 'upload-metadata', 'upload-offset', 'upload-slot', 'x-request-id']) assert.ok(allowHeaders.includes(h), h);
    assert.match(String(res.headers['access-control-allow-methods']), /PATCH/);
    assert.match(String(res.headers['access-control-allow-methods']), /\bGET\b/, 'a finished upload URL answers GET');
    const head = await rawRequest(server.baseUrl, '/files/unknown', { method: 'HEAD', headers: { Origin: GOOD, 'Tus-Resumable': '1.0.0' } });
    const exposed = String(head.headers['access-control-expose-headers']).toLowerCase();
    for (const h of ['upload-offset', 'location', 'upload-length', 'tus-resumable']) assert.ok(exposed.includes(h), h);
    // The endpoint's own answers (here the 412 of a request without Tus-Resumable) expose the same, Tus-Version included.
    const own = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { Origin: GOOD, 'Upload-Length': '1' } });
    assert.equal(own.status, 412, own.text);
    const ownExposed = String(own.headers['access-control-expose-headers']).toLowerCase().split(/\s*,\s*/);
    for (const h of ['tus-version', 'tus-resumable', 'location', 'upload-offset', 'upload-metadata', 'x-request-id']) assert.ok(ownExposed.includes(h), `${h} in ${ownExposed.join(',')}`);
  });

  it('tus endpoint: another origin gets no Access-Control-Allow-Origin', async () => {
    const res = await preflight('/files/', EVIL, 'POST', 'tus-resumable');
    assert.notEqual(res.headers['access-control-allow-origin'], EVIL);
    assert.notEqual(res.headers['access-control-allow-origin'], '*');
  });

  it('upload prefix: preflight for PUT allowed for the configured origin only', async () => {
    const ok = await preflight('/upload/a/b.txt', GOOD, 'PUT', 'content-type');
    assert.equal(ok.status, 204);
    assert.equal(ok.headers['access-control-allow-origin'], GOOD);
    assert.match(String(ok.headers['access-control-allow-methods']), /PUT/);
    assert.equal(ok.headers['access-control-allow-headers'], 'content-type');
    const refused = await preflight('/upload/a/b.txt', EVIL, 'PUT', 'content-type');
    assert.equal(refused.headers['access-control-allow-origin'], undefined);
    const get = await rawRequest(server.baseUrl, '/upload/a/b.txt', { headers: { Origin: GOOD } });
    assert.equal(get.headers['access-control-allow-origin'], GOOD);
    assert.match(String(get.headers['access-control-expose-headers']), /Content-Range/);
  });
});
