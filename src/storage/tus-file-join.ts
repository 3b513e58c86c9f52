/**
 * Joins the data files of a concatenation's partial uploads into the final upload's data file,
 * copying as little as the file system allows: the first part becomes the final's file by a
 * hard link (no copy), every later part is appended (its bytes copied once). Finalization then
 * hashes the joined file and publishes it by hard links, so no byte is copied again.
 *
 * Idempotent, so a join cut short by a crash is simply run again: the final's file is cut back
 * to the first part's length before the rest is appended. The parts stay in place until the
 * caller removes them (the first part's inode lives on as the final's file).
 */
import { createReadStream } from 'node:fs';
import { link, open, stat, unlink } from 'node:fs/promises';

export interface JoinPart {
  readonly path: string;
  readonly size: number;
}

export async function joinDataFiles(target: string, parts: readonly JoinPart[]): Promise<void> {
  const [first, ...rest] = parts;
  if (first === undefined) throw new RangeError('a join needs at least one part');
  await linkFirst(first.path, target);
  const out = await open(target, 'r+');
  try {
    await out.truncate(first.size);
    let position = first.size;
    for (const part of rest) {
      let copied = 0;
      for await (const chunk of createReadStream(part.path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
        await out.write(chunk, 0, chunk.length, position);
        position += chunk.length;
        copied += chunk.length;
      }
      if (copied !== part.size) throw new Error(`partial ${part.path} holds ${copied} bytes, its record says ${part.size}`);
    }
    await out.sync();
  } finally {
    await out.close();
  }
}

/** Makes `target` the first part's inode (again, when an earlier attempt left another file there). */
async function linkFirst(source: string, target: string): Promise<void> {
  try {
    await link(source, target);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const [s, t] = await Promise.all([stat(source), stat(target)]);
  if (s.ino === t.ino && s.dev === t.dev) return;
  await unlink(target);
  await link(source, target);
}
