/**
 * Migrating from the Go HMAC File Server 3.4: `config check` and a real start on configs written
 * like each of its shipped examples (test/fixtures/go-configs.ts). The check prints one line per
 * mapped key with the effective value; the started server enforces the same upload policy.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { GO_CONFIGS, goConfig } from '../fixtures/go-configs.js';
import { pathOf, randomData, rawRequest, slotDir } from '../helpers/http.js';
import { runCli, startServer, TEST_SECRET, type LogLine } from '../helpers/server.js';

const MiB = 2 ** 20;
const HOUR = 3_600_000;

/** What each example must end up as, checked on the running server. */
const EXPECTED: Record<string, { maxBytes: number; allowed: number; graceMs: number; level: string }> = {
  'network-switching': { maxBytes: 100 * MiB, allowed: 26, graceMs: 72 * HOUR, level: 'info' },
  docker: { maxBytes: 100 * MiB, allowed: 26, graceMs: 0, level: 'info' },
  systemd: { maxBytes: 100 * MiB, allowed: 26, graceMs: 0, level: 'info' },
  'mobile-resilient': { maxBytes: 500 * MiB, allowed: 31, graceMs: 72 * HOUR, level: 'info' },
  'production-enhanced': { maxBytes: 1024 * MiB, allowed: 37, graceMs: 0, level: 'debug' },
  'enhanced-security': { maxBytes: 100 * MiB, allowed: 6, graceMs: 0, level: 'info' },
  minimal: { maxBytes: 10e9, allowed: 0, graceMs: 0, level: 'info' },
};

const ACCEPT_TTL = '\n[migration]\naccept_unenforced = ["server.filettlenabled"]\n';

/**
 * For a start on this test machine: metrics on the main listener instead of a public port
 * (the public mapping is checked by `config check`), and Redis off (no Redis runs here).
 */
const forLocalStart = (toml: string) =>
  toml.replace(/^\s*(metrics_port|metricsport|port)\s*=.*$/gm, '').replace('redisenabled = true', 'redisenabled = false');

describe('Go 3.4 example configs: config check', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-goconf-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const check = async (name: string, toml: string) => {
    const file = join(dir, `${name}.toml`);
    await writeFile(file, toml);
    return runCli(['config', 'check', file]);
  };

  for (const { name, toml } of GO_CONFIGS) {
    if (name === 'production-enhanced') continue;
    it(`${name}: valid; listen and metrics said with their effective address`, async () => {
      const res = await check(name, toml);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /mapped: server\.listen_address → server\.listen = :8080 \(all interfaces, IPv4 and IPv6\)/);
      if (/port\s*=\s*"?9090/.test(toml)) assert.match(res.stdout, /→ metrics\.listen = :9090 \(public on all interfaces/);
      assert.doesNotMatch(res.stdout, /unknown key/);
      assert.match(res.stdout, /warning: server\.upload_path: "\/": slot URLs at the root, as Go served them/);
      if (EXPECTED[name]!.maxBytes !== 10e9) assert.match(res.stdout, new RegExp(`→ server\\.max_upload_size = ${EXPECTED[name]!.maxBytes / MiB}MiB`));
    });
  }

  it('network-switching: the grace keys, the renamed worker keys, "INFO"', async () => {
    const res = await check('ns', goConfig('network-switching'));
    assert.match(res.stdout, /mapped: security\.token_grace_period → security\.expiry_grace = 72h/);
    assert.match(res.stdout, /mapped: workers\.num_workers → workers\.numworkers = 20/);
    assert.match(res.stdout, /mapped: workers\.upload_queue_size → workers\.queue_size = 2000/);
    assert.match(res.stdout, /warning: security\.expiry_grace: v3 URLs are accepted up to 72h after they expire/);
  });

  it('a Go config without its secret is refused (Go did not start; a generated one would fail every signed upload)', async () => {
    const toml = '[server]\nlisten_address = "8080"\n[security]\nsecret = ""\n';
    const refused = await check('nosecret', toml);
    assert.equal(refused.code, 2);
    assert.equal(refused.stderr.trim().split('\n').length, 1);
    assert.match(refused.stderr, /security\.secret: empty in a Go config/);
    const file = join(dir, 'nosecret-env.toml');
    await writeFile(file, toml);
    assert.equal((await runCli(['config', 'check', file], { HFS_SECRET: 'from-the-environment-0123456789' })).code, 0, 'HFS_SECRET gives it');
  });

  it('production-enhanced: refused with one line naming filettlenabled; runs once accepted', async () => {
    const refused = await check('pe', goConfig('production-enhanced'));
    assert.equal(refused.code, 2);
    assert.equal(refused.stderr.trim().split('\n').length, 1);
    assert.match(refused.stderr, /server\.filettlenabled: cannot be enforced: .*\[migration\] accept_unenforced/);
    const accepted = await check('pe-ok', goConfig('production-enhanced') + ACCEPT_TTL);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.match(accepted.stdout, /warning: server\.filettlenabled: not enforced/);
    assert.match(accepted.stdout, /mapped: redis\.redisaddr → redis\.url = redis:\/\/localhost:6379\/0/);
  });
});

