/**
 * Slot paths: the part of an upload URL after the configured prefix. Signers sign the decoded
 * path, so decoding happens per segment (an encoded "/" inside a name is refused rather than
 * silently turned into a new directory level). Pure.
 */
import { AppError } from '../errors.js';

const MAX_SEGMENT_BYTES = 255; // a file-name limit on every common filesystem
const MAX_PATH_BYTES = 1024;

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
