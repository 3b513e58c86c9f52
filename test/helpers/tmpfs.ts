/**
 * A small real file system for the storage-pressure tests: a tmpfs of a few MiB mounted on a
 * temp dir, and a filler file that takes its room to any exact amount. Mounting needs root (CI
 * runs the suite as root): without it the test fails at once, saying so. Always unmount in
 * cleanup (`after`), also when the test failed: unmount() stops nothing itself, so dispose of
 * the server writing there first.
 */
import { execFile } from 'node:child_process';
import { statfsSync } from 'node:fs';
import { mkdtemp, open, rmdir, stat, truncate, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingBinaryError } from './service.js';

export interface SmallDisk {
  /** The mount point: put the data directory below it. */
  readonly dir: string;
  /** Bytes this process may still write (statfs bavail). */
  free(): number;
  /** Grows or shrinks the filler so that exactly `bytes` stay free (a multiple of 4096 on tmpfs). */
  leaveFree(bytes: number): Promise<void>;
  /** Removes the filler: space is back. */
  unfill(): Promise<void>;
  /** Removes the filler and unmounts (lazily if something still holds a file there). */
  unmount(): Promise<void>;
}

const FILLER = '.filler';

export async function mountSmallDisk(sizeBytes: number): Promise<SmallDisk> {
  if (process.getuid?.() !== 0) {
    throw new Error('the storage-pressure tests mount a tmpfs and must run as root (CI does): run them as root, e.g. sudo node --test …');
  }
  const dir = await mkdtemp(join(tmpdir(), 'hfs-disk-'));
  await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'tmpfs', dir]);
  const filler = join(dir, FILLER);
  const free = () => {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  };
  let mounted = true;
  return {
    dir,
    free,
    async leaveFree(bytes) {
      const current = (await stat(filler).catch(() => null))?.size ?? 0;
      const target = current + free() - bytes;
      if (target < 0) throw new Error(`cannot leave ${bytes} bytes free: only ${free() + current} can be`);
      if (target <= current) {
        await truncate(filler, target).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
        return;
      }
      // Written bytes, not a sparse extension: tmpfs counts only pages that hold data.
      const fh = await open(filler, 'a');
      try {
        const chunk = Buffer.alloc(1 << 20, 0x5a);
        for (let left = target - current; left > 0; ) {
          const { bytesWritten } = await fh.write(chunk, 0, Math.min(left, chunk.length));
          left -= bytesWritten;
        }
      } finally {
        await fh.close();
      }
    },
    async unfill() {
      await unlink(filler).catch(() => {});
    },
    async unmount() {
      if (!mounted) return;
      mounted = false;
      await unlink(filler).catch(() => {});
      await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
      await rmdir(dir).catch(() => {});
    },
  };
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 15_000 }, (err, _stdout, stderr) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') reject(missingBinaryError(cmd, 'mount'));
      else if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve();
    });
  });
}
