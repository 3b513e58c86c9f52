/**
 * At most `capacity` scans at once (scan.concurrency, the Go server's numscanworkers). A
 * finalization worker over the limit waits here, in arrival order; its signal ends the wait.
 */
export class ScanSlots {
  readonly #capacity: number;
  #active = 0;
  readonly #waiters: Array<() => void> = [];

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be an integer >= 1, got ${capacity}`);
    this.#capacity = capacity;
  }

  get active(): number {
    return this.#active;
  }

  /** Resolves a release function once a slot is free; rejects with the signal's reason if it aborts first. */
  async acquire(signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted();
    if (this.#active < this.#capacity) {
      this.#active += 1;
      return this.#releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal.reason);
      };
      this.#waiters.push(grant);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    return this.#releaser(); // the slot was handed over by the releaser: #active already counts it
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next) next();
      else this.#active -= 1;
    };
  }
}
