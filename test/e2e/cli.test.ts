/** The command line: config check, sign, serve's config errors and first-start secret. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathOf, rawRequest, slotDir } from '../helpers/http.js';
import { REPO_ROOT, runCli, startServer, TEST_SECRET } from '../helpers/server.js';

const GO_3X_CONFIG = `
[server]
listen_address = "8080"
storage_path = "/var/lib/hmac-file-server"
max_upload_size = "1GB"
metrics_enabled = true
deduplication_enabled = true
[security]
secret = "a-long-enough-go-secret"
enablejwt = false
[uploads]
allowed_extensions = [".jpg"]
[timeouts]
readtimeout = "300s"
[workers]
numworkers = 4
uploadqueuesize = 50
`;

describe('command line', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-cli-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('config check: the shipped default config is valid', async () => {
    const res = await runCli(['config', 'check', 'config/default.toml']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /config\/default\.toml: valid/);
  });

  it('config check: an invalid file exits 2 with one line naming each key and reason', async () => {
    const file = join(dir, 'bad.toml');
    await writeFile(file, '[server]\nmax_upload_size = "ten"\nlisten = true\n[workers]\nqueue_backpressure_threshold = 2\n');
    const res = await runCli(['config', 'check', file]);
    assert.equal(res.code, 2);
    assert.equal(res.stderr.trim().split('\n').length, 1);
    assert.match(res.stderr, /server\.max_upload_size: "ten" is not a size/);
    assert.match(res.stderr, /server\.listen: /);
    assert.match(res.stderr, /workers\.queue_backpressure_threshold: /);
  });

  it('config check: CORS "*" with credentials is refused (exit 2, key path)', async () => {
    const file = join(dir, 'cors.toml');
    await writeFile(file, '[cors]\nallowed_origins = ["*"]\nallow_credentials = true\n');
    const res = await runCli(['config', 'check', file]);
    assert.equal(res.code, 2, res.stdout);
    assert.match(res.stderr, /cors\.allow_credentials: cannot be true while allowed_origins holds "\*"/);
  });

  it('config check: TOML syntax errors name the line', async () => {
    const file = join(dir, 'syntax.toml');
    await writeFile(file, '[server]\nlisten = "127.0.0.1:1\n');
    const res = await runCli(['config', 'check', file]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /not valid TOML at line 2/);
  });

  it('config check: a Go HMAC File Server 3.x config is valid with warnings', async () => {
    const file = join(dir, 'go.toml');
    await writeFile(file, GO_3X_CONFIG);
    const res = await runCli(['config', 'check', file]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /valid, \d+ warning/);
    assert.match(res.stdout, /mapped: server\.listen_address → server\.listen = :8080 \(all interfaces, IPv4 and IPv6\)/);
    assert.match(res.stdout, /mapped: server\.max_upload_size "1GB" in Go's binary units → server\.max_upload_size = 1GiB/);
    assert.doesNotMatch(res.stdout, /unknown key/, 'every key of this Go config is read or explained');
    assert.match(res.stdout, /warning: timeouts\.readtimeout: /);
    const json = await runCli(['config', 'check', '--json', file]);
    assert.equal(JSON.parse(json.stdout).valid, true);
  });

  it('config check: a missing file exits 2', async () => {
    const res = await runCli(['config', 'check', join(dir, 'nope.toml')]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /cannot read .*nope\.toml: ENOENT/);
  });

  it('serve: a bad environment override exits 2 naming the key and the variable', async () => {
    const res = await runCli(['serve'], { HFS_LISTEN: 'not-an-address', HFS_DATA_DIR: join(dir, 'd') });
    assert.equal(res.code, 2);
    assert.match(res.stderr, /server\.listen \(from HFS_LISTEN\): "not-an-address" is not a listen address/);
  });

  it('sign: bad flags exit 2 with a reason; no secret exits 1 with what to do', async () => {
    const noSize = await runCli(['sign', '--path', 'a/b.txt', '--secret', 's']);
    assert.equal(noSize.code, 2);
    assert.match(noSize.stderr, /needs size/);
    const badScheme = await runCli(['sign', '--path', 'a/b.txt', '--size', '1', '--scheme', 'v9', '--secret', 's']);
    assert.equal(badScheme.code, 2);
    const badSize = await runCli(['sign', '--path', 'a/b.txt', '--size', 'lots', '--secret', 's']);
    assert.equal(badSize.code, 2);
    const badPath = await runCli(['sign', '--path', 'a/../b.txt', '--size', '1', '--secret', 's']);
    assert.equal(badPath.code, 2);
    const noSecret = await runCli(['sign', '--path', 'a/b.txt', '--size', '1'], { HFS_DATA_DIR: join(dir, 'empty'), HFS_SECRET: '', HFS_CONFIG: join(dir, 'none.toml') });
    assert.equal(noSecret.code, 2, noSecret.stderr); // HFS_CONFIG names a missing file
    const noSecret2 = await runCli(['sign', '--path', 'a/b.txt', '--size', '1', '--config', 'config/default.toml'], { HFS_DATA_DIR: join(dir, 'empty'), HFS_SECRET: '' });
    assert.equal(noSecret2.code, 1);
    assert.match(noSecret2.stderr, /no secret: /);
  });

  it('sign: an empty or blank secret is refused (exit 2, one line), nothing is signed', async () => {
    for (const [args, env] of [
      [['--secret', ''], {}],
      [['--secret', '  \t'], {}],
      [[], { HFS_SECRET: ' ' }],
    ] as Array<[string[], Record<string, string>]>) {
      const res = await runCli(['sign', '--path', 'a/b.txt', '--size', '1', '--config', 'config/default.toml', ...args], { HFS_DATA_DIR: join(dir, 'empty'), ...env });
      assert.equal(res.code, 2, `${JSON.stringify(args)} ${JSON.stringify(env)}: ${res.stdout}`);
      assert.equal(res.stdout, '');
      assert.match(res.stderr, /^hmac-file-server: (--secret|the signing secret) is empty[^\n]*\n$/);
    }
  });

  it('sign mints URLs for every scheme that the server accepts', async () => {
    const server = await startServer();
    try {
      for (const scheme of ['v', 'v2', 'token', 'v3']) {
        const path = `${slotDir()}/signed by cli.txt`;
        const res = await runCli(['sign', '--path', path, '--size', '5', '--type', 'text/plain', '--scheme', scheme, '--base-url', server.uploadUrl, '--json'], { HFS_SECRET: TEST_SECRET });
        assert.equal(res.code, 0, res.stderr);
        const { url, getUrl } = JSON.parse(res.stdout) as { url: string; getUrl: string };
        const put = await rawRequest(server.baseUrl, pathOf(url), { method: 'PUT', body: 'hello', headers: { 'Content-Type': 'text/plain' } });
        assert.equal(put.status, 201, `${scheme}: ${put.text}`);
        assert.equal((await rawRequest(server.baseUrl, pathOf(getUrl))).text, 'hello');
      }
    } finally {
      await server.dispose();
    }
  });

  it('first start without a secret generates one (0600, in the data dir), never prints it, and reuses it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hfs-secret-'));
    try {
      const first = await startServer({ secret: null, dataDir });
      const secretFile = join(dataDir, 'secret');
      const secret = (await readFile(secretFile, 'utf8')).trim();
      assert.ok(secret.length >= 40, 'at least 256 bits, base64url');
      assert.equal((await stat(secretFile)).mode & 0o777, 0o600);
      const line = await first.waitForLog((l) => String(l.msg).startsWith('Generated a new signing secret'));
      assert.equal(line.file, secretFile);
      assert.ok(!first.output().includes(secret));
      await first.dispose();

      const second = await startServer({ secret: null, dataDir });
      try {
        assert.equal((await readFile(secretFile, 'utf8')).trim(), secret, 'same secret after restart');
        const signed = await runCli(['sign', '--path', `${slotDir()}/x.txt`, '--size', '2', '--base-url', second.uploadUrl, '--config', 'config/default.toml'], { HFS_DATA_DIR: dataDir, HFS_SECRET: '' });
        assert.equal(signed.code, 0, signed.stderr);
        assert.equal((await rawRequest(second.baseUrl, pathOf(signed.stdout.trim()), { method: 'PUT', body: 'hi' })).status, 201);
        assert.ok(!second.logs.some((l) => String(l.msg).startsWith('Generated')));
      } finally {
        await second.dispose();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('npm start runs the server with HFS_* environment overrides', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hfs-npm-'));
    const proc = spawn('npm', ['start', '--silent', '--ignore-scripts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, HFS_LISTEN: '127.0.0.1:0', HFS_DATA_DIR: dataDir, HFS_SECRET: 's3cret-for-npm-start-test' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // npm does not pass SIGTERM on to the server: signal the whole group
    });
    try {
      const listening = await new Promise<Record<string, string>>((resolve, reject) => {
        let buf = '';
        proc.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          for (const line of buf.split('\n')) {
            if (line.includes('"Server listening"')) resolve(JSON.parse(line) as Record<string, string>);
          }
        });
        proc.once('exit', (code) => reject(new Error(`npm start exited ${code}`)));
      });
      assert.match(listening.address!, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(listening.tusUrl, `${listening.address}/files/`);
      assert.equal(listening.uploadUrl, `${listening.address}/upload/`);
      assert.equal((await rawRequest(listening.address!, '/health')).status, 200);
    } finally {
      process.kill(-proc.pid!, 'SIGTERM');
      await new Promise((r) => proc.once('close', r));
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
