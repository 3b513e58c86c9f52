/**
 * `[limits] max_connections_per_client`: the most TCP connections one client address (an IPv6
 * client by its prefix, client-key.ts) keeps open on the main listener. Without it one client,
 * with a few hundred idle or trickling connections, fills `connection_pool_size` and every other
 * client is refused (issue 9: one client must never starve the others). A connection beyond it is
 * closed at once, before any byte is read, as beyond the pool. Not applied behind a trusted proxy
 * (`trust_proxy`): every connection then comes from the proxy, which must bound its clients.
 */
import { clientKeyOf } from '../transfer/index.js';

export class ClientConnections {
  readonly #open = new Map<string, number>();

  /** @param max connections per client (>= 1) */
  constructor(
    private readonly max: number,
    private readonly ipv6PrefixBits: number,
  ) {}

  /** Counts a connection from `address`; null when that client already holds `max` (not counted). Call the returned function once when it closes. */
  enter(address: string): (() => void) | null {
    const client = clientKeyOf(address, this.ipv6PrefixBits);
    const open = this.#open.get(client) ?? 0;
    if (open >= this.max) return null;
    this.#open.set(client, open + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const now = (this.#open.get(client) ?? 1) - 1;
      if (now <= 0) this.#open.delete(client);
      else this.#open.set(client, now);
    };
  }

  /** Clients with a connection open (bounded by the pool size). */
  get clients(): number {
    return this.#open.size;
  }
}
