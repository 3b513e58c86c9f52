/**
 * "Published" notifications between instances: a GET at instance B that waits for a file still
 * being finalized at instance A wakes when A publishes it. One Redis pub/sub channel per key
 * prefix; a message is the slot path. Best effort: a message lost while Redis is unreachable
 * only makes the waiting GET answer 503 with Retry-After at the end of its bounded wait (its
 * client retries and finds the file), never a 404.
 */
import type { Redis } from 'ioredis';

export interface PublishFeedOptions {
  /** Sends the notifications. */
  readonly redis: Redis;
  readonly channel: string;
  readonly onError: (err: unknown, during: string) => void;
}

type State = 'created' | 'running' | 'closed';

export class PublishFeed {
  readonly #o: PublishFeedOptions;
  readonly #listeners = new Set<(slotPath: string) => void>();
  #subscriber: Redis | undefined;
  #state: State = 'created';

  constructor(options: PublishFeedOptions) {
    this.#o = options;
  }

  /**
   * Subscribes on a duplicate connection (ioredis subscribes again by itself after a reconnect).
   * A failed start (Redis gone meanwhile) may be tried again.
   */
  async start(): Promise<void> {
    if (this.#state !== 'created') return;
    const subscriber = this.#o.redis.duplicate();
    subscriber.on('error', (err: unknown) => this.#o.onError(err, 'publish feed subscriber'));
    subscriber.on('message', (channel: string, slotPath: string) => {
      if (channel !== this.#o.channel) return;
      for (const listener of [...this.#listeners]) listener(slotPath);
    });
    try {
      await subscriber.subscribe(this.#o.channel);
    } catch (err) {
      subscriber.disconnect();
      throw err;
    }
    if (this.#state !== 'created') {
      subscriber.disconnect(); // closed while subscribing
      return;
    }
    this.#subscriber = subscriber;
    this.#state = 'running';
  }

  get started(): boolean {
    return this.#state === 'running';
  }

  /** Tells every instance (this one included) that `slotPath` is published. Never rejects. */
  announce(slotPath: string): void {
    if (this.#state !== 'running') return;
    this.#o.redis.publish(this.#o.channel, slotPath).catch((err: unknown) => this.#o.onError(err, 'announce published file'));
  }

  onAnnounce(listener: (slotPath: string) => void): void {
    this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    this.#state = 'closed';
    this.#listeners.clear();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    subscriber?.disconnect();
  }
}
