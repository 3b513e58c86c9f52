/**
 * The tus checksum extension at the HTTP edge: `Upload-Checksum: <algorithm> <base64 digest>`
 * on a PATCH (or a creation with upload) is parsed here and handed to the store, which verifies
 * the chunk as it streams in (CheckedChunkWriter). Also the whole-file check of a finished
 * upload against the sha256 the client declared in its metadata.
 */
import { AppError } from '../errors.js';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { CHUNK_ALGORITHMS, type ChunkAlgorithm, type ChunkCheck, type TusDoorStore } from '../storage/index.js';

export const CHECKSUM_ALGORITHM_HEADER = 'Tus-Checksum-Algorithm';
export const CHECKSUM_ALGORITHMS_VALUE = CHUNK_ALGORITHMS.join(',');

const DIGEST_BYTES: Record<ChunkAlgorithm, number> = { sha1: 20, sha256: 32, sha512: 64, md5: 16 };

/**
 * The chunk check of a request, undefined when it sends no Upload-Checksum. Throws
 * ERR_CHECKSUM_UNSUPPORTED (400) for an algorithm not offered, ERR_CHECKSUM_MALFORMED (400) for
 * anything else that is not `<algorithm> <base64 digest of the algorithm's length>`.
 */
export function parseUploadChecksum(header: string | undefined, contentLength: string | undefined): ChunkCheck | undefined {
  if (header === undefined || header === '') return undefined;
  const m = /^\s*([A-Za-z0-9-]+) +([A-Za-z0-9+/]+={0,2})\s*$/.exec(header);
  if (!m) throw new AppError('ERR_CHECKSUM_MALFORMED', { message: 'Upload-Checksum must be "<algorithm> <base64 digest>"' });
  const algorithm = m[1]!.toLowerCase();
  if (!(CHUNK_ALGORITHMS as readonly string[]).includes(algorithm)) throw new AppError('ERR_CHECKSUM_UNSUPPORTED');
  const digest = Buffer.from(m[2]!, 'base64');
  if (digest.length !== DIGEST_BYTES[algorithm as ChunkAlgorithm]) {
    throw new AppError('ERR_CHECKSUM_MALFORMED', { message: `Upload-Checksum is not a base64 ${algorithm} digest` });
  }
  const declared = contentLength !== undefined && /^\d{1,16}$/.test(contentLength) ? Number(contentLength) : undefined;
  return { algorithm: algorithm as ChunkAlgorithm, digest, declaredBytes: declared };
}

/**
 * True when the finished upload's bytes have `expectedSha256`: from the digest kept while the
 * bytes arrived (`running`) when there is one, else by reading the stored bytes once.
 */
export async function finishedUploadMatches(store: Pick<TusDoorStore, 'bytesOf'>, id: string, size: number, expectedSha256: string, running: string | undefined, signal?: AbortSignal): Promise<boolean> {
  if (running !== undefined) return running === expectedSha256;
  const hash = createHash('sha256');
  await pipeline(store.bytesOf(id, size).open(), hash, signal ? { signal } : {});
  return hash.digest('hex') === expectedSha256;
}
