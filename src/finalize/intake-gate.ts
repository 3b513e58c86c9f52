/**
 * Backpressure into intake (tus creations and PUTs). Follows the queue's fill, logs each episode
 * once, delays new uploads while under backpressure and refuses non-small ones in emergency
 * mode or when the large tier is full. Uploads already in progress are never gated: the HTTP
 * layer calls this only when an upload starts.
 */
import type { Logger } from '../observability/index.js';
import { metrics } from '../observability/index.js';
import type { Clock, PriorityTier, TimerHandle } from '../queue/index.js';
import { SIZE_CLASS_LIMITS } from '../transfer/index.js';
import { intakeDelayMs, pressureLevel, queueFill, type IntakeDelayOptions, type PressureLevel } from './pressure.js';

export interface IntakeRequest {
  readonly kind: 'create' | 'put';
  /** Declared size (Upload-Length, Content-Length); undefined when deferred or chunked. */
  readonly sizeBytes?: number | undefined;
  /** The request's signal: a client that goes away stops waiting. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * ok: go ahead (after `delayedMs` of backpressure delay, already waited).
 * not ok: answer 503 ERR_QUEUE_FULL with `Retry-After: retryAfterS`.
 */
export type IntakeDecision =
  | { readonly ok: true; readonly delayedMs: number }
  | { readonly ok: false; readonly retryAfterS: number; readonly reason: 'emergency' | 'large_tier_full' };

/** The intake gate as the intake module (src/intake) sees it: asked before a new upload's body. */
export interface IntakeControl {
  /**
   * Call when a new upload starts (tus creation, PUT) before reading its body. Resolves
   * { ok: true } at once when the queue is not under pressure, or after a bounded, growing
   * delay under backpressure; { ok: false, retryAfterS } in emergency mode for non-small files
   * (or unknown sizes), or for large files while the large tier is full: answer 503
   * ERR_QUEUE_FULL with that Retry-After. Rejects with the signal's reason if it aborts.
   * Requests continuing an upload (PATCH, HEAD) must not call it.
   */
  pass(request: IntakeRequest): Promise<IntakeDecision>;
  /** True when a job (queued, running, dead, or recently done) holds the slot: a new upload of it would end in 409, so refuse it before the body. */
  slotTaken(slotPath: string): Promise<boolean>;
  /**
   * The upload on its way to the slot (a queued or running job, or one waiting for its job to be
   * written): its size and the sha256 received with it, when known. null when none is (or the
   * queue does not answer). A PUT repeating those bytes is answered as the first one was.
   */
  pendingUpload(slotPath: string): Promise<PendingUpload | null>;
  /**
   * The upload a job holds the slot for, in any state (or one waiting for its job to be written),
   * from the queue every instance shares: a tus final repeated at another instance, or after a
   * restart, finds the final it repeats before its file is published. null when none (or the queue
   * does not answer).
   */
  slotUpload(slotPath: string): Promise<{ readonly protocol: 'tus' | 'put'; readonly uploadId: string } | null>;
  /** Queue pressure felt by intake right now. */
  pressure(): Pressure;
}

export interface PendingUpload {
  readonly size: number;
  /** Absent when finalization will hash the bytes itself (a tus upload resumed after a restart). */
  readonly sha256: string | undefined;
}

export interface Pressure {
  readonly level: PressureLevel;
  /** Jobs waiting or running / queue_size (may exceed 1 with spillover). */
  readonly fill: number;
}

export interface IntakeGateOptions {
  /** queue_size. */
  readonly capacity: number;
  readonly delay: IntakeDelayOptions;
  /** large_file_queue_size: pending jobs of the low (large-file) tier from which large uploads are refused. */
  readonly largeTierLimit: number;
  readonly clock: Clock;
  readonly log: Logger;
  /** Jobs queued or running, by tier. */
  readonly pending: () => Readonly<Record<PriorityTier, number>>;
  /** Retry-After for a refusal, given how many jobs must finish before intake reopens. */
  readonly retryAfterS: (jobsToDrain: number) => number;
}

export class IntakeGate {
  readonly #o: IntakeGateOptions;
  #level: PressureLevel = 'normal';
  #episodeStartMs = 0;
  /** Delayed intakes, woken early when pressure clears. */
  readonly #sleepers = new Set<() => void>();

