/**
 * The data-directory lock (src/ops/data-dir-lock.ts) between real processes: exclusive, the
 * holder's pid named, dropped by the kernel when the holder dies (kill -9 included).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { acquireDataDirLock, dataDirLockHeld, DataDirLockedError } from '../../src/ops/data-dir-lock.js';
import { withTimeout } from '../helpers/service.js';
import { REPO_ROOT } from '../helpers/server.js';

const MODULE = pathToFileURL(join(REPO_ROOT, 'dist/src/ops/data-dir-lock.js')).href;

/** Another process that tries the lock and prints one JSON line: {held: true} or {lockedBy}. It then stays until killed. */
function contender(file: string): { proc: ChildProcess; line: Promise<{ held?: true; lockedBy?: number | null }> } {
  const script = `
    const { acquireDataDirLock, DataDirLockedError } = await import(${JSON.stringify(MODULE)});
    try { acquireDataDirLock(${JSON.stringify(file)}); console.log(JSON.stringify({ held: true })); }
    catch (e) { if (!(e instanceof DataDirLockedError)) throw e; console.log(JSON.stringify({ lockedBy: e.holderPid })); }
    setInterval(() => {}, 1000);`;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`contender exited with ${code}`)));
  });
  return { proc, line: withTimeout(line, 15_000, 'the contender printed nothing').then((l) => JSON.parse(l)) };
}

const kill = (proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM') =>
  new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill(signal);
  });

describe('data-directory lock', () => {
  let dir: string;
  let file: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-dirlock-'));
    file = join(dir, 'server.lock');
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('is exclusive across processes and names the holder; released, the next process gets it', async () => {
    const lock = acquireDataDirLock(file);
    const refused = contender(file);
    try {
      assert.deepEqual(await refused.line, { lockedBy: process.pid });
    } finally {
      await kill(refused.proc);
    }
    lock.release();
    lock.release(); // idempotent
    const next = contender(file);
    try {
      assert.deepEqual(await next.line, { held: true });
    } finally {
      await kill(next.proc);
    }
  });

  it('a holder killed with SIGKILL leaves nothing behind that blocks the next owner', async () => {
    const holder = contender(file);
    assert.deepEqual(await holder.line, { held: true });
    assert.throws(() => acquireDataDirLock(file), (e: unknown) => e instanceof DataDirLockedError && e.holderPid === holder.proc.pid);
    await kill(holder.proc, 'SIGKILL');
    const lock = acquireDataDirLock(file);
    lock.release();
  });

  it('a probe in the holder\'s own process neither takes nor drops the lock', async () => {
    const lock = acquireDataDirLock(file);
    try {
      assert.equal(dataDirLockHeld(file), true);
      assert.throws(() => acquireDataDirLock(file), DataDirLockedError);
      // Closing the probe's descriptor must not drop the process's record lock (POSIX would).
      const other = contender(file);
      try {
        assert.deepEqual(await other.line, { lockedBy: process.pid });
      } finally {
        await kill(other.proc);
      }
    } finally {
      lock.release();
    }
    assert.equal(dataDirLockHeld(file), false);
  });

  it('a file that is not a lock file is refused with a clear reason, not taken over', async () => {
    const odd = join(dir, 'odd.lock');
    await writeFile(odd, 'not a database, something else entirely');
    assert.throws(() => acquireDataDirLock(odd), /is not a lock file this program wrote/);
  });
});
