/**
 * How long an upload request may go without a body byte (stall), and from when it is held to
 * the rate floor (deadline), by the size class of the file. Pure.
 *
 * Stall defaults scale the base `upload_stall_timeout` (60 s): small 0.5x, medium 1x, large 1.5x,
 * huge 2x. A small file's client is quick to retry, so a dead connection is dropped sooner;
 * large transfers run on long mobile sessions where a radio handover can pause a healthy
 * connection for tens of seconds. A stall never costs data: received bytes are kept and the
 * client resumes, so erring short is cheap, which is why even "huge" stays at 2 minutes.
 */
import type { Config } from '../config/index.js';
import { sizeClassOf, type SizeClass } from './size-class.js';
import type { RateFloor } from './body-meter.js';

export type { SizeClass };

const STALL_FACTORS: Record<SizeClass, number> = { small: 0.5, medium: 1, large: 1.5, huge: 2 };

export interface TransferLimits {
  sizeClass: SizeClass;
  /** End the request after this long without a body byte. */
  stallMs: number;
  /**
   * The class deadline (capped by request_timeout). It never ends a moving body by itself: from
   * this age (or one floor window, whichever is earlier) the body is judged by the rate floor.
   */
  deadlineMs: number;
  floor: RateFloor;
}

/** `sizeBytes` undefined (deferred length, chunked PUT) counts as huge: the most patient limits. */
export function transferLimits(sizeBytes: number | undefined, server: Config['server'], timeouts: Config['timeouts']): TransferLimits {
  const sizeClass = sizeBytes === undefined ? 'huge' : sizeClassOf(sizeBytes);
  const stallMs = timeouts.stallMs[sizeClass] ?? Math.round(server.uploadStallMs * STALL_FACTORS[sizeClass]);
  const classDeadline = { small: timeouts.smallFileMs, medium: timeouts.mediumFileMs, large: timeouts.largeFileMs, huge: timeouts.hugeFileMs }[sizeClass];
  const deadlineMs = Math.min(classDeadline, server.requestTimeoutMs);
  const floor = { bytesPerSec: timeouts.minUploadRateBytesPerSec, windowMs: timeouts.minUploadRateWindowMs, judgeAfterMs: deadlineMs };
  return { sizeClass, stallMs, deadlineMs, floor };
}
