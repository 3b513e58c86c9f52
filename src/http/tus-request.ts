/**
 * Checks on a tus request before @tus/server sees it (issue 10.6). @tus/server turns a malformed
 * upload URL into a URIError (500) and answers a missing Tus-Resumable with a plain-text 412
 * without Tus-Version; here each becomes a client error with its code.
 * Pure: the caller passes the path, method and a header getter.
 */
import { AppError } from '../errors.js';

export type TusTarget = { kind: 'collection' } | { kind: 'upload'; id: string };

/** Upload ids are base64url (newUploadId); anything else names no upload. */
const UPLOAD_ID = /^[A-Za-z0-9_-]{1,128}$/;
const TUS_METHODS = ['POST', 'HEAD', 'PATCH', 'DELETE', 'OPTIONS', 'GET'];
const UPLOAD_METHODS = ['HEAD', 'PATCH', 'DELETE', 'OPTIONS', 'GET'];

/** What a path under the tus root addresses. `path` is the raw (still percent-encoded) path. */
export function tusTargetOf(path: string, tusRoot: string): TusTarget {
  const rest = path.slice(tusRoot.length);
  if (rest === '' || rest === '/') return { kind: 'collection' };
  const segment = rest.slice(1);
  if (segment.includes('/')) throw new AppError('ERR_NOT_FOUND');
  let id: string;
  try {
    id = decodeURIComponent(segment);
  } catch {
    throw new AppError('ERR_BAD_REQUEST', { message: 'The upload URL is malformed (invalid percent-encoding)' });
  }
  if (!UPLOAD_ID.test(id)) throw new AppError('ERR_NOT_FOUND');
  return { kind: 'upload', id };
}

/** Protocol-level refusals that need no store access (Upload-Concat is checked by tus-concat.ts). */
export function checkTusRequest(method: string, header: (name: string) => string, target?: TusTarget): void {
  if (!TUS_METHODS.includes(method)) {
    throw new AppError('ERR_METHOD_NOT_ALLOWED', { headers: { Allow: TUS_METHODS.join(', ') } });
  }
  // Creation is at the collection URL only (tusd answers 405 too).
  if (method === 'POST' && target?.kind === 'upload') {
    throw new AppError('ERR_METHOD_NOT_ALLOWED', { headers: { Allow: UPLOAD_METHODS.join(', ') } });
  }
  if (method === 'OPTIONS' || method === 'GET') return;
  // tus 1.0: "If the version specified by the Client is not supported by the Server, it MUST
  // respond with the 412 Precondition Failed status and MUST include the Tus-Version header".
  if (header('Tus-Resumable') !== '1.0.0') {
    throw new AppError('ERR_TUS_RESUMABLE_REQUIRED', { headers: { 'Tus-Version': '1.0.0', 'Tus-Resumable': '1.0.0' } });
  }
}

/** A length header as a byte count, or undefined when absent or not a non-negative integer. */
export function byteCountOf(header: string): number | undefined {
  return /^\d{1,16}$/.test(header) ? Number(header) : undefined;
}
