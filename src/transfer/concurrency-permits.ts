/**
 * Concurrency permits for upload bodies: at most `capacity` stream at once; the rest wait, those
 * of the client holding the fewest permits first (one client's many bodies never keep another
 * client waiting behind them), then the smallest remaining upload, except that a request waiting
 * longer than `agingMs` goes ahead of every younger one (oldest first), so a large upload is
 * never starved. A waiter whose signal aborts (client gone) leaves the queue at once; one that
 * waits past its timeout is refused. While some wait, a holder silent for
 * `silentUnderContentionMs` is asked to give its permit up. The ordering is pure
 * (`pickNextWaiter`); the controller adds timers and promises.
 */
export interface Waiter {
  seq: number;
  remainingBytes: number;
  enqueuedAtMs: number;
  /** Client key of the request; undefined counts as a client of its own holding nothing. */
  client?: string | undefined;
}

/** Index of the waiter to admit next, or -1. Pure. `held`: permits each client holds now. */
export function pickNextWaiter(waiters: readonly Waiter[], nowMs: number, agingMs: number, held: (client: string) => number = () => 0): number {
  const holds = (w: Waiter) => (w.client === undefined ? 0 : held(w.client));
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
    if (wAged) {
      if (w.seq < b.seq) best = i;
      continue;
    }
    const [wh, bh] = [holds(w), holds(b)];
    if (wh !== bh) {
      if (wh < bh) best = i;
      continue;
    }
    if (w.remainingBytes < b.remainingBytes || (w.remainingBytes === b.remainingBytes && w.seq < b.seq)) best = i;
  }
  return best;
}

/** A body streaming under a permit, as the permits see it when others wait. */
export interface PermitHolder {
  /** Time since its last byte. */
  idleMs(): number;
  /** Ends it (its permit is released with it): it is silent while bodies wait for a permit. */
  yieldPermit(): void;
}

export type PermitDecision =
  | { ok: true; release: () => void; waitedMs: number; /** The body now streaming under it, to be asked to yield when silent. */ hold(holder: PermitHolder): void }
  | { ok: false; reason: 'timeout' | 'aborted' };

export interface ConcurrencyPermitsOptions {
  capacity: number;
  agingMs: number;
  timeoutMs: number;
  /**
   * While bodies wait, a body silent this long gives its permit up (ended as a stall: a PUT's
   * bytes dropped, a PATCH's kept). Without it, bodies that send headers and then nothing held
   * every permit until their stall timeout (30-120 s), and every other client waited.
   */
  silentUnderContentionMs?: number;
  now?: () => number;
  onChange?: (active: number, waiting: number) => void;
}

/** Default of silentUnderContentionMs. */
export const SILENT_UNDER_CONTENTION_MS = 5_000;

interface PendingWaiter extends Waiter {
  grant: () => void;
}

export class ConcurrencyPermits {
  private active = 0;
  private seq = 0;
  private readonly waiting: PendingWaiter[] = [];
  private readonly now: () => number;
  /** Bodies streaming under a permit (those that told theirs); asked to yield when silent while others wait. */
  private readonly holders = new Set<PermitHolder>();
  /** Holders asked to yield whose permits have not come back yet: each answers one waiter. */
  private readonly yielding = new Set<PermitHolder>();
  /** Permits held per client key. */
  private readonly heldByClient = new Map<string, number>();
  private reclaimTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ConcurrencyPermitsOptions) {
    this.now = options.now ?? Date.now;
  }

  get activeCount(): number {
    return this.active;
  }

  get waitingCount(): number {
    return this.waiting.length;
  }

  /** Waits for a streaming slot. Resolve `release` exactly once when the body is done. `client`: the request's client key. */
  acquire(remainingBytes: number, signal: AbortSignal, client?: string): Promise<PermitDecision> {
    const startedAt = this.now();
    if (signal.aborted) return Promise.resolve({ ok: false, reason: 'aborted' });
    if (this.active < this.options.capacity && this.waiting.length === 0) {
      this.active++;
      this.changed();
      return Promise.resolve(this.granted(0, client));
    }
    return new Promise((resolve) => {
      const waiter: PendingWaiter = {
        seq: this.seq++,
        remainingBytes,
        enqueuedAtMs: startedAt,
        client,
        grant: () => {
          cleanup();
          resolve(this.granted(this.now() - startedAt, client));
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

  private granted(waitedMs: number, client: string | undefined): PermitDecision {
    let holder: PermitHolder | undefined;
    let released = false;
    if (client !== undefined) this.heldByClient.set(client, (this.heldByClient.get(client) ?? 0) + 1);
    return {
      ok: true,
      waitedMs,
      hold: (h) => {
        if (released) return;
        holder = h;
        this.holders.add(h);
      },
      release: () => {
        if (released) return;
        released = true;
        if (holder) {
          this.holders.delete(holder);
          this.yielding.delete(holder);
        }
        if (client !== undefined) {
          const left = (this.heldByClient.get(client) ?? 1) - 1;
          if (left > 0) this.heldByClient.set(client, left);
          else this.heldByClient.delete(client);
        }
        this.active--;
        this.admitWaiting();
        this.changed();
      },
    };
  }

  /** While bodies wait: the silent holders give their permits up, the longest silent first, one per waiter. */
  private reclaimSilent(): void {
    const silenceMs = this.options.silentUnderContentionMs ?? SILENT_UNDER_CONTENTION_MS;
    const silent = [...this.holders].map((h) => ({ h, idle: h.idleMs() })).filter((x) => x.idle >= silenceMs);
    silent.sort((a, b) => b.idle - a.idle);
    // A holder asked before and not yet gone answers a waiter already: ask only for the rest.
    for (const { h } of silent.slice(0, Math.max(0, this.waiting.length - this.yielding.size))) {
      this.holders.delete(h); // asked once; its release follows when its request ends
      this.yielding.add(h);
      h.yieldPermit();
    }
  }

  private admitWaiting(): void {
    while (this.active < this.options.capacity && this.waiting.length > 0) {
      const i = pickNextWaiter(this.waiting, this.now(), this.options.agingMs, (c) => this.heldByClient.get(c) ?? 0);
      const [next] = this.waiting.splice(i, 1);
      this.active++;
      next!.grant();
    }
  }

  private changed(): void {
    // Silent holders are looked for only while someone waits.
    if (this.waiting.length > 0 && this.reclaimTimer === undefined) {
      const every = Math.max(50, Math.min(1_000, Math.floor((this.options.silentUnderContentionMs ?? SILENT_UNDER_CONTENTION_MS) / 4)));
      this.reclaimTimer = setInterval(() => this.reclaimSilent(), every);
      this.reclaimTimer.unref();
    } else if (this.waiting.length === 0 && this.reclaimTimer !== undefined) {
      clearInterval(this.reclaimTimer);
      this.reclaimTimer = undefined;
    }
    this.options.onChange?.(this.active, this.waiting.length);
  }
}
