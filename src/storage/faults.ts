/**
 * Faults of a remote store that pass by themselves: S3 unreachable (connection refused or reset,
 * DNS, a timeout) or answering 5xx / SlowDown. Finalization waits them out under the storage
 * circuit breaker, spending no attempt, instead of burying jobs as dead letters. A local
 * filesystem error (EIO, EACCES…) is no such fault: it keeps the usual retries.
 */
import { AppError } from '../errors.js';

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
const TRANSIENT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'SlowDown', 'ServiceUnavailable', 'InternalError', 'ThrottlingException']);

/** Seconds a client is asked to wait when the store does not answer (the reachability probe runs every 5 s). */
const UNAVAILABLE_RETRY_AFTER_S = 10;

/**
 * A request that met an unreachable store (S3 down, black-holed, 5xx): 503 with Retry-After, never a 500.
 * `bodyDestroyed`: the request's stream was destroyed, so a bare network code may be the client's
 * own (it went away); an S3 request's error is the store's all the same (a failed part destroys the body too).
 */
export function storageUnavailableError(err: unknown, bodyDestroyed = false): AppError | null {
  if (err instanceof AppError) return null; // already answered on purpose
  if (bodyDestroyed && !isS3RequestError(err)) return null;
  return isStoreUnreachable(err) ? new AppError('ERR_STORAGE_UNAVAILABLE', { cause: err, headers: { 'Retry-After': String(UNAVAILABLE_RETRY_AFTER_S) } }) : null;
}

/**
 * An error of an S3 request: the SDK's retry step gives every error it passes on `$metadata`; a
 * socket timeout can reach @tus/s3-store through a part's body stream before that step, by name.
 */
function isS3RequestError(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e !== null && typeof e === 'object'; depth++) {
    const o = e as { name?: unknown; cause?: unknown };
    if ('$metadata' in o || (typeof o.name === 'string' && TRANSIENT_NAMES.has(o.name))) return true;
    e = o.cause;
  }
  return false;
}

/** True for a remote store that cannot be reached or answers 5xx, at any depth of `cause` (also inside an AggregateError). */
export function isStoreUnreachable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e !== null && typeof e === 'object'; depth++) {
    const o = e as { code?: unknown; name?: unknown; errors?: unknown; cause?: unknown; $metadata?: { httpStatusCode?: number }; $fault?: unknown };
    if (typeof o.code === 'string' && NETWORK_CODES.has(o.code)) return true;
    if (typeof o.name === 'string' && TRANSIENT_NAMES.has(o.name)) return true;
    const status = o.$metadata?.httpStatusCode;
    if (typeof status === 'number' && status >= 500) return true;
    if (Array.isArray(o.errors) && o.errors.some((x) => isStoreUnreachable(x))) return true;
    e = o.cause;
  }
  return false;
}

/** Node's refusals of a request's own data (a header value or name it will not send). */
const UNSENDABLE_CODES = new Set(['ERR_INVALID_CHAR', 'ERR_INVALID_HTTP_TOKEN', 'ERR_HTTP_INVALID_HEADER_VALUE']);

/**
 * The code when a store request could not be sent for what it carries: the store never saw it,
 * so it says nothing about the store (and the same request fails the same way again); null otherwise.
 */
export function unsendableRequestCause(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNSENDABLE_CODES.has(code) ? code : null;
}

/** True when the bytes asked for are gone: a missing local file, or S3's "no such key". */
export function isSourceGone(err: unknown): boolean {
  const e = err as { code?: unknown; name?: unknown; $metadata?: { httpStatusCode?: number } } | null;
  return e?.code === 'ENOENT' || e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}