  constructor(options: IntakeGateOptions) {
    this.#o = options;
  }

  /** The current level; also follows transitions (and logs them) without intake traffic. */
  pressure(): Pressure {
    const pending = this.#pendingTotal();
    const fill = queueFill(pending, this.#o.capacity);
    const level = pressureLevel(fill, this.#o.delay, this.#level);
    if (level !== this.#level) this.#transition(this.#level, level, fill, pending);
    return { level, fill };
  }

  /** See IntakeControl.pass. */
  async pass(request: IntakeRequest): Promise<IntakeDecision> {
    request.signal?.throwIfAborted();
    const { level, fill } = this.pressure();
    const size = request.sizeBytes;
    const large = size !== undefined && size >= SIZE_CLASS_LIMITS.medium;
    if (large) {
      const lowTier = this.#o.pending().low;
      if (lowTier >= this.#o.largeTierLimit) return this.#refuse('large_tier_full', lowTier - this.#o.largeTierLimit + 1);
    }
    if (level === 'normal') return { ok: true, delayedMs: 0 };
    // Emergency: only small files still get in (after the delay); unknown sizes count as not small.
    const small = size !== undefined && size < SIZE_CLASS_LIMITS.small;
    if (level === 'emergency' && !small) {
      const drain = this.#pendingTotal() - Math.floor(this.#o.delay.emergency * this.#o.capacity) + 1;
      return this.#refuse('emergency', drain);
    }
    const delayMs = intakeDelayMs(fill, this.#o.delay, this.#episodeStartMs, this.#o.clock.now());
    metrics.intakeDelayed.inc({ kind: request.kind });
    const started = this.#o.clock.now();
    await this.#sleep(delayMs, request.signal);
    return { ok: true, delayedMs: this.#o.clock.now() - started };
  }

  /** Call whenever the pending count changed: follows the level and wakes delayed intakes once it clears. */
  update(): void {
    if (this.pressure().level === 'normal') for (const wake of [...this.#sleepers]) wake();
  }

  #refuse(reason: 'emergency' | 'large_tier_full', jobsToDrain: number): IntakeDecision {
    metrics.intakeRefused.inc({ reason });
    return { ok: false, reason, retryAfterS: this.#o.retryAfterS(Math.max(1, jobsToDrain)) };
  }

  #pendingTotal(): number {
    const p = this.#o.pending();
    return p.high + p.medium + p.low;
  }

  #transition(from: PressureLevel, to: PressureLevel, fill: number, pending: number): void {
    const { log, clock } = this.#o;
    this.#level = to;
    const fields = { fill: Math.round(fill * 1000) / 1000, pending, capacity: this.#o.capacity };
    const pct = Math.round(fill * 100);
    if (from === 'normal') this.#episodeStartMs = clock.now();
    if (to === 'emergency') log.warn(fields, `Queue emergency mode activated (queue ${pct}% full)`);
    else if (from === 'emergency') log.info(fields, 'Queue emergency mode cleared');
    if (from === 'normal') log.info(fields, `Queue backpressure activated (queue ${pct}% full)`);
    if (to === 'normal') log.info({ ...fields, episodeMs: clock.now() - this.#episodeStartMs }, 'Queue backpressure cleared');
    metrics.queuePressureLevel.set(to === 'normal' ? 0 : to === 'backpressure' ? 1 : 2);
  }

  #sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    const { clock } = this.#o;
    return new Promise<void>((resolve, reject) => {
      let timer: TimerHandle | undefined;
      const finish = (err?: unknown) => {
        clock.clearTimeout(timer);
        this.#sleepers.delete(wake);
        signal?.removeEventListener('abort', onAbort);
        if (err === undefined) resolve();
        else reject(err);
      };
      const wake = () => finish();
      const onAbort = () => finish(signal?.reason ?? new Error('aborted'));
      this.#sleepers.add(wake);
      timer = clock.setTimeout(wake, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
