/**
 * The operator commands' bad input, against the built CLI and a stand-in admin API that records
 * every request: ids, --url and --limit are refused (exit 2, one line) before anything is sent.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/server.js';

interface FakeAdmin {
  readonly url: string;
  readonly requests: string[];
  close(): Promise<void>;
}

/** An admin API that records `METHOD path` and answers every request with `answer`. */
async function fakeAdmin(answer: (method: string, path: string) => { status: number; body: unknown }): Promise<FakeAdmin> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const a = answer(req.method!, req.url!);
    res.writeHead(a.status, { 'Content-Type': 'application/json' }).end(JSON.stringify(a.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const oneLine = (stderr: string) => stderr.trim().split('\n');

describe('operator commands: bad input is refused before anything is sent', () => {
  let admin: FakeAdmin;
  const cli = (args: string[]) => runCli([...args, '--url', admin.url], { HFS_CONFIG: '/dev/null', HFS_ADMIN_TOKEN: 'token' });
  before(async () => {
    admin = await fakeAdmin((_m, path) => {
      if (path.includes('/replay')) return { status: 200, body: { replayed: 1 } };
      if (path.startsWith('/admin/queue/jobs?')) return { status: 200, body: { jobs: [] } };
      if (path === '/admin/uploads/open' || path === '/admin/uploads/done') return { status: 200, body: { id: path.split('/').pop(), finished: path.endsWith('/done') } };
      return { status: 404, body: { code: 'ERR_NOT_FOUND', message: 'not found' } };
    });
  });
  after(async () => admin?.close());

  it('an id argument that is empty, a dot segment or has characters no id has exits 2 with one line', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['dlq', 'replay', '.'], /^hmac-file-server: "\." is not a dead letter id$/],
      [['dlq', 'purge', '..'], /^hmac-file-server: "\.\." is not a dead letter id$/],
      [['dlq', 'replay', 'tus-a/replay'], /"tus-a\/replay" is not a dead letter id$/],
      [['queue', 'retry', '.'], /^hmac-file-server: "\." is not a job id$/],
      [['queue', 'retry', 'put-a?b'], /"put-a\?b" is not a job id$/],
      [['quarantine', 'delete', '.'], /^hmac-file-server: "\." is not a quarantine id$/],
      [['quarantine', 'release', ''], /^hmac-file-server: "" is not a quarantine id$/],
      [['uploads', 'show', ''], /^hmac-file-server: "" is not an upload id$/],
      [['uploads', 'show', '.'], /^hmac-file-server: "\." is not an upload id$/],
      [['uploads', 'expire', 'abc', '../x'], /^hmac-file-server: "\.\.\/x" is not an upload id$/],
      [['uploads', 'expire', 'abc%2e'], /"abc%2e" is not an upload id$/],
    ];
    for (const [args, line] of cases) {
      const res = await cli(args);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.equal(res.stdout, '', args.join(' '));
      assert.equal(oneLine(res.stderr).length, 1, res.stderr);
      assert.match(res.stderr.trim(), line, args.join(' '));
    }
    assert.deepEqual(admin.requests, [], 'nothing was sent');
    // Offline too: refused before the data directory is looked at.
    const offline = await runCli(['dlq', 'purge', '.', '--offline'], { HFS_CONFIG: '/dev/null', HFS_DATA_DIR: '/nonexistent/hfs-data' });
    assert.deepEqual([offline.code, offline.stderr.trim()], [2, 'hmac-file-server: "." is not a dead letter id']);
  });

  it('a --url with credentials, a query or a fragment exits 2 with one line that does not echo it', async () => {
    const port = new URL(admin.url).port;
    for (const url of [
      `http://admin:S3cretPw@127.0.0.1:${port}/admin`,
      `http://S3cretPw@127.0.0.1:${port}/admin`,
      `http://127.0.0.1:${port}/admin?token=S3cretPw`,
      `http://127.0.0.1:${port}/admin?`,
      `http://127.0.0.1:${port}/admin#S3cretPw`,
      `http://admin:S3cretPw@127.0.0.1:99999/admin`,
    ]) {
      const res = await runCli(['queue', 'status', '--url', url], { HFS_CONFIG: '/dev/null', HFS_ADMIN_TOKEN: 'token' });
      assert.equal(res.code, 2, `${url}: ${res.stderr}`);
      assert.equal(oneLine(res.stderr).length, 1, res.stderr);
      assert.match(res.stderr, /^hmac-file-server: --url: /);
      assert.doesNotMatch(res.stderr + res.stdout, /S3cretPw|token=/);
    }
    assert.deepEqual(admin.requests, [], 'nothing was sent');
  });

  it('--limit above the admin API\'s 1000 exits 2, online and offline', async () => {
    for (const args of [['queue', 'list', '--limit', '1001'], ['dlq', 'list', '--limit', '5000']]) {
      for (const res of [await cli(args), await runCli([...args, '--offline'], { HFS_CONFIG: '/dev/null', HFS_DATA_DIR: '/nonexistent/hfs-data' })]) {
        assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
        assert.match(res.stderr, /^error: option '--limit <n>' argument '\d+' is invalid\. expected a whole number from 1 to 1000 /);
      }
    }
    assert.deepEqual(admin.requests, [], 'nothing was sent');
    const max = await cli(['queue', 'list', '--limit', '1000']);
    assert.equal(max.code, 0, max.stderr);
    assert.deepEqual(admin.requests.splice(0), ['GET /admin/queue/jobs?limit=1000']);
  });

  it('uploads expire --dry-run looks the named ids up: unknown and finished ones would fail (exit 1, one line each on stderr)', async () => {
    admin.requests.length = 0;
    const res = await cli(['uploads', 'expire', 'open', 'nope', 'done', '--dry-run']);
    assert.equal(res.code, 1, res.stderr);
    assert.equal(res.stdout.trim(), 'would expire 1 upload(s):\nopen');
    assert.deepEqual(oneLine(res.stderr), ['would fail nope: not found (404 ERR_NOT_FOUND)', 'would fail done: upload done is finished and can no longer be terminated']);
    const json = await cli(['uploads', 'expire', 'open', 'nope', '--dry-run', '--json']);
    assert.equal(json.code, 1);
    assert.deepEqual(JSON.parse(json.stdout), { dryRun: true, wouldExpire: ['open'], wouldFail: [{ id: 'nope', reason: 'not found (404 ERR_NOT_FOUND)' }] });
    assert.ok(admin.requests.every((r) => r.startsWith('GET ')), 'a dry run changes nothing');
    const ok = await cli(['uploads', 'expire', 'open', '--dry-run']);
    assert.deepEqual([ok.code, ok.stderr], [0, '']);
  });

  it('usage errors found by the parser are one line (exit 2), a suggestion included', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['queue', 'statu'], /^error: unknown command 'statu' \(Did you mean status\?\)/],
      [['queue', 'list', '--bogus'], /^error: unknown option '--bogus'/],
      [['uploads', 'show'], /^error: missing required argument 'id'/],
      [['queue', 'list', '--tier', 'urgent'], /^error: option '--tier <tier>' argument 'urgent' is invalid/],
      [['uploads', 'show', 'a', 'b'], /^error: too many arguments for 'show'/],
      [['sign'], /^error: required option '-p, --path <path>' not specified/],
    ];
    for (const [args, line] of cases) {
      const res = await runCli(args, { HFS_CONFIG: '/dev/null' });
      assert.equal(res.code, 2, args.join(' '));
      assert.deepEqual(oneLine(res.stderr).length, 1, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, line);
    }
  });

  it('uploads expire prints each failure on stderr (exit 1)', async () => {
    const res = await cli(['uploads', 'expire', 'nope']);
    assert.equal(res.code, 1);
    assert.equal(res.stdout.trim(), 'expired 0 upload(s)');
    assert.deepEqual(oneLine(res.stderr), ['failed nope: not found (404 ERR_NOT_FOUND)']);
  });

  it('a well-formed id still goes to its own route', async () => {
    admin.requests.length = 0;
    const res = await cli(['dlq', 'replay', 'tus-Ab_9-x']);
    assert.deepEqual([res.code, res.stdout.trim()], [0, 'replayed 1 dead letter(s)'], res.stderr);
    assert.deepEqual(admin.requests.splice(0), ['POST /admin/dead-letters/tus-Ab_9-x/replay']);
  });

  it('offline and online commands on a directory no server made are refused, and leave it untouched', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hfs-not-a-data-dir-'));
    try {
      await writeFile(join(dir, 'photo.jpg'), 'a file of the Go server');
      for (const args of [['uploads', 'list'], ['recover', '--offline', '--dry-run'], ['verify', '--offline']]) {
        const res = await runCli(args, { HFS_CONFIG: '/dev/null', HFS_DATA_DIR: dir });
        assert.equal(res.code, 1, `${args.join(' ')}: ${res.stdout}`);
        assert.deepEqual(oneLine(res.stderr), [`hmac-file-server: ${dir} is not a data directory of this server (no tus/, files/ or queue/ in it; no server has run on it): check storage.data_dir (HFS_DATA_DIR)`]);
      }
      assert.deepEqual(await readdir(dir), ['photo.jpg'], 'no lock file or store directories made');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
