/**
 * How much room a store has, and how to recognise a store that ran out of it. Each store
 * answers for itself: the file store with statfs of its data directory; an S3 bucket cannot be
 * asked cheaply (its probe answers null: unknown) but reports a reached quota as an error
 * (RadosGW: 403 QuotaExceeded), which maps to the same 507 as a full disk.
 */
import { statfsSync } from 'node:fs';
import { AppError } from '../errors.js';

/** Bytes of the file system (or quota) the upload bytes go to. */
export interface StorageCapacity {
  readonly totalBytes: number;
  /** What this process may still write (statfs bavail: the root-only reserve excluded). */
  readonly freeBytes: number;
}

/**
 * Asked before admitting bytes, per new upload and per append. Answers at once, without waiting
 * on I/O: the check and the promise it grants are one synchronous step (two creations cannot both
 * take the last bytes, and nothing else runs in between). The file store asks statfs (about
 * 30 µs); a remote store answers from what it last learned (a quota refreshed in the background).
 */
export interface SpaceProbe {
  /** null: this store cannot tell (no limit known); space checks then pass. */
  capacity(): StorageCapacity | null;
}

/** The file store: statfs of the data directory. */
export class FileSpaceProbe implements SpaceProbe {
  constructor(private readonly dir: string) {}

  capacity(): StorageCapacity {
    const s = statfsSync(this.dir);
    return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
  }
}

/** For stores that cannot report room (S3 without a quota answer): every check passes. */
export const UNKNOWN_CAPACITY: SpaceProbe = { capacity: () => null };

/** Why a write failed for lack of room: the device is full, or a quota (disk or S3) is reached. */
export type StorageFullCause = 'disk_full' | 'quota';

/**
 * Recognises a store that ran out of room, at any depth of `cause`: ENOSPC, EDQUOT (fs),
 * SQLITE_FULL (the queue journal), and an S3 QuotaExceeded answer (RadosGW user or bucket quota,
 * HTTP 403). null for anything else.
 */
export function storageFullCause(err: unknown): StorageFullCause | null {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth++) {
    const o = e as { code?: unknown; name?: unknown; Code?: unknown; cause?: unknown };
    if (o.code === 'ENOSPC' || o.code === 'SQLITE_FULL') return 'disk_full';
    if (o.code === 'EDQUOT' || o.name === 'QuotaExceeded' || o.Code === 'QuotaExceeded') return 'quota';
    e = o.cause;
  }
  return null;
}

/**
 * A write refused for the path itself, the same every time (no retry can succeed, and it says
 * nothing about the store's health): a name past the filesystem's limit, a file or folder of
 * another path in the way, an S3 key past 1,024 bytes. Slot paths are checked before the body
 * (auth/slot-path.ts, PathObstruction); this catches what slips through anyway.
 */
export function unstorablePathCause(err: unknown): string | null {
  const o = (err ?? {}) as { code?: unknown; name?: unknown; Code?: unknown };
  if (typeof o.code === 'string' && ['ENAMETOOLONG', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY'].includes(o.code)) return o.code;
  return o.name === 'KeyTooLongError' || o.Code === 'KeyTooLongError' ? 'KeyTooLongError' : null;
}

/** Retry-After of a 507: disk space comes back through an operator or an expiry sweep, not in seconds. */
export const STORAGE_RETRY_AFTER_S = 30;

/**
 * The client-facing 507 for a store that ran out of room, or null when `err` is something else.
 * Callable from any store wiring (the S3 front of @tus/s3-store included).
 */
export function insufficientStorageError(err: unknown, retryAfterS = STORAGE_RETRY_AFTER_S): AppError | null {
  if (storageFullCause(err) === null) return null;
  return new AppError('ERR_INSUFFICIENT_STORAGE', { cause: err, headers: { 'Retry-After': String(retryAfterS) } });
}
