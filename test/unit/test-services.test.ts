/**
 * The helpers that start external programs for tests must never hang the suite, and every
 * program a test starts must be installed by scripts/ensure-system-deps.sh on a fresh machine.
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/server.js';
import { startService, withTimeout } from '../helpers/service.js';

describe('startService', () => {
  it('fails at once naming the package when the binary is missing', async () => {
    await assert.rejects(
      startService({ cmd: 'hfs-no-such-binary', args: [], pkg: 'hfs-fake-package', ready: /never/ }),
      /hfs-no-such-binary is not installed.*apt-get install -y hfs-fake-package/,
    );
  });

  it('fails with the output when the program exits before it is ready', async () => {
    await assert.rejects(
      startService({ cmd: 'sh', args: ['-c', 'echo broken config; exit 3'], pkg: 'dash', ready: /ready/ }),
      /sh exited with 3:\nbroken config/,
    );
  });

  it('gives up after the ready deadline and stops the program', async () => {
    const err = await startService({ cmd: 'sleep', args: ['30'], pkg: 'coreutils', ready: /ready/, readyTimeoutMs: 200 }).catch((e: Error) => e);
    assert.ok(err instanceof Error);
    assert.match(err.message, /no answer within 200 ms/);
  });

  it('resolves on the ready line and stops on request', async () => {
    const s = await startService({ cmd: 'sh', args: ['-c', 'echo up and ready; exec sleep 30'], pkg: 'dash', ready: /ready/ });
    assert.match(s.output(), /up and ready/);
    await s.stop();
    assert.notEqual(s.proc.signalCode ?? s.proc.exitCode, null);
  });

  it('withTimeout passes a value through and rejects a late one', async () => {
    assert.equal(await withTimeout(Promise.resolve(7), 100, 'x'), 7);
    await assert.rejects(withTimeout(new Promise(() => {}), 50, 'late'), /late \(no answer within 50 ms\)/);
  });
});

/** Programs the tests start, and the Debian package that ships each. */
const PROGRAMS: Array<[binary: string, pkg: string]> = [
  ['redis-server', 'redis-server'],
  ['prosody', 'prosody'],
  ['go-sendxmpp', 'go-sendxmpp'],
  ['slixmpp', 'python3-slixmpp'],
  ['chromium', 'chromium'],
  ['clamd', 'clamav-daemon'],
  ['radosgw', 'radosgw'],
  ['ceph-mon', 'ceph-mon'],
  ['ceph-osd', 'ceph-osd'],
  ['ceph', 'ceph-common'],
  ['ceph-authtool', 'ceph-common'],
  ['radosgw-admin', 'ceph-common'],
  ['monmaptool', 'ceph-base'],
  ['tusclient', 'python3-tuspy'],
  ['nginx', 'nginx'],
  ['caddy', 'caddy'],
  ['haproxy', 'haproxy'],
];

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (/\.(ts|py)$/.test(e.name) && !e.name.endsWith('test-services.test.ts')) out.push(p);
  }
  return out;
}

describe('fresh machine', () => {
  it('every program a test starts is installed by scripts/ensure-system-deps.sh', async () => {
    const script = await readFile(join(REPO_ROOT, 'scripts/ensure-system-deps.sh'), 'utf8');
    const installed = new Set(script.split('\n').filter((l) => !l.trim().startsWith('#')).join(' ').split(/[\s()]+/));
    const sources = await Promise.all((await filesUnder(join(REPO_ROOT, 'test'))).map(async (f) => [f, await readFile(f, 'utf8')] as const));
    const missing: string[] = [];
    for (const [binary, pkg] of PROGRAMS) {
      const users = sources.filter(([, text]) => new RegExp(`['"/]${binary}['"]|import ${binary}\\b`).test(text)).map(([f]) => f.slice(REPO_ROOT.length + 1));
      if (users.length > 0 && !installed.has(pkg)) missing.push(`${binary} (${pkg}) used by ${users.join(', ')}`);
    }
    assert.deepEqual(missing, []);
  });
});
