/**
 * Logs say why (issue 15): each refused request's log line carries its error code, and a start
 * that fails prints one line with what to change. Plus the small command-line and HTTP details an
 * admin meets first: --version, --pretty in a pipe, sign's leading slash, HEAD's Content-Type,
 * and [cors] max_age on tus preflights.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, rawRequest, slotDir } from '../helpers/http.js';
import { startRadosGw, type RadosGw } from '../helpers/rgw.js';
import { CLI, REPO_ROOT, runCli, startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';
import { withTimeout } from '../helpers/service.js';

/** Runs `serve` to its exit (it must fail to start) and returns its exit code and output. */
function serveUntilExit(env: Record<string, string>, asNobody = false): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base = { ...process.env, HFS_SECRET: TEST_SECRET, HFS_CONFIG: join(REPO_ROOT, 'config/default.toml'), ...env };
  // Root writes anywhere: an unwritable data dir needs an unprivileged user.
  const [cmd, args] = asNobody
    ? ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, CLI, 'serve']]
    : [process.execPath, [CLI, 'serve']];
  return withTimeout(
    new Promise((resolve, reject) => {
      const p = spawn(cmd as string, args as string[], { cwd: REPO_ROOT, env: base, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.once('error', reject);
      p.once('close', (code) => resolve({ code, stdout, stderr }));
    }),
    30_000,
    'serve did not exit',
  );
}

function occupiedPort(): Promise<{ port: number; close(): Promise<void> }> {
  return new Promise((resolve) => {
    const s: Server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      resolve({ port, close: () => new Promise<void>((r) => s.close(() => r())) });
    });
  });
}

describe('request log lines carry the error code', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => server?.dispose());

  const lineFor = (method: string, path: string) =>
    server.waitForLog((l: LogLine) => l.msg === 'Request finished' && l.method === method && l.path === path, 15_000);

  it('a wrong secret (Prosody misconfigured) is logged as ERR_SIGNATURE_INVALID', async () => {
    const path = `${slotDir()}/a.txt`;
    const wrong = signSlotUrl({ secret: 'not-the-server-secret', path, baseUrl: server.uploadUrl, size: 5 });
    assert.equal((await rawRequest(server.baseUrl, pathOf(wrong.url), { method: 'PUT', body: 'hello' })).status, 403);
    const line = await lineFor('PUT', `/upload/${path}`);
    assert.equal(line.status, 403);
    assert.equal(line.code, 'ERR_SIGNATURE_INVALID');
  });

  it('other refusals: size mismatch, missing slot, tus protocol errors, not found', async () => {
    const dir = slotDir();
    const signed = signSlotUrl({ secret: TEST_SECRET, path: `${dir}/b.txt`, baseUrl: server.uploadUrl, size: 5 });
    await rawRequest(server.baseUrl, pathOf(signed.url), { method: 'PUT', body: 'hello, longer' });
    assert.equal((await lineFor('PUT', `/upload/${dir}/b.txt`)).code, 'ERR_SIGNATURE_INVALID', 'a size the signature does not bind');

    await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '5' } });
    assert.equal((await lineFor('POST', '/files/')).code, 'ERR_SLOT_MISSING');

    await rawRequest(server.baseUrl, '/files/nope', { method: 'PATCH', headers: { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body: 'x' });
    const tus412 = await lineFor('PATCH', '/files/nope');
    assert.equal(tus412.status, 412);
    assert.equal(tus412.code, 'ERR_TUS_RESUMABLE_REQUIRED');

    await rawRequest(server.baseUrl, `/upload/${slotDir()}/missing.txt`);
    assert.equal((await server.waitForLog((l) => l.msg === 'Request finished' && l.status === 404 && l.method === 'GET')).code, 'ERR_NOT_FOUND');
  });

  it('successful requests carry no code', async () => {
    await rawRequest(server.baseUrl, '/health');
    const line = await lineFor('GET', '/health');
    assert.equal(line.status, 200);
    assert.equal('code' in line, false);
  });
});

