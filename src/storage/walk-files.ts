/** Walking a directory tree without holding it in memory (published files, content store). */
import { opendir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface WalkedFile {
  /** Relative to the walked root, '/'-separated. */
  readonly rel: string;
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly nlink: number;
}

/** Regular files under `root`, depth first; a missing root yields nothing. Symlinks are skipped. */
export async function* walkFiles(root: string, prefix = ''): AsyncGenerator<WalkedFile> {
  let dir;
  try {
    dir = await opendir(join(root, prefix));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for await (const entry of dir) {
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) yield* walkFiles(root, rel);
    else if (entry.isFile()) {
      const path = join(root, rel);
      const st = await stat(path).catch(() => null);
      if (st !== null) yield { rel, path, size: st.size, mtimeMs: st.mtimeMs, nlink: st.nlink };
    }
  }
}
