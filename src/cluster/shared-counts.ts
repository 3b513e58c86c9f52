/**
 * Where the cluster-wide [limits] count right now: in Redis while it answers, in this process
 * while it does not (degraded mode). One log line per switch, for all of them together, so an
 * outage says once that a client may get up to N times its caps across N instances meanwhile.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/index.js';

export interface SharedCountsOptions {
  /** The commands client while Redis is reachable, else null (counted locally at once, no timeout wait). */
  readonly redis: () => Redis | null;
  readonly keyPrefix: string;
  /** How long a crashed instance's body leases keep counting (renewed every third of it). */
  readonly leaseMs: number;
  readonly log: Logger;
  /** A Redis call failed: health re-checks at once. */
  readonly onSharedFailure: (err: unknown, during: string) => void;
}

export class SharedCounts {
  readonly #o: SharedCountsOptions;
  readonly #onBack: Array<() => void> = [];
  #local = false;

  constructor(options: SharedCountsOptions) {
    this.#o = options;
  }

  get keyPrefix(): string {
    return this.#o.keyPrefix;
  }

  get leaseMs(): number {
    return this.#o.leaseMs;
  }

  /** Called when Redis answers again after counting locally (what changed meanwhile is written again). */
  onBack(listener: () => void): void {
    this.#onBack.push(listener);
  }

  /** True while the limits count in this process only. */
  get local(): boolean {
    return this.#local;
  }

  /**
   * Runs `shared` on Redis; `fallback` (this process's numbers) when Redis is unreachable or the
   * call fails. Never rejects because of Redis.
   */
  async run<T>(during: string, shared: (redis: Redis) => Promise<T>, fallback: () => T): Promise<T> {
    const redis = this.#o.redis();
    if (redis === null) {
      this.#switch(true);
      return fallback();
    }
    try {
      const value = await shared(redis);
      this.#switch(false);
      return value;
    } catch (err) {
      this.#o.onSharedFailure(err, `limits ${during}`);
      this.#switch(true);
      return fallback();
    }
  }

  /** Best effort (a release, a renewal): failures only reported. */
  async tryShared(during: string, shared: (redis: Redis) => Promise<unknown>): Promise<void> {
    const redis = this.#o.redis();
    if (redis === null) return;
    await shared(redis).catch((err: unknown) => this.#o.onSharedFailure(err, `limits ${during}`));
  }

  #switch(local: boolean): void {
    if (local === this.#local) return;
    this.#local = local;
    if (local) this.#o.log.warn('Cluster limits counted per instance: Redis unreachable');
    else {
      this.#o.log.info('Cluster limits counted across the cluster again');
      for (const listener of this.#onBack) listener();
    }
  }
}
