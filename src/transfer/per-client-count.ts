/**
 * How many of something (upload bodies, TCP connections) each client holds, with a cap: the
 * counting behind ClientLimits' body cap and the listener's max_connections_per_client. A client
 * is its client key (an IPv6 client by its prefix, client-key.ts); clients at 0 are forgotten, so
 * the map is bounded by the clients holding something now.
 */
import { clientKeyOf } from './client-key.js';

export class PerClientCount {
  readonly #held = new Map<string, number>();

  /** @param max per client; 0 = no cap */
  constructor(
    private readonly max: number,
    private readonly ipv6PrefixBits = 64,
  ) {}

  /** Counts one for the client at `address`; null when it holds `max` already (not counted). Call the returned function once when it is given back. */
  enter(address: string): (() => void) | null {
    const client = this.keyOf(address);
    const n = this.#held.get(client) ?? 0;
    if (this.max > 0 && n >= this.max) return null;
    this.#held.set(client, n + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const m = (this.#held.get(client) ?? 1) - 1;
      if (m <= 0) this.#held.delete(client);
      else this.#held.set(client, m);
    };
  }

  /** What the client at `address` holds. */
  countOf(address: string): number {
    return this.#held.get(this.keyOf(address)) ?? 0;
  }

  /** Clients holding something. */
  get clients(): number {
    return this.#held.size;
  }

  /** The key `address` is counted under (an IPv6 client by its prefix). */
  keyOf(address: string): string {
    return clientKeyOf(address, this.ipv6PrefixBits);
  }
}
