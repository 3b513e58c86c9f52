/**
 * The free-space budget of new uploads and appends. Pure: the reading comes in as an argument.
 *
 *   headroom = free - reserve - promised
 *
 * `promised` is what unfinished uploads declared and have not sent yet: bytes the disk already
 * owes. A new upload (or the growth of a deferred-length one) fits when it fits in the headroom.
 * An append to an upload whose length was admitted fits when its remaining bytes fit in
 * free - reserve: its bytes are part of `promised` already, so outside the low state every such
 * append fits, and in the low state those that still fit go on first come, first served.
 * The low state ("below the reserve"): headroom < 0, i.e. the promised bytes would eat into the
 * reserve; it is left once the headroom is back above a small band, so a disk hovering at the
 * line does not flap.
 */
import type { SizeOrPercent } from '../config/index.js';

export interface SpaceReading {
  readonly totalBytes: number;
  readonly freeBytes: number;
  readonly reserveBytes: number;
  readonly promisedBytes: number;
}

export type SpaceLevel = 'ok' | 'low';

/** The reserve in bytes for a file system of `totalBytes` (a percentage rounds up). */
export function reserveBytes(setting: SizeOrPercent, totalBytes: number): number {
  return 'bytes' in setting ? setting.bytes : Math.ceil((Math.max(0, totalBytes) * setting.percent) / 100);
}

/** Bytes a new upload may still take. Negative when the promises already eat into the reserve. */
export function headroom(r: SpaceReading): number {
  return r.freeBytes - r.reserveBytes - r.promisedBytes;
}

/** The low state is left only once the headroom is this far above 0: 5 % of the reserve (at least one 4 KiB block). */
export function clearBand(r: SpaceReading): number {
  return Math.max(4096, Math.ceil(r.reserveBytes / 20));
}

export function spaceLevel(r: SpaceReading, previous: SpaceLevel): SpaceLevel {
  const room = headroom(r);
  if (room < 0) return 'low';
  return previous === 'low' && room < clearBand(r) ? 'low' : 'ok';
}

export type SpaceVerdict =
  | { readonly ok: true }
  /** below_reserve: the low state refuses every new upload; no_room: this one does not fit. */
  | { readonly ok: false; readonly reason: 'below_reserve' | 'no_room' };

/**
 * A new upload (PUT, tus creation) declaring `bytes` (undefined: unknown, deferred or chunked).
 * In the low state nothing new starts, whatever its size.
 */
export function admitNew(r: SpaceReading, level: SpaceLevel, bytes: number | undefined): SpaceVerdict {
  if (level === 'low') return { ok: false, reason: 'below_reserve' };
  if (bytes !== undefined && bytes > headroom(r)) return { ok: false, reason: 'no_room' };
  return { ok: true };
}

/** New bytes of a deferred-length upload (one PATCH, or its declared rest): new promises, like a new upload. */
export function admitGrowth(r: SpaceReading, bytes: number): SpaceVerdict {
  return bytes <= 0 || bytes <= headroom(r) ? { ok: true } : { ok: false, reason: 'no_room' };
}

/** An append to an upload with a declared length and `remainingBytes` still to come (already promised). */
export function admitResume(r: SpaceReading, remainingBytes: number): SpaceVerdict {
  return remainingBytes <= 0 || remainingBytes <= r.freeBytes - r.reserveBytes ? { ok: true } : { ok: false, reason: 'no_room' };
}