describe('start-up failures: one line with a hint', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-startup-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('port in use names HFS_LISTEN and [server] listen', async () => {
    const taken = await occupiedPort();
    try {
      const res = await serveUntilExit({ HFS_LISTEN: `127.0.0.1:${taken.port}`, HFS_DATA_DIR: join(dir, 'd1') });
      assert.equal(res.code, 1);
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
      assert.match(res.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken.port}: the address is already in use`));
      assert.match(res.stderr, /HFS_LISTEN or \[server\] listen/);
      assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      await taken.close();
    }
  });

  it('a metrics port in use names [metrics] listen', async () => {
    const taken = await occupiedPort();
    const config = join(dir, 'metrics.toml');
    await writeFile(config, `[metrics]\nlisten = "127.0.0.1:${taken.port}"\n`);
    try {
      const res = await serveUntilExit({ HFS_CONFIG: config, HFS_LISTEN: '127.0.0.1:0', HFS_DATA_DIR: join(dir, 'd2') });
      assert.equal(res.code, 1);
      assert.match(res.stderr, /already in use.*\[metrics\] listen/);
    } finally {
      await taken.close();
    }
  });

  it('an unwritable data dir names the path and the user', async () => {
    const parent = join(dir, 'readonly');
    await mkdir(parent);
    await chmod(parent, 0o555);
    await chmod(dir, 0o755); // nobody must reach the parent to be refused inside it
    const dataDir = join(parent, 'data');
    const asRoot = userInfo().uid === 0;
    const res = await serveUntilExit({ HFS_LISTEN: '127.0.0.1:0', HFS_DATA_DIR: dataDir }, asRoot);
    const user = asRoot ? 'nobody' : userInfo().username;
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.match(res.stderr, new RegExp(`cannot use the data dir ${dataDir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: permission denied for user ${user} \\(uid \\d+\\)`));
    assert.match(res.stderr, /HFS_DATA_DIR or \[storage\] data_dir/);
  });

  it('one line naming the setting: a listen host that does not resolve, TLS files that are not PEM, a data dir behind a dangling link', async () => {
    const unresolvable = await serveUntilExit({ HFS_LISTEN: 'nosuchhost.invalid:0', HFS_DATA_DIR: join(dir, 'd3') });
    assert.equal(unresolvable.code, 1, unresolvable.stderr);
    assert.equal(unresolvable.stderr.trim().split('\n').length, 1, unresolvable.stderr);
    assert.match(unresolvable.stderr, /cannot listen on nosuchhost\.invalid: the host name does not resolve.*HFS_LISTEN or \[server\] listen/);

    const notPem = join(dir, 'not-pem.txt');
    await writeFile(notPem, 'this is no certificate\n');
    const tlsConfig = join(dir, 'tls.toml');
    await writeFile(tlsConfig, `[server]\ntls_certificate = "${notPem}"\ntls_key = "${notPem}"\n`);
    const tls = await serveUntilExit({ HFS_CONFIG: tlsConfig, HFS_LISTEN: '127.0.0.1:0', HFS_DATA_DIR: join(dir, 'd4') });
    assert.equal(tls.code, 1, tls.stderr);
    assert.equal(tls.stderr.trim().split('\n').length, 1, tls.stderr);
    assert.match(tls.stderr, /\[server\] tls_certificate \/ tls_key: not a PEM/);
    assert.doesNotMatch(tls.stderr, /routines|at /);

    const dangling = join(dir, 'dangling');
    await symlink(join(dir, 'unmounted-volume', 'x'), dangling);
    const link = await serveUntilExit({ HFS_LISTEN: '127.0.0.1:0', HFS_DATA_DIR: dangling });
    assert.equal(link.code, 1, link.stderr);
    assert.equal(link.stderr.trim().split('\n').length, 1, link.stderr);
    assert.match(link.stderr, /cannot use the data dir .*dangling: a part of its path does not exist/);

    // S3 with no credentials anywhere (nothing listens at the endpoint: the chain fails first).
    const s3Config = join(dir, 's3.toml');
    await writeFile(s3Config, '[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "b"\nendpoint = "http://127.0.0.1:9"\n');
    const noCredentials = await serveUntilExit({ HFS_CONFIG: s3Config, HFS_LISTEN: '127.0.0.1:0', HFS_DATA_DIR: join(dir, 'd5'), AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: 'hfs-test-none', AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'), AWS_CONFIG_FILE: join(dir, 'none'), AWS_EC2_METADATA_DISABLED: 'true' });
    assert.equal(noCredentials.code, 1, noCredentials.stderr);
    assert.match(noCredentials.stderr, /^hmac-file-server: cannot start: cannot use S3: no credentials found; set \[storage\.s3\] access_key_id and secret_access_key/m);
  });
});

describe('start-up failures on S3: one line naming the cause and the key', () => {
  let gw: RadosGw;
  let dir: string;
  before(async () => {
    gw = await startRadosGw();
    dir = await mkdtemp(join(tmpdir(), 'hfs-startup-s3-'));
  });
  after(async () => {
    await gw?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const serveOnS3 = async (name: string, s3: { bucket: string; secret: string }) => {
    const config = join(dir, `${name}.toml`);
    const lines = ['[storage]', 'backend = "s3"', '[storage.s3]', `bucket = "${s3.bucket}"`, `endpoint = "${gw.endpoint}"`, 'force_path_style = true'];
    await writeFile(config, [...lines, `access_key_id = "${gw.accessKeyId}"`, `secret_access_key = "${s3.secret}"`, ''].join('\n'));
    const res = await serveUntilExit({ HFS_CONFIG: config, HFS_LISTEN: '127.0.0.1:0', HFS_DATA_DIR: join(dir, name) });
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.ok(![gw.accessKeyId, gw.secretAccessKey, s3.secret, gw.endpoint].some((x) => res.stderr.includes(x)), `no keys or endpoint: ${res.stderr}`);
    return res.stderr;
  };

  it('a bucket that does not exist names [storage.s3] bucket', async () => {
    const stderr = await serveOnS3('no-bucket', { bucket: 'hfs-no-such-bucket', secret: gw.secretAccessKey });
    assert.match(stderr, /^hmac-file-server: cannot start: cannot use S3: the bucket does not exist \(404\); check \[storage\.s3\] bucket/);
  });

  it('a secret key S3 refuses names [storage.s3] access_key_id and secret_access_key', async () => {
    const stderr = await serveOnS3('wrong-key', { bucket: 'hfs-any-bucket', secret: 'not-the-secret-key-000000000000000000000' });
    assert.match(stderr, /^hmac-file-server: cannot start: cannot use S3: S3 refused the credentials \(403\); check \[storage\.s3\] access_key_id and secret_access_key/);
  });
});

describe('command line and HTTP details', () => {
  it('--version prints the package version', async () => {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const res = await runCli(['--version']);
    assert.equal(res.code, 0);
    assert.equal(res.stdout.trim(), pkg.version);
  });

  it('sign --path with a leading "/" explains that the slot path has none', async () => {
    const res = await runCli(['sign', '--path', '/a/b.txt', '--size', '1', '--secret', 'x'.repeat(20), '--base-url', 'http://h/upload/']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /no leading "\/"; use "a\/b\.txt"/);
    const prefixed = await runCli(['sign', '--path', '/upload/a/b.txt', '--size', '1', '--secret', 'x'.repeat(20), '--base-url', 'http://h/upload/']);
    assert.match(prefixed.stderr, /without the upload prefix: "a\/b\.txt"/);
  });

  it('serve --pretty writes no colour codes into a pipe (and, started without the GC flags, says so)', async () => {
    // Pretty lines are not JSON, which the server helper reads: spawn directly, and without
    // SERVER_NODE_FLAGS, as `node dist/src/cli.js serve` would start.
    const dataDir = await mkdtemp(join(tmpdir(), 'hfs-pretty-'));
    const p = spawn(process.execPath, [CLI, 'serve', '--pretty'], {
      cwd: REPO_ROOT,
      env: { ...process.env, HFS_LISTEN: '127.0.0.1:0', HFS_DATA_DIR: dataDir, HFS_SECRET: TEST_SECRET, HFS_CONFIG: join(REPO_ROOT, 'config/default.toml') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    try {
      await withTimeout(
        new Promise<void>((resolve, reject) => {
          p.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('Server listening')) resolve();
          });
          p.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
        }),
        30_000,
        'no "Server listening" line',
      );
      assert.match(out, /INFO.*Server listening/);
      assert.doesNotMatch(out, /\x1b\[/, 'no ANSI escape codes');
      assert.match(out, /WARN.*started without the server's GC flags/);
      assert.match(out, /--initial-old-space-size=64/, 'the warning names the missing flag');
    } finally {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('close', r));
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  describe('against a running server', () => {
    let server: SpawnedServer;
    before(async () => {
      server = await startServer({ config: '[cors]\nmax_age = "90s"\n' });
    });
    after(async () => server?.dispose());

    it('started with SERVER_NODE_FLAGS (as npm start does), it does not warn about them', () => {
      assert.ok(server.logs.some((l) => l.msg === 'Server listening'));
      assert.equal(server.logs.filter((l) => String(l.msg).includes('GC flags')).length, 0);
    });

    it('HEAD of a download carries the Content-Type GET serves', async () => {
      const signed = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/pic.png`, baseUrl: server.uploadUrl, size: 4, scheme: 'v2', contentType: 'image/png' });
      const put = await rawRequest(server.baseUrl, pathOf(signed.url), { method: 'PUT', body: 'abcd', headers: { 'Content-Type': 'image/png' } });
      assert.equal(put.status, 201, put.text);
      const get = await rawRequest(server.baseUrl, pathOf(signed.getUrl));
      const head = await rawRequest(server.baseUrl, pathOf(signed.getUrl), { method: 'HEAD' });
      assert.equal(get.headers['content-type'], 'image/png');
      assert.equal(head.headers['content-type'], get.headers['content-type']);
      assert.equal(head.headers['content-length'], '4');
    });

    it('[cors] max_age applies to tus preflights as to the upload prefix', async () => {
      const preflight = { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'upload-slot, tus-resumable' };
      const tus = await rawRequest(server.baseUrl, '/files/', { method: 'OPTIONS', headers: preflight });
      assert.equal(tus.status, 204);
      assert.equal(tus.headers['access-control-max-age'], '90');
      assert.equal(tus.headers['tus-version'], '1.0.0', "still @tus/server's own answer");
      assert.match(String(tus.headers['access-control-allow-headers']), /Upload-Slot/i);
      const put = await rawRequest(server.baseUrl, '/upload/x/y.txt', { method: 'OPTIONS', headers: { ...preflight, 'Access-Control-Request-Method': 'PUT' } });
      assert.equal(put.headers['access-control-max-age'], '90');
    });
  });
});

describe('"Server listening" with [server] public_url', () => {
  it('says where it listens (address) and what clients are told (publicUrl, the URLs); a tus creation points at the public URL', async () => {
    const server = await startServer({ config: '[server]\npublic_url = "https://files.example.org"\n' });
    try {
      const line = server.logs.find((l: LogLine) => l.msg === 'Server listening')!;
      assert.match(String(line.address), /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(line.publicUrl, 'https://files.example.org');
      assert.equal(line.uploadUrl, 'https://files.example.org/upload/');
      assert.equal(line.tusUrl, 'https://files.example.org/files/');
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/p.bin`, baseUrl: 'https://files.example.org/upload/', size: 3 });
      const created = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '3', 'Upload-Slot': slot.url } });
      assert.equal(created.status, 201, created.text);
      assert.match(String(created.headers.location), /^https:\/\/files\.example\.org\/files\/[A-Za-z0-9_-]+$/);
    } finally {
      await server.dispose();
    }
  });
});
