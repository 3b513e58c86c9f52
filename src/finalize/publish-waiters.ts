/**
 * Requests waiting for a slot to be published (a GET of a file still being finalized). Waiters
 * are woken by notify(slot), not by polling; their number is bounded, and a request beyond the
 * bound is answered at once as not ready.
 */
import type { Clock, TimerHandle } from '../queue/index.js';

export class PublishWaiters {
  readonly #bySlot = new Map<string, Set<(published: boolean) => void>>();
  readonly #clock: Clock;
  readonly #max: number;
  #count = 0;

  constructor(clock: Clock, max = 10_000) {
    this.#clock = clock;
    this.#max = max;
  }

  get size(): number {
    return this.#count;
  }

  /**
   * Resolves true when notify(slotPath) comes within timeoutMs; false on timeout, abort,
   * release(), or when `max` requests wait already. Never rejects.
   */
  wait(slotPath: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#count >= this.#max || signal?.aborted || !(timeoutMs > 0)) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let timer: TimerHandle | undefined;
      const done = (published: boolean) => {
        this.#clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const set = this.#bySlot.get(slotPath);
        if (set?.delete(done)) {
          this.#count -= 1;
          if (set.size === 0) this.#bySlot.delete(slotPath);
        }
        resolve(published);
      };
      const onAbort = () => done(false);
      let set = this.#bySlot.get(slotPath);
      if (set === undefined) this.#bySlot.set(slotPath, (set = new Set()));
      set.add(done);
      this.#count += 1;
      timer = this.#clock.setTimeout(() => done(false), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  notify(slotPath: string): void {
    for (const done of [...(this.#bySlot.get(slotPath) ?? [])]) done(true);
  }

  /** Wakes every waiter with false (shutdown). */
  release(): void {
    for (const set of [...this.#bySlot.values()]) for (const done of [...set]) done(false);
  }
}
