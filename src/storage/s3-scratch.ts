/**
 * Local files of S3 uploads in flight. @tus/s3-store stages every part it sends (and a resumed
 * upload's trailing piece) as a file in os.tmpdir() under a random name, and our checksummed tus
 * chunks are staged locally too. A kill -9 leaves those files behind, and in a shared /tmp
 * nothing tells them apart from other programs' files. So an S3 server keeps them in a folder of
 * its own state directory, which the data-dir lock gives to this one process: emptied at start,
 * and made the process's TMPDIR once it serves (@tus/s3-store takes no directory option and
 * reads os.tmpdir() at each part).
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** The folder's name below the state directory. */
export const S3_SCRATCH_DIR = 's3-parts';

export class S3Scratch {
  constructor(
    readonly dir: string,
    private readonly dirMode: number,
  ) {}

  /** Removes what a previous run left; resolves how many entries. Only while no upload runs. */
  async reset(): Promise<number> {
    const left = await readdir(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    await Promise.all(left.map((name) => rm(join(this.dir, name), { recursive: true, force: true })));
    await mkdir(this.dir, { recursive: true, mode: this.dirMode });
    return left.length;
  }

  /** From now on this process's temp files (os.tmpdir()) go to the folder. */
  use(): void {
    process.env.TMPDIR = this.dir;
  }
}
