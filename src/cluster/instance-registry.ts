/**
 * Heartbeats: each instance publishes what only it knows (its workers, breakers, mode, local
 * journal) under a key with a TTL every interval, so the admin API and CLI of any instance show
 * the whole cluster. An instance that stops removes its entry; one that dies drops out when its
 * key expires (3 intervals). Keys share the hash tag `{cluster}`, so one MGET reads them all on
 * Redis Cluster too.
 */
import type { Redis } from 'ioredis';
import type { InstanceStatus } from '../finalize/index.js';

/** One instance as every instance's admin API shows it (one definition, in finalize/). */
export type InstanceView = InstanceStatus;

export interface InstanceRegistryOptions {
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly intervalMs: number;
  /** This instance's entry now; seenAtMs is filled in. */
  readonly snapshot: () => Promise<Omit<InstanceView, 'seenAtMs'>>;
  readonly onError: (err: unknown, during: string) => void;
}

/** Index entries of instances gone this long are removed by readers. */
const FORGET_AFTER_MS = 24 * 3_600_000;

export class InstanceRegistry {
  readonly #o: InstanceRegistryOptions;
  readonly #index: string;
  #timer: NodeJS.Timeout | undefined;
  #id: string | null = null;
  #running = false;

  constructor(options: InstanceRegistryOptions) {
    this.#o = options;
    this.#index = `${options.keyPrefix}{cluster}:instances`;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const beat = () => {
      if (!this.#running) return;
      void this.beat().finally(() => {
        if (this.#running) this.#timer = setTimeout(beat, this.#o.intervalMs).unref();
      });
    };
    beat();
  }

  /** Publishes this instance's entry now (also on the interval). Never rejects. */
  async beat(): Promise<void> {
    try {
      const view: InstanceView = { ...(await this.#o.snapshot()), seenAtMs: Date.now() };
      this.#id = view.id;
      await this.#o.redis
        .multi()
        .set(this.#keyOf(view.id), JSON.stringify(view), 'PX', this.#o.intervalMs * 3)
        .zadd(this.#index, view.seenAtMs, view.id)
        .exec();
    } catch (err) {
      this.#o.onError(err, 'instance heartbeat');
    }
  }

  /** Every live instance, by id. */
  async list(): Promise<InstanceView[]> {
    const { redis } = this.#o;
    const ids = await redis.zrange(this.#index, 0, -1);
    if (ids.length === 0) return [];
    const values = await redis.mget(...ids.map((id) => this.#keyOf(id)));
    const live: InstanceView[] = [];
    const forgotten: string[] = [];
    const scores = await redis.zmscore(this.#index, ...ids);
    ids.forEach((id, i) => {
      const value = values[i];
      if (value) live.push(JSON.parse(value) as InstanceView);
      else if (Date.now() - Number(scores[i] ?? 0) > FORGET_AFTER_MS) forgotten.push(id);
    });
    if (forgotten.length > 0) await redis.zrem(this.#index, ...forgotten).catch(() => 0);
    return live.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Stops beating and removes this instance's entry (best effort: it expires anyway). */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    if (this.#id === null) return;
    await this.#o.redis.multi().del(this.#keyOf(this.#id)).zrem(this.#index, this.#id).exec().catch(() => {});
  }

  #keyOf(id: string): string {
    return `${this.#o.keyPrefix}{cluster}:instance:${id}`;
  }
}
