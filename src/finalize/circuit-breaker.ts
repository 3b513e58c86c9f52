/**
 * Circuit breaker around finalization: closed -> open -> half_open -> closed | open.
 * Pure state machine: every call takes `nowMs`; it starts no timers, so open -> half_open happens
 * on the first call made after the cool-down.
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

export type BreakerTransitionReason =
  | 'consecutive_failures'
  | 'failure_rate'
  | 'cool_down_elapsed'
  | 'probe_succeeded'
  | 'probe_failed';

export interface BreakerTransition {
  readonly from: BreakerState;
  readonly to: BreakerState;
  readonly atMs: number;
  readonly reason: BreakerTransitionReason;
  /** Consecutive failures when the transition happened ("opened after N consecutive failures"). */
  readonly consecutiveFailures: number;
  /** Failure rate over the window at the transition, or null with too few samples to judge. */
  readonly failureRate: number | null;
}

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker. */
  readonly failureThreshold?: number;
  /** Failure fraction (0..1] over the window that opens the breaker... */
  readonly failureRateThreshold?: number;
  /** ...judged only once the window holds at least this many outcomes. */
  readonly minimumSamples?: number;
  /** Outcomes older than this are forgotten. */
  readonly rateWindowMs?: number;
  /** Time spent open before one probe is allowed. */
  readonly coolDownMs?: number;
  /** A probe that never reports frees its slot after this (a crashed worker must not wedge the breaker). */
  readonly probeTimeoutMs?: number;
  /** Bound on remembered outcomes; the oldest are dropped first. */
  readonly maxSamples?: number;
  /** Called synchronously on every state change, e.g. to log and set hmac_circuit_breaker_state. */
  readonly onTransition?: (transition: BreakerTransition) => void;
}

export const DEFAULT_CIRCUIT_BREAKER_OPTIONS = {
  failureThreshold: 10,
  failureRateThreshold: 0.5,
  minimumSamples: 20,
  rateWindowMs: 60_000,
  coolDownMs: 30_000,
  maxSamples: 1000,
} as const;

interface Sample {
  readonly atMs: number;
  readonly failed: boolean;
}

export class CircuitBreaker {
  readonly #failureThreshold: number;
  readonly #failureRateThreshold: number;
  readonly #minimumSamples: number;
  readonly #rateWindowMs: number;
  readonly #coolDownMs: number;
  readonly #probeTimeoutMs: number;
  readonly #maxSamples: number;
  readonly #onTransition: ((t: BreakerTransition) => void) | undefined;

  #state: BreakerState = 'closed';
  #consecutiveFailures = 0;
  #samples: Sample[] = [];
  #openedAtMs = 0;
  /** When the current half_open probe was handed out; null while no probe is in flight. */
  #probeStartedAtMs: number | null = null;

