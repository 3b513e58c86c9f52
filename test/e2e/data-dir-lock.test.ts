/**
 * Issue 9.7: one server per data directory. A second start (another port) exits 1 with one line
 * naming the running server's pid and changes nothing of its files; offline commands are refused
 * beside a server, and a server cannot start beside an offline command; a start that cannot bind
 * its port leaves the queue and server.json untouched.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveConfig } from '../../src/config/index.js';
import { connectOps } from '../../src/ops/cli/connect.js';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, rawRequest, slotDir } from '../helpers/http.js';
import { CLI, REPO_ROOT, runCli, startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';
import { withTimeout } from '../helpers/service.js';

/** Every file under `dir` with its size, mtime and content hash: "nothing changed" is equality. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  for (const name of (await readdir(dir, { recursive: true })).sort()) {
    const file = join(dir, name);
    const st = await stat(file);
    if (!st.isFile()) continue;
    out[name] = `${st.size} ${st.mtimeMs} ${createHash('sha256').update(await readFile(file)).digest('hex')}`;
  }
  return out;
}

const serveEnv = (dataDir: string, listen = '127.0.0.1:0') => ({ HFS_DATA_DIR: dataDir, HFS_LISTEN: listen, HFS_SECRET: TEST_SECRET, HFS_CONFIG: '/dev/null' });

/** `serve` that is expected to fail: a start that gets as far as listening is killed and reported, never left running. */
async function serveExpectingFailure(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [CLI, 'serve'], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes('"Server listening"')) proc.kill('SIGKILL');
  });
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await withTimeout(new Promise<number | null>((resolve) => proc.once('close', resolve)), 30_000, 'serve neither failed nor listened').finally(() => proc.kill('SIGKILL'));
  assert.equal(stdout.includes('"Server listening"'), false, 'the server started');
  return { code, stdout, stderr };
}

describe('one server per data directory', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer();
    // Something in the queue and the stores, so "untouched" means something.
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/a.txt`, baseUrl: server.uploadUrl, size: 5 });
    assert.equal((await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body: 'hello' })).status, 201);
    assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).status, 200);
  });
  after(async () => server?.dispose());

  it('a second start exits 1 with one line naming the running pid; the first keeps its files and keeps serving', async () => {
    const serverJson = await readFile(join(server.dataDir, 'server.json'), 'utf8');
    const queueBefore = await snapshot(join(server.dataDir, 'queue'));
    const second = await serveExpectingFailure(serveEnv(server.dataDir));
    assert.equal(second.code, 1, second.stdout + second.stderr);
    const lines = second.stderr.trim().split('\n');
    assert.equal(lines.length, 1, second.stderr);
    assert.match(lines[0]!, new RegExp(`in use by pid ${server.proc.pid}\\b`));
    assert.equal(second.stdout.includes('Queue recovery completed'), false, 'the second start never opened the queue');
    assert.equal(await readFile(join(server.dataDir, 'server.json'), 'utf8'), serverJson, 'server.json untouched');
    assert.deepEqual(await snapshot(join(server.dataDir, 'queue')), queueBefore);
    assert.equal((await rawRequest(server.baseUrl, '/health')).status, 200);
  });

  it('offline commands are refused while the server runs', async () => {
    const res = await runCli(['queue', 'status', '--offline'], { HFS_DATA_DIR: server.dataDir, HFS_CONFIG: '/dev/null' });
    assert.equal(res.code, 1);
    assert.match(res.stderr, new RegExp(`a server \\(pid ${server.proc.pid}\\) is running on`));
  });

  it('a server cannot start while an offline command holds the data directory', async () => {
    await server.stop();
    const { config } = resolveConfig({ storage: { data_dir: server.dataDir } }, {});
    const ops = await connectOps(config, { offline: true }); // this test process now holds the lock
    try {
      assert.equal(ops.mode, 'offline');
      const start = await serveExpectingFailure(serveEnv(server.dataDir));
      assert.equal(start.code, 1, start.stdout);
      assert.match(start.stderr.trim(), new RegExp(`^hmac-file-server: the data directory is in use by pid ${process.pid}\\b`));
    } finally {
      await ops.close();
    }
  });

  it('a start that cannot bind its port leaves the queue and server.json untouched', async () => {
    const stale = JSON.stringify({ pid: 999_999, startedAtMs: 1, baseUrl: 'http://127.0.0.1:1', adminUrl: null });
    await writeFile(join(server.dataDir, 'server.json'), stale); // as a kill -9 leaves it
    const queueBefore = await snapshot(join(server.dataDir, 'queue'));
    assert.ok(Object.keys(queueBefore).length > 0, 'precondition: there is a queue file');
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const res = await serveExpectingFailure(serveEnv(server.dataDir, `127.0.0.1:${port}`));
      assert.equal(res.code, 1, res.stdout + res.stderr);
      assert.match(res.stderr, /address is already in use/);
      assert.equal(res.stdout.includes('Queue recovery completed'), false, 'the queue was never opened');
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
    assert.deepEqual(await snapshot(join(server.dataDir, 'queue')), queueBefore);
    assert.equal(await readFile(join(server.dataDir, 'server.json'), 'utf8'), stale);
    // And the data directory is free again: a normal start works.
    const again = await startServer({ dataDir: server.dataDir });
    await again.stop();
  });
});
