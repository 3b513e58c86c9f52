/**
 * Per-client caps (issue 9.1): how many upload bodies one client address may stream at once,
 * and how many uploads (tus creations and PUTs) it may start per minute, as a token bucket:
 * a burst of `creationsPerMinute` at once (a chat app sending an album), then that many per
 * minute. Pure: time comes in as an argument. Entries of idle clients are dropped, so the maps
 * stay bounded by the clients active in the last minute. An IPv6 client is counted by its /64
 * (configurable; client-key.ts).
 */
import { PerClientCount } from './per-client-count.js';

export interface ClientLimitOptions {
  /** Concurrent bodies per client; 0 = no cap. */
  maxBodies: number;
  /** Starts per minute per client; 0 = no cap. */
  creationsPerMinute: number;
  /** IPv6 clients are counted by this prefix (client-key.ts); default 64. */
  ipv6PrefixBits?: number;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

export type CreationVerdict = { ok: true } | { ok: false; retryAfterS: number };

/**
 * The per-client caps as the intake uses them: ClientLimits (this process) or, in cluster mode,
 * the cluster's counts in Redis (cluster/cluster-client-limits.ts), hence the promises.
 */
export interface ClientCaps {
  /**
   * Counts a body for the client at `address` (for the slot or upload `slotKey`); null when it
   * already streams its maximum. Call the returned function once when done. `onTakenOver`: a
   * retry of the slot elsewhere (another instance) took this body over; it should let go.
   */
  enterBody(address: string, slotKey?: string, onTakenOver?: () => void): (() => void) | null | Promise<(() => void) | null>;
  /** Takes one start from the client's bucket. */
  allowCreation(address: string, nowMs: number): CreationVerdict | Promise<CreationVerdict>;
}

export class ClientLimits implements ClientCaps {
  private readonly bodies: PerClientCount;
  private readonly buckets = new Map<string, Bucket>();
  private lastSweepMs = 0;

  constructor(private readonly options: ClientLimitOptions) {
    this.bodies = new PerClientCount(options.maxBodies, options.ipv6PrefixBits);
  }

  /** Counts a body for `client`; null when it already streams its maximum. Call the returned function once when done. */
  enterBody(address: string): (() => void) | null {
    return this.bodies.enter(address);
  }

  bodiesOf(address: string): number {
    return this.bodies.countOf(address);
  }

  /** Takes one start from `client`'s bucket. */
  allowCreation(address: string, nowMs: number): CreationVerdict {
    const client = this.keyOf(address);
    const perMinute = this.options.creationsPerMinute;
    if (perMinute <= 0) return { ok: true };
    this.sweep(nowMs);
    const perMs = perMinute / 60_000;
    const b = this.buckets.get(client) ?? { tokens: perMinute, atMs: nowMs };
    const tokens = Math.min(perMinute, b.tokens + (nowMs - b.atMs) * perMs);
    if (tokens < 1) {
      this.buckets.set(client, { tokens, atMs: nowMs });
      return { ok: false, retryAfterS: Math.max(1, Math.ceil((1 - tokens) / perMs / 1000)) };
    }
    this.buckets.set(client, { tokens: tokens - 1, atMs: nowMs });
    return { ok: true };
  }

  /** The key `address` is counted under (an IPv6 client by its prefix). */
  keyOf(address: string): string {
    return this.bodies.keyOf(address);
  }

  /** Buckets untouched for a minute are full again: forget them. */
  private sweep(nowMs: number): void {
    if (nowMs - this.lastSweepMs < 60_000) return;
    this.lastSweepMs = nowMs;
    for (const [client, b] of this.buckets) if (nowMs - b.atMs >= 60_000) this.buckets.delete(client);
  }
}