  constructor(options: CircuitBreakerOptions = {}) {
    const d = DEFAULT_CIRCUIT_BREAKER_OPTIONS;
    this.#failureThreshold = options.failureThreshold ?? d.failureThreshold;
    this.#failureRateThreshold = options.failureRateThreshold ?? d.failureRateThreshold;
    this.#minimumSamples = options.minimumSamples ?? d.minimumSamples;
    this.#rateWindowMs = options.rateWindowMs ?? d.rateWindowMs;
    this.#coolDownMs = options.coolDownMs ?? d.coolDownMs;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? this.#coolDownMs;
    this.#maxSamples = options.maxSamples ?? d.maxSamples;
    this.#onTransition = options.onTransition;
    if (!(this.#failureThreshold >= 1)) throw new RangeError('failureThreshold must be >= 1');
    if (!(this.#failureRateThreshold > 0 && this.#failureRateThreshold <= 1)) {
      throw new RangeError('failureRateThreshold must be in (0, 1]');
    }
    if (!(this.#minimumSamples >= 1)) throw new RangeError('minimumSamples must be >= 1');
    if (!(this.#maxSamples >= this.#minimumSamples)) {
      throw new RangeError('maxSamples must be >= minimumSamples');
    }
  }

  state(nowMs: number): BreakerState {
    this.#advance(nowMs);
    return this.#state;
  }

  /**
   * Ask right before an attempt. In half_open this hands out the single probe: the first caller
   * gets true and everyone else false until the probe reports (or times out).
   */
  canAttempt(nowMs: number): boolean {
    this.#advance(nowMs);
    if (this.#state === 'closed') return true;
    if (this.#state === 'open') return false;
    const probeLost =
      this.#probeStartedAtMs !== null && nowMs - this.#probeStartedAtMs >= this.#probeTimeoutMs;
    if (this.#probeStartedAtMs === null || probeLost) {
      this.#probeStartedAtMs = nowMs;
      return true;
    }
    return false;
  }

  /**
   * Earliest time canAttempt may answer true: nowMs while closed (or half_open with the probe
   * free), the end of the cool-down while open, the probe's timeout while it is out. For
   * scheduling a wait without polling.
   */
  retryAtMs(nowMs: number): number {
    this.#advance(nowMs);
    if (this.#state === 'open') return this.#openedAtMs + this.#coolDownMs;
    if (this.#state === 'half_open' && this.#probeStartedAtMs !== null) {
      return Math.max(nowMs, this.#probeStartedAtMs + this.#probeTimeoutMs);
    }
    return nowMs;
  }

  onSuccess(nowMs: number): void {
    this.#advance(nowMs);
    if (this.#state === 'half_open') {
      this.#transition('closed', nowMs, 'probe_succeeded');
    } else if (this.#state === 'closed') {
      this.#consecutiveFailures = 0;
      this.#record(nowMs, false);
    }
    // open: a late result of an attempt started before opening says nothing about recovery.
  }

  onFailure(nowMs: number): void {
    this.#advance(nowMs);
    if (this.#state === 'half_open') {
      this.#consecutiveFailures += 1;
      this.#transition('open', nowMs, 'probe_failed');
    } else if (this.#state === 'closed') {
      this.#consecutiveFailures += 1;
      this.#record(nowMs, true);
      if (this.#consecutiveFailures >= this.#failureThreshold) {
        this.#transition('open', nowMs, 'consecutive_failures');
      } else {
        const rate = this.#failureRate();
        if (rate !== null && rate >= this.#failureRateThreshold) {
          this.#transition('open', nowMs, 'failure_rate');
        }
      }
    }
  }

  #advance(nowMs: number): void {
    this.#prune(nowMs);
    if (this.#state === 'open' && nowMs - this.#openedAtMs >= this.#coolDownMs) {
      this.#transition('half_open', nowMs, 'cool_down_elapsed');
    }
  }

  #record(nowMs: number, failed: boolean): void {
    this.#samples.push({ atMs: nowMs, failed });
    if (this.#samples.length > this.#maxSamples) this.#samples.shift();
  }

  #prune(nowMs: number): void {
    const cutoff = nowMs - this.#rateWindowMs;
    let drop = 0;
    while (drop < this.#samples.length && this.#samples[drop]!.atMs <= cutoff) drop += 1;
    if (drop > 0) this.#samples.splice(0, drop);
  }

  #failureRate(): number | null {
    if (this.#samples.length < this.#minimumSamples) return null;
    let failed = 0;
    for (const s of this.#samples) if (s.failed) failed += 1;
    return failed / this.#samples.length;
  }

  #transition(to: BreakerState, nowMs: number, reason: BreakerTransitionReason): void {
    const event: BreakerTransition = {
      from: this.#state,
      to,
      atMs: nowMs,
      reason,
      consecutiveFailures: this.#consecutiveFailures,
      failureRate: this.#failureRate(),
    };
    this.#state = to;
    this.#probeStartedAtMs = null;
    if (to === 'open') this.#openedAtMs = nowMs;
    if (to !== 'half_open') {
      // Each closed period and each open period judges from fresh outcomes.
      this.#samples = [];
      if (to === 'closed') this.#consecutiveFailures = 0;
    }
    this.#onTransition?.(event);
  }
}
