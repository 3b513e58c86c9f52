/**
 * Takeover of an upload body by a newer request for the same upload (issue 18): a phone that
 * moved from WiFi to 4G leaves its old request half-open, silent, still holding the upload. The
 * holder decides by its own idle clock when asked to let go:
 *   - silent for at least `takeoverIdleMs`: it is dead, not draining: end it now (idle_ended);
 *   - still receiving: it may finish within `drainMs` (drained); if it goes silent meanwhile it
 *     is ended then (idle_ended); past `drainMs` it is ended anyway (drain_timeout).
 * Ending keeps what was received for tus (the store flushes it) and drops it for a PUT.
 * `decideRelease` is the pure rule; `BodyHolder` adds the timers around one body.
 */

export type TakeoverOutcome = 'idle_ended' | 'drained' | 'drain_timeout';

export interface TakeoverRules {
  takeoverIdleMs: number;
  drainMs: number;
}

/** Pure: what a holder asked to release does now. */
export function decideRelease(idleMs: number, drainElapsedMs: number, rules: TakeoverRules): 'end_idle' | 'end_drain_timeout' | 'wait' {
  if (idleMs >= rules.takeoverIdleMs) return 'end_idle';
  if (drainElapsedMs >= rules.drainMs) return 'end_drain_timeout';
  return 'wait';
}

/** Who asks: the newer request. */
export interface Requester {
  clientAddress: string;
}

export interface TakeoverReport {
  outcome: TakeoverOutcome;
  oldClient: string;
  newClient: string;
  /** Silence of the holder when it was asked. */
  idleMs: number;
  /** From the first release request until the holder let go. */
  waitedMs: number;
}

export interface Timers {
  now(): number;
  /** Returns a cancel function. */
  after(ms: number, fn: () => void): () => void;
  /** Runs `fn` after pending I/O callbacks (setImmediate): lets bytes already in the socket arrive first. */
  soon(fn: () => void): void;
}

export const realTimers: Timers = {
  now: Date.now,
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
  soon: (fn) => setImmediate(fn),
};

export interface BodyHolderOptions extends TakeoverRules {
  clientAddress: string;
  /** The holder's idle clock (samples its byte counter). */
  idleMs(): number;
  /** Ends the holder's request; it calls `finished()` once it is over. */
  end(): void;
  /** Once per takeover, when the holder has let go. */
  onTakeover?(report: TakeoverReport): void;
  timers?: Timers;
}

/** One streaming body that newer requests may take over. */
export class BodyHolder {
  private readonly timers: Timers;
  private asked: { atMs: number; requester: Requester; idleMs: number } | undefined;
  private outcome: TakeoverOutcome | undefined;
  private cancelCheck: (() => void) | undefined;
  private over = false;
  private markLeft!: () => void;
  /** Resolves once the holder's request is over. */
  readonly left = new Promise<void>((resolve) => (this.markLeft = resolve));

  constructor(private readonly options: BodyHolderOptions) {
    this.timers = options.timers ?? realTimers;
  }

  get clientAddress(): string {
    return this.options.clientAddress;
  }

  get isOver(): boolean {
    return this.over;
  }

  /** Silent for at least takeover_idle: a newer request may end it at once. */
  isSilent(): boolean {
    return this.options.idleMs() >= this.options.takeoverIdleMs;
  }

  /** How long until it would count as silent if no byte arrives (0 when it already does). */
  msUntilSilent(): number {
    return Math.max(0, this.options.takeoverIdleMs - this.options.idleMs());
  }

  /** Asks the holder to let go; resolves once it has. Idempotent: later askers share the first ask. */
  requestRelease(requester: Requester): Promise<void> {
    if (this.over || this.asked) return this.left;
    this.asked = { atMs: this.timers.now(), requester, idleMs: this.options.idleMs() };
    this.check();
    return this.left;
  }

  /** Ends the holder's request now, whatever it is doing (its lock is lost); what arrived is kept for tus. */
  endNow(): void {
    if (!this.over) this.options.end();
  }

  /** The holder's request is over (normally or ended). */
  finished(): void {
    if (this.over) return;
    this.over = true;
    this.cancelCheck?.();
    if (this.asked) {
      this.outcome ??= 'drained';
      this.options.onTakeover?.({
        outcome: this.outcome,
        oldClient: this.options.clientAddress,
        newClient: this.asked.requester.clientAddress,
        idleMs: this.asked.idleMs,
        waitedMs: this.timers.now() - this.asked.atMs,
      });
    }
    this.markLeft();
  }

  private check(): void {
    if (this.over || this.outcome || !this.asked) return;
    const idle = this.options.idleMs();
    const elapsed = this.timers.now() - this.asked.atMs;
    const decision = decideRelease(idle, elapsed, this.options);
    if (decision === 'end_drain_timeout') return this.end('drain_timeout');
    if (decision === 'end_idle') {
      // Confirm after pending socket reads: bytes already in the kernel buffer are delivered, not cut.
      this.timers.soon(() => {
        if (this.over || this.outcome) return;
        if (this.options.idleMs() >= this.options.takeoverIdleMs) this.end('idle_ended');
        else this.schedule(this.options.takeoverIdleMs);
      });
      return;
    }
    // Re-check when the silence could reach takeover_idle, or when the drain time is up.
    this.schedule(Math.min(this.options.takeoverIdleMs - idle, this.options.drainMs - elapsed));
  }

  private schedule(ms: number): void {
    this.cancelCheck = this.timers.after(Math.max(1, ms), () => this.check());
  }

  private end(outcome: TakeoverOutcome): void {
    this.outcome = outcome;
    this.options.end();
  }
}
