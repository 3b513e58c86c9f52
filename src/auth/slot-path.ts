/**
 * Slot paths: the part of an upload URL after the configured prefix. Signers sign the decoded
 * path, so decoding happens per segment (an encoded "/" inside a name is refused rather than
 * silently turned into a new directory level). Pure.
 */
import { AppError } from '../errors.js';

// What is refused here must never reach publication: a name that fits here fits everywhere it
// is stored. A file-name limit is 255 bytes on every common filesystem, and the published file's
// record is its name + ".json" (meta/). An S3 key is at most 1,024 bytes: the path, "files/" or
// "meta/" + ".json", and the bucket's key_prefix (at most 100 bytes, config/schema.ts).
const MAX_SEGMENT_BYTES = 250;
const MAX_PATH_BYTES = 900;

/** Decodes and validates a raw (percent-encoded) slot path; throws ERR_BAD_PATH (400) with the reason. */
export function decodeSlotPath(rawPath: string): string {
  const bad = (reason: string) => new AppError('ERR_BAD_PATH', { message: `The upload path is malformed: ${reason}` });
  if (rawPath === '') throw bad('empty path');
  const segments = rawPath.split('/').map((raw) => {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      throw bad('invalid percent-encoding');
    }
    if (seg === '') throw bad('empty segment');
    if (seg === '.' || seg === '..') throw bad('"." or ".." segment');
    if (seg.includes('/')) throw bad('encoded "/" inside a segment');
    if (seg.includes('\\')) throw bad('backslash');
    if (/[\u0000-\u001f\u007f]/.test(seg)) throw bad('control character');
    if (Buffer.byteLength(seg) > MAX_SEGMENT_BYTES) throw bad(`a segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
    return seg;
  });
  const path = segments.join('/');
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) throw bad(`longer than ${MAX_PATH_BYTES} bytes`);
  return path;
}

/** Percent-encodes a decoded slot path for use in a URL, keeping "/" between segments. */
export function encodeSlotPath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}
