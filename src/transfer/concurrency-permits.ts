/**
 * Concurrency permits for upload bodies: at most `capacity` stream at once; the rest wait, the
 * smallest remaining upload first, except that a request waiting longer than `agingMs` goes
 * ahead of every younger one (oldest first), so a large upload is never starved. A waiter whose
 * signal aborts (client gone) leaves the queue at once; one that waits past its timeout is
 * refused. The ordering is pure (`pickNextWaiter`); the controller adds timers and promises.
 */
export interface Waiter {
  seq: number;
  remainingBytes: number;
  enqueuedAtMs: number;
}

/** Index of the waiter to admit next, or -1. Pure. */
export function pickNextWaiter(waiters: readonly Waiter[], nowMs: number, agingMs: number): number {
  let best = -1;
  for (let i = 0; i < waiters.length; i++) {
    const w = waiters[i]!;
    if (best === -1) {
      best = i;
      continue;
    }
    const b = waiters[best]!;
    const wAged = nowMs - w.enqueuedAtMs >= agingMs;
    const bAged = nowMs - b.enqueuedAtMs >= agingMs;
    if (wAged !== bAged) {
      if (wAged) best = i;
      continue;
    }
    if (wAged ? w.seq < b.seq : w.remainingBytes < b.remainingBytes || (w.remainingBytes === b.remainingBytes && w.seq < b.seq)) best = i;
  }
  return best;
}

export type PermitDecision = { ok: true; release: () => void; waitedMs: number } | { ok: false; reason: 'timeout' | 'aborted' };

export interface ConcurrencyPermitsOptions {
  capacity: number;
  agingMs: number;
  timeoutMs: number;
  now?: () => number;
  onChange?: (active: number, waiting: number) => void;
}

interface PendingWaiter extends Waiter {
  grant: () => void;
}

export class ConcurrencyPermits {
  private active = 0;
  private seq = 0;
  private readonly waiting: PendingWaiter[] = [];
  private readonly now: () => number;

  constructor(private readonly options: ConcurrencyPermitsOptions) {
    this.now = options.now ?? Date.now;
  }

  get activeCount(): number {
    return this.active;
  }

  get waitingCount(): number {
    return this.waiting.length;
  }

  /** Waits for a streaming slot. Resolve `release` exactly once when the body is done. */
  acquire(remainingBytes: number, signal: AbortSignal): Promise<PermitDecision> {
    const startedAt = this.now();
    if (signal.aborted) return Promise.resolve({ ok: false, reason: 'aborted' });
    if (this.active < this.options.capacity && this.waiting.length === 0) {
      this.active++;
      this.changed();
      return Promise.resolve({ ok: true, release: this.releaser(), waitedMs: 0 });
    }
    return new Promise((resolve) => {
      const waiter: PendingWaiter = {
        seq: this.seq++,
        remainingBytes,
        enqueuedAtMs: startedAt,
        grant: () => {
          cleanup();
          resolve({ ok: true, release: this.releaser(), waitedMs: this.now() - startedAt });
        },
      };
      const leave = (reason: 'timeout' | 'aborted') => {
        const i = this.waiting.indexOf(waiter);
        if (i === -1) return;
        this.waiting.splice(i, 1);
        cleanup();
        this.changed();
        resolve({ ok: false, reason });
      };
      const onAbort = () => leave('aborted');
      const timer = setTimeout(() => leave('timeout'), this.options.timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
      this.changed();
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.admitWaiting();
      this.changed();
    };
  }

  private admitWaiting(): void {
    while (this.active < this.options.capacity && this.waiting.length > 0) {
      const i = pickNextWaiter(this.waiting, this.now(), this.options.agingMs);
      const [next] = this.waiting.splice(i, 1);
      this.active++;
      next!.grant();
    }
  }

  private changed(): void {
    this.options.onChange?.(this.active, this.waiting.length);
  }
}
