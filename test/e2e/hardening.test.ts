/** Key rotation, internal failures that must not leak, and human-readable logs. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, rawRequest, slotDir } from '../helpers/http.js';
import { CLI, REPO_ROOT, startServer, type SpawnedServer } from '../helpers/server.js';

const OLD = 'the-previous-secret-being-rotated-out';
const NEW = 'the-current-secret-signers-move-to';
const TUS = { 'Tus-Resumable': '1.0.0' };

describe('hardening', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer({ secret: NEW, config: `[security]\nprevious_secrets = ["${OLD}"]\n` });
  });
  after(async () => server.dispose());

  it('accepts slots signed with the current and a previous secret, not with others', async () => {
    for (const [secret, status] of [[NEW, 201], [OLD, 201], ['never-configured-secret', 403]] as const) {
      const slot = signSlotUrl({ secret, path: `${slotDir()}/r.txt`, baseUrl: server.uploadUrl, size: 2 });
      assert.equal((await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body: 'ok' })).status, status, secret);
    }
  });

  it('an internal failure is a 500 ERR_INTERNAL with a request id and no internal detail; HEAD never passes a 5xx', async () => {
    // Break storage under the running server: the incoming dir and the tus dir become plain files.
    await rm(join(server.dataDir, 'incoming'), { recursive: true, force: true });
    await writeFile(join(server.dataDir, 'incoming'), 'not a directory');
    const slot = signSlotUrl({ secret: NEW, path: `${slotDir()}/boom.txt`, baseUrl: server.uploadUrl, size: 4 });
    const put = await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body: 'boom' });
    assert.equal(put.status, 500);
    const body = put.json<{ code: string; message: string; requestId: string }>();
    assert.equal(body.code, 'ERR_INTERNAL');
    assert.equal(body.message, 'Internal server error');
    assert.match(body.requestId, /^[0-9a-f-]{36}$/);
    assert.ok(!put.text.includes(server.dataDir) && !put.text.includes('ENOTDIR'), put.text);
    const logged = await server.waitForLog((l) => l.requestId === body.requestId && l.msg === 'Request failed');
    assert.ok(JSON.stringify(logged).includes('ENOTDIR'), 'the detail goes to the log');

    const tusSlot = signSlotUrl({ secret: NEW, path: `${slotDir()}/boom2.txt`, baseUrl: server.uploadUrl, size: 4 });
    const created = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Length': '4', 'Upload-Slot': tusSlot.url } });
    assert.equal(created.status, 201);
    const location = pathOf(String(created.headers.location));
    await rm(join(server.dataDir, 'tus'), { recursive: true, force: true });
    await writeFile(join(server.dataDir, 'tus'), 'not a directory');
    const head = await rawRequest(server.baseUrl, location, { method: 'HEAD', headers: TUS });
    assert.ok(head.status < 500, `HEAD answered ${head.status}`);
    const create2 = await rawRequest(server.baseUrl, '/files/', {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': '4', 'Upload-Slot': signSlotUrl({ secret: NEW, path: `${slotDir()}/b3.txt`, baseUrl: server.uploadUrl, size: 4 }).url },
    });
    assert.equal(create2.status, 500, create2.text);
    assert.equal(create2.json().code, 'ERR_INTERNAL');
    assert.ok(!create2.text.includes(server.dataDir) && !create2.text.includes('ENOTDIR'), create2.text);
  });

  it('serve --pretty writes human-readable lines instead of JSON', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hfs-pretty-'));
    const proc = spawn(process.execPath, [CLI, 'serve', '--pretty'], {
      cwd: REPO_ROOT,
      env: { ...process.env, HFS_LISTEN: '127.0.0.1:0', HFS_DATA_DIR: dataDir, HFS_SECRET: NEW, HFS_CONFIG: 'config/default.toml' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let buf = '';
        proc.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const hit = buf.split('\n').find((l) => l.includes('Server listening'));
          if (hit) resolve(hit);
        });
        proc.once('exit', (code) => reject(new Error(`exited ${code}`)));
      });
      assert.throws(() => JSON.parse(line));
      assert.match(line, /INFO/);
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('close', r));
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
