/**
 * At most one body streaming per slot at a time (issue 9.1): a second request for the same
 * key waits for the first to let go (tus: takeover with drain) or is refused while the first
 * is still moving after a short window (PUT: 409). The key is the slot path; a protocol with several bodies per slot
 * (tus concatenation: one per partial upload) keys each part on its own.
 */
import { realTimers, type BodyHolder, type Requester, type Timers } from './takeover.js';

/** 'drain': wait for a moving holder to finish or go silent (tus). 'refuse_moving': only a silent holder is taken over (PUT). */
export type ClaimPolicy = 'drain' | 'refuse_moving';

export type Claim = { ok: true; release: () => void } | { ok: false; reason: 'busy' | 'timeout' | 'aborted' };

/**
 * How long a PUT holder must keep receiving before a second PUT is refused as busy. A retried PUT
 * after a handoff often meets bytes the old connection had already delivered to this host (socket
 * buffers, read late on a busy event loop): that tail ends within moments, a real second
 * uploader keeps sending.
 */
export const MOVING_WINDOW_MS = 2_000;

export class BodySlots {
  private readonly held = new Map<string, BodyHolder>();

  constructor(
    private readonly timers: Timers = realTimers,
    private readonly movingWindowMs = MOVING_WINDOW_MS,
  ) {}

  get size(): number {
    return this.held.size;
  }

  holderOf(key: string): BodyHolder | undefined {
    return this.held.get(key);
  }

  /**
   * Makes `holder` the one body of `key`, after taking over any current one. Gives up after
   * `maxWaitMs` (a holder that does not let go) or when `signal` aborts (the asker left).
   */
  async claim(key: string, holder: BodyHolder, requester: Requester, policy: ClaimPolicy, maxWaitMs: number, signal: AbortSignal): Promise<Claim> {
    const deadline = this.timers.now() + maxWaitMs;
    const movingUntil = Math.min(deadline, this.timers.now() + this.movingWindowMs);
    for (;;) {
      if (signal.aborted) return { ok: false, reason: 'aborted' };
      const current = this.held.get(key);
      if (!current || current.isOver) {
        this.held.set(key, holder);
        return { ok: true, release: () => void (this.held.get(key) === holder && this.held.delete(key)) };
      }
      if (policy === 'refuse_moving' && !current.isSilent()) {
        // A retry right after a handoff can arrive before takeover_idle of silence has passed, or
        // while the old connection's last delivered bytes are still being read: watch the holder;
        // one still receiving after the moving window is moving (busy), a silent one is taken over.
        const left = movingUntil - this.timers.now();
        if (left <= 0) return { ok: false, reason: 'busy' };
        const watched = await this.waitFor(new Promise<void>(() => {}), Math.min(Math.max(current.msUntilSilent(), 1), left), signal);
        if (watched === 'aborted') return { ok: false, reason: 'aborted' };
        continue;
      }
      const waited = await this.waitFor(current.requestRelease(requester), deadline - this.timers.now(), signal);
      if (waited !== 'done') return { ok: false, reason: waited };
    }
  }

  /** Resolves when `left` does, after `ms` ('timeout'), or when `signal` aborts, whichever is first. */
  private waitFor(left: Promise<void>, ms: number, signal: AbortSignal): Promise<'done' | 'timeout' | 'aborted'> {
    if (ms <= 0) return Promise.resolve('timeout');
    return new Promise((resolve) => {
      const finish = (r: 'done' | 'timeout' | 'aborted') => {
        cancel();
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const onAbort = () => finish('aborted');
      const cancel = this.timers.after(ms, () => finish('timeout'));
      signal.addEventListener('abort', onAbort, { once: true });
      void left.then(() => finish('done'));
    });
  }
}
