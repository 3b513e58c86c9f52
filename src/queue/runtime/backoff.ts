/**
 * Retry delays: exponential backoff with *full jitter* (AWS Architecture Blog, "Exponential
 * Backoff And Jitter"): delay = random * min(maxMs, baseMs * 2^(attempt-1)).
 * Chosen over decorrelated jitter because it depends only on the attempt number, which the job
 * record already stores; decorrelated jitter would need the previous delay persisted as well.
 * Pure: randomness is injected (pass `Math.random` in production).
 */
export interface BackoffOptions {
  /** retry_base_delay: the ceiling of the first retry's delay. */
  readonly baseMs: number;
  /** retry_max_delay: no delay exceeds this. */
  readonly maxMs: number;
}

/** Returns a value in [0, 1), like Math.random. */
export type RandomSource = () => number;

/** Delay before retry number `attempt` (1 = first retry), in whole ms within [0, maxMs]. */
export function retryDelayMs(attempt: number, options: BackoffOptions, random: RandomSource): number {
  const { baseMs, maxMs } = options;
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`attempt must be an integer >= 1, got ${attempt}`);
  }
  if (!(baseMs >= 0) || !(maxMs >= 0)) {
    throw new RangeError(`baseMs and maxMs must be >= 0, got ${baseMs} and ${maxMs}`);
  }
  // 2 ** 1100 is Infinity and Math.min then caps it, so no overflow guard is needed.
  const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  const r = random();
  if (!(r >= 0 && r < 1)) throw new RangeError(`random() must return [0, 1), got ${r}`);
  return Math.floor(r * ceiling);
}

export interface RetryPolicy extends BackoffOptions {
  /** max_retry_attempts: retries allowed after the first attempt. */
  readonly maxRetries: number;
}

export type RetryDecision = { readonly kind: 'retry'; readonly delayMs: number } | { readonly kind: 'give_up' };

/**
 * What to do after a failed attempt. `failures` counts failed attempts including this one, so with
 * maxRetries = 5 the sixth failure gives up ("Upload failed after 5 retries").
 */
export function nextRetry(failures: number, policy: RetryPolicy, random: RandomSource): RetryDecision {
  if (failures > policy.maxRetries) return { kind: 'give_up' };
  return { kind: 'retry', delayMs: retryDelayMs(failures, policy, random) };
}
