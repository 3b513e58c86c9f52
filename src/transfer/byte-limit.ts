import type { Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AppError } from '../errors.js';

/**
 * Passes bytes through, counting them, and fails the stream with ERR_TOO_LARGE past `limit`.
 * `hashes` are fed with every byte that passes: one stream stage for counting, limiting and
 * hashing a body, where each extra Transform costs a hop per chunk (docs/performance.md).
 */
export class ByteLimit extends Transform {
  bytes = 0;

  constructor(private readonly limit: number, private readonly hashes: ReadonlyArray<Hash> = []) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      done(new AppError('ERR_TOO_LARGE'));
      return;
    }
    for (const h of this.hashes) h.update(chunk);
    done(null, chunk);
  }
}
