/**
 * Queue pressure felt by intake: how full the queue is, which level that means, how long a new
 * upload waits before it may start, and what Retry-After to send when it may not.
 * Pure: fill and time come in as arguments.
 */
export type PressureLevel = 'normal' | 'backpressure' | 'emergency';

export interface PressureThresholds {
  /** queue_backpressure_threshold: fill from which new uploads are delayed. */
  readonly backpressure: number;
  /** emergency_mode_threshold: fill from which new (non-small) uploads are refused with 503. */
  readonly emergency: number;
  /**
   * A level is left only once fill drops this far below its threshold, so a queue hovering at
   * the threshold does not flap (and log) on every job. Default 0.05.
   */
  readonly clearBand?: number;
}

export const DEFAULT_CLEAR_BAND = 0.05;

/** Jobs waiting or running (queued + leased) as a fraction of queue_size; may exceed 1. */
export function queueFill(pending: number, capacity: number): number {
  if (!(capacity > 0)) throw new RangeError(`capacity must be > 0, got ${capacity}`);
  return Math.max(0, pending) / capacity;
}

/** The level at `fill`, given the level before (for the clear band). */
export function pressureLevel(fill: number, thresholds: PressureThresholds, previous: PressureLevel): PressureLevel {
  const band = Math.max(0, thresholds.clearBand ?? DEFAULT_CLEAR_BAND);
  const emergency = fill >= thresholds.emergency || (previous === 'emergency' && fill >= thresholds.emergency - band);
  if (emergency) return 'emergency';
  const held = previous !== 'normal' && fill >= thresholds.backpressure - band;
  return fill >= thresholds.backpressure || held ? 'backpressure' : 'normal';
}

export interface IntakeDelayOptions extends PressureThresholds {
  /** Delay at the start of an episode at the backpressure threshold. */
  readonly minDelayMs: number;
  /** No delay exceeds this: backpressure slows intake, it never refuses it. */
  readonly maxDelayMs: number;
  /** Time in an episode after which the delay reaches maxDelayMs whatever the fill. */
  readonly rampMs: number;
}

export const DEFAULT_INTAKE_DELAY = { minDelayMs: 250, maxDelayMs: 5_000, rampMs: 60_000 } as const;

/**
 * How long a new upload (tus creation, PUT) waits before it starts, while under backpressure.
 * Grows with the fill (from the backpressure threshold up to the emergency threshold) and with
 * the time the episode has lasted; bounded by maxDelayMs. 0 below the backpressure threshold.
 * Either growth alone reaches the maximum: factor = 1 - (1 - severity) * (1 - age).
 */
export function intakeDelayMs(fill: number, options: IntakeDelayOptions, episodeStartMs: number, nowMs: number): number {
  if (fill < options.backpressure) return 0;
  const span = options.emergency - options.backpressure;
  const severity = span > 0 ? clamp01((fill - options.backpressure) / span) : 1;
  const age = options.rampMs > 0 ? clamp01((nowMs - episodeStartMs) / options.rampMs) : 1;
  const factor = 1 - (1 - severity) * (1 - age);
  const min = Math.max(0, options.minDelayMs);
  const max = Math.max(min, options.maxDelayMs);
  return Math.round(min + (max - min) * factor);
}

export interface RetryAfterOptions {
  /** When nothing is known about job durations yet. Default 5. */
  readonly fallbackS?: number;
  readonly minS?: number;
  readonly maxS?: number;
}

/**
 * Seconds until `jobsToDrain` jobs are likely finished by `workers` workers taking `avgJobMs`
 * each: the Retry-After of a refusal. Whole seconds in [minS, maxS] (default 1..60).
 */
export function retryAfterSeconds(jobsToDrain: number, avgJobMs: number | null, workers: number, options: RetryAfterOptions = {}): number {
  const { fallbackS = 5, minS = 1, maxS = 60 } = options;
  const estimate = avgJobMs === null || !(workers > 0) ? fallbackS : (Math.max(0, jobsToDrain) * avgJobMs) / workers / 1000;
  return Math.min(maxS, Math.max(minS, Math.ceil(estimate)));
}

function clamp01(x: number): number {
  return Number.isNaN(x) ? 0 : Math.min(1, Math.max(0, x));
}