describe('Go 3.4 example configs: a real start enforces the same policy', () => {
  for (const { name, toml } of GO_CONFIGS) {
    const expected = EXPECTED[name]!;
    it(`${name}: starts; policy, log level and refusals as in Go`, async () => {
      const config = forLocalStart(name === 'production-enhanced' ? toml + ACCEPT_TTL : toml);
      const server = await startServer({ config });
      try {
        const policy = await server.waitForLog((l) => l.msg === 'Upload policy');
        const uploads = policy.uploads as { maxBytes: number; allowedExtensions: string[] };
        assert.equal(uploads.maxBytes, expected.maxBytes);
        assert.equal(uploads.allowedExtensions.length, expected.allowed);
        assert.equal(policy.expiryGraceMs, expected.graceMs);
        const levels: Record<string, number> = { debug: 20, info: 30 };
        assert.ok(server.logs.every((l: LogLine) => (l.level ?? 30) >= levels[expected.level]!), 'nothing below the configured level');
        assert.ok(server.logs.some((l) => l.msg === 'Config warning' && l.code === 'CONFIG_LEGACY_KEY' && l.key === 'server.listen_address'));

        const dir = slotDir();
        const put = (name: string, size: number, body?: string) =>
          rawRequest(server.baseUrl, pathOf(signSlotUrl({ secret: TEST_SECRET, path: `${dir}/${name}`, baseUrl: server.uploadUrl, size }).url), {
            method: 'PUT',
            headers: { 'Content-Length': size },
            ...(body === undefined ? {} : { body }),
          });
        assert.equal((await put('ok.TXT', 5, 'hello')).status, 201);
        // Slots at the root, as Go served them (its catch-all "/" handler): the links in chat
        // histories keep working, and the server's own paths keep theirs.
        assert.equal(new URL(server.uploadUrl).pathname, '/');
        assert.equal((await rawRequest(server.baseUrl, `/${dir}/ok.TXT`)).text, 'hello');
        for (const own of ['/health', '/ready']) assert.equal((await rawRequest(server.baseUrl, own)).status, 200, own);
        assert.equal((await rawRequest(server.baseUrl, '/health', { method: 'PUT', body: 'x' })).status, 405, 'not a slot');
        if (expected.allowed > 0) assert.equal((await put('tool.exe', 5, 'hello')).status, 415);
        if (expected.maxBytes < 10e9) {
          const big = await put('big.txt', expected.maxBytes + 1, '');
          assert.equal(big.status, 413);
        }
        if (expected.graceMs > 0) {
          const expires = Math.floor(Date.now() / 1000) - 3600;
          const late = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/late.jpg`, baseUrl: server.uploadUrl, scheme: 'v3', expires });
          assert.equal((await rawRequest(server.baseUrl, pathOf(late.url), { method: 'PUT', body: 'an hour late' })).status, 201, 'an hour after expiry, within the mapped grace');
        }
      } finally {
        await server.dispose();
      }
    });
  }
});

describe("files the Go server kept in its storage_path (read here as storage.data_dir)", () => {
  const FOREIGN = 'The data directory holds entries this server did not make; they are not served (files of the Go HMAC File Server go under files/: docs/go-migration.md)';

  it('are named at start instead of 404s in silence; moved under files/, each is served at its old URL', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hfs-gofiles-'));
    try {
      // Go kept <storage_path>/<URL path>; its own .metadata folder is hidden and not named.
      const photo = randomData(3000);
      await mkdir(join(dataDir, 'f00dfeed'));
      await writeFile(join(dataDir, 'f00dfeed', 'Holiday photo.jpg'), photo);
      await writeFile(join(dataDir, 'notes.txt'), 'hello');
      await mkdir(join(dataDir, '.metadata'));
      let server = await startServer({ dataDir });
      const url = (server: { uploadUrl: string }, path: string) => `${new URL(server.uploadUrl).pathname}${path}`;
      try {
        const warned = await server.waitForLog((l) => l.msg === FOREIGN);
        assert.deepEqual([warned.count, warned.entries], [2, ['f00dfeed', 'notes.txt']]);
        assert.equal((await rawRequest(server.baseUrl, url(server, 'f00dfeed/Holiday%20photo.jpg'))).status, 404);
      } finally {
        await server.dispose();
      }
      for (const name of ['f00dfeed', 'notes.txt']) await rename(join(dataDir, name), join(dataDir, 'files', name));
      server = await startServer({ dataDir });
      try {
        const got = await rawRequest(server.baseUrl, url(server, 'f00dfeed/Holiday%20photo.jpg'));
        assert.equal(got.status, 200);
        assert.ok(got.body.equals(photo));
        // No record of the upload: typed by name as Go served it, through the same content policy.
        assert.deepEqual([got.headers['content-type'], got.headers['content-disposition']], ['image/jpeg', undefined], 'shown in place, as chat histories show it');
        const notes = await rawRequest(server.baseUrl, url(server, 'notes.txt'));
        assert.deepEqual([notes.text, notes.headers['content-type']], ['hello', 'text/plain; charset=utf-8']);
        await writeFile(join(dataDir, 'files', 'page.html'), '<script>alert(1)</script>');
        const page = await rawRequest(server.baseUrl, url(server, 'page.html'));
        assert.deepEqual([page.headers['content-type'], page.headers['content-disposition']], ['application/octet-stream', 'attachment; filename="page.html"'], 'never a page on our origin');
        assert.ok(!server.logs.some((l) => l.msg === FOREIGN), 'nothing foreign left: no warning');
      } finally {
        await server.dispose();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
