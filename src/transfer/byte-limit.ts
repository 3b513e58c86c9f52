import { Transform, type TransformCallback } from 'node:stream';
import { AppError } from '../errors.js';

/** Passes bytes through, counting them, and fails the stream with ERR_TOO_LARGE past `limit`. */
export class ByteLimit extends Transform {
  bytes = 0;

  constructor(private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      done(new AppError('ERR_TOO_LARGE'));
      return;
    }
    done(null, chunk);
  }
}
