/**
 * The README's "curl recipes" run as written (bash, curl, openssl) against a spawned server,
 * in order and in one shell; each recipe's output and the server's request log are checked.
 * A recipe added to or removed from the README without a check here fails the test.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';

const EXPECTED = ['setup', 'sign-cli', 'sign-openssl', 'put', 'download', 'tus-create', 'tus-patch', 'tus-head', 'tus-resume'];

/** The `<!-- recipe: id -->` + fenced sh blocks of the README's "## curl recipes" section. */
async function readRecipes(): Promise<Array<{ id: string; script: string }>> {
  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## curl recipes\n');
  assert.ok(start >= 0, 'README has a "## curl recipes" section');
  const rest = readme.slice(start + 1);
  const next = rest.indexOf('\n## ', 3);
  const section = next === -1 ? rest : rest.slice(0, next);
  return [...section.matchAll(/<!-- recipe: ([\w-]+) -->\n```sh\n([\s\S]*?)```/g)].map((m) => ({ id: m[1]!, script: m[2]! }));
}

function bash(script: string, cwd: string, env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const p = spawn('bash', ['-c', script], { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cwd, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('README curl recipes', () => {
  let server: SpawnedServer;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-recipes-'));
    await symlink(join(REPO_ROOT, 'dist'), join(dir, 'dist')); // `node dist/src/cli.js` as in the README
    server = await startServer();
  });
  after(async () => {
    await server?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('every recipe runs as written and does what the README says', async () => {
    const recipes = await readRecipes();
    assert.deepEqual(recipes.map((r) => r.id), EXPECTED, 'the recipes this test checks, in README order');

    // One shell, in order, as a reader would paste them; markers split the output per recipe.
    const script = ['set -euo pipefail', ...recipes.flatMap((r) => [`echo '::begin ${r.id}'`, r.script, `echo '::end ${r.id}'`])].join('\n');
    const startIndex = server.logs.length;
    const res = await bash(script, dir, { HFS: server.baseUrl, HFS_SECRET: TEST_SECRET });
    const out = new Map<string, string>();
    for (const m of res.stdout.matchAll(/::begin ([\w-]+)\n([\s\S]*?)::end \1\n/g)) out.set(m[1]!, m[2]!);
    const failed = recipes.find((r) => !out.has(r.id));
    assert.equal(res.code, 0, `recipe "${failed?.id}" failed:\n${res.stdout}\n${res.stderr}`);
    assert.equal(res.stderr, '', 'no warnings or errors printed');

    const requests = server.logs.slice(startIndex).filter((l: LogLine) => l.msg === 'Request finished');
    const slotUrl = /^(http:\/\/\S+\/upload\/[0-9a-f]{16}\/hello\.txt)\?v=([0-9a-f]{64})$/;
    assert.match(out.get('sign-cli')!.trim(), slotUrl);
    const openssl = slotUrl.exec(out.get('sign-openssl')!.trim());
    assert.ok(openssl, out.get('sign-openssl'));
    assert.ok(openssl[1]!.startsWith(`${server.baseUrl}/upload/`));

    // put: the openssl-signed slot was accepted.
    const put = requests.find((l) => l.method === 'PUT');
    assert.equal(put?.status, 201);
    assert.equal(put?.path, new URL(openssl[1]!).pathname);
    // download: whole file (cmp passed under set -e) and a Range answered 206.
    assert.equal(out.get('download'), 'hello\n');
    const gets = requests.filter((l) => l.method === 'GET' && l.path === put?.path).map((l) => l.status);
    assert.deepEqual(gets, [200, 206]);

    // tus: create, first PATCH of 1 MB, HEAD says 1000000, the rest from there, GET identical.
    const upload = out.get('tus-create')!.trim();
    assert.match(upload, new RegExp(`^${server.baseUrl}/files/[A-Za-z0-9_-]{20,}$`));
    const uploadPath = new URL(upload).pathname;
    assert.equal(out.get('tus-head'), 'server has 1000000 of 3000000 bytes\n');
    assert.equal(out.get('tus-resume'), 'identical\n');
    const tus = requests.filter((l) => l.path === uploadPath || (l.method === 'POST' && l.path === '/files/'));
    assert.deepEqual(
      tus.map((l) => `${l.method} ${l.status}`),
      ['POST 201', 'PATCH 204', 'HEAD 200', 'PATCH 204'],
    );
  });
});
