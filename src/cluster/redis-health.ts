/**
 * Is Redis reachable from this instance? One PING on a dedicated client every interval, and at
 * once when a connection closes or opens or a caller saw a Redis call fail. Reports each change
 * once; the cluster mode (cluster-mode.ts) turns changes into degraded / restored.
 */
import type { Redis } from 'ioredis';

export interface RedisHealthOptions {
  /** A client without offline queue (redis-clients.ts 'probe'): PING fails at once while disconnected. */
  readonly probe: Redis;
  readonly intervalMs: number;
  /** How long start() waits for the first connection before its first PING. */
  readonly connectTimeoutMs: number;
  readonly onChange: (reachable: boolean) => void;
}

type State = 'created' | 'running' | 'stopped';

export class RedisHealth {
  readonly #o: RedisHealthOptions;
  #state: State = 'created';
  #reachable = false;
  #lastReachableAt: number | undefined;
  #known = false;
  #timer: NodeJS.Timeout | undefined;
  #probing: Promise<void> | null = null;
  #again = false;

  constructor(options: RedisHealthOptions) {
    this.#o = options;
  }

  get reachable(): boolean {
    return this.#reachable;
  }

  /** Epoch ms of the last PING Redis answered (sent then), undefined before the first. */
  get lastReachableAt(): number | undefined {
    return this.#lastReachableAt;
  }

  /** Probes once (the first answer decides the starting state, reported through onChange), then on the interval. */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new Error(`redis health cannot start from ${this.#state}`);
    this.#state = 'running';
    const { probe } = this.#o;
    await firstConnection(probe, this.#o.connectTimeoutMs); // or the first PING fails on a connection still opening
    probe.on('close', () => this.check());
    probe.on('ready', () => this.check());
    await this.check();
    this.#schedule();
  }

  stop(): void {
    this.#state = 'stopped';
    clearTimeout(this.#timer);
  }

  /** A Redis call failed or timed out somewhere: look now (coalesced with a probe in flight). */
  check(): Promise<void> {
    if (this.#state !== 'running') return Promise.resolve();
    if (this.#probing !== null) {
      this.#again = true;
      return this.#probing;
    }
    this.#probing = (async () => {
      do {
        this.#again = false;
        let ok: boolean;
        try {
          const sentAt = Date.now();
          ok = (await this.#o.probe.ping()) === 'PONG';
          if (ok) this.#lastReachableAt = sentAt;
        } catch {
          ok = false;
        }
        this.#set(ok);
      } while (this.#again && this.#state === 'running');
    })().finally(() => {
      this.#probing = null;
    });
    return this.#probing;
  }

  #set(reachable: boolean): void {
    if (this.#state !== 'running') return;
    // The first answer is reported whatever it is: it is the starting state.
    if (this.#known && reachable === this.#reachable) return;
    this.#known = true;
    this.#reachable = reachable;
    this.#o.onChange(reachable);
  }

  #schedule(): void {
    if (this.#state !== 'running') return;
    this.#timer = setTimeout(() => {
      void this.check().finally(() => this.#schedule());
    }, this.#o.intervalMs);
    this.#timer.unref();
  }
}

/** Resolves once the client is connected, failed its first attempt, or `ms` passed. */
function firstConnection(client: Redis, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done);
      client.off('error', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    client.once('ready', done);
    client.once('error', done);
  });
}
