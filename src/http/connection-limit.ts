/**
 * `[server] connection_pool_size`: the most TCP connections the main listener keeps open (Node's
 * `maxConnections`; a connection beyond it is closed at once, before any byte is read). It bounds
 * file descriptors and per-socket memory against a flood of idle or slow connections. Each refusal
 * is counted (hmac_connections_refused_total); the log gets one line when refusals start and one
 * when the count fell back below the resume mark, not one per refused connection.
 */
import type { Server } from 'node:http';
import type { Logger } from '../observability/index.js';
import { metrics } from '../observability/index.js';

/** Pure: decides when a refusal episode starts and ends. */
export class LimitEpisodes {
  #refused = 0;
  #active = false;

  /** @param resumeAt open connections at or under which an episode is over (below the limit: a count hovering at it logs once). */
  constructor(private readonly resumeAt: number) {}

  /** A connection was refused; true when this starts an episode. */
  refused(): boolean {
    this.#refused++;
    if (this.#active) return false;
    this.#active = true;
    return true;
  }

  /** The open count changed; the number refused in the episode when this ends it, else null. */
  openCount(open: number): number | null {
    if (!this.#active || open > this.resumeAt) return null;
    const refused = this.#refused;
    this.#active = false;
    this.#refused = 0;
    return refused;
  }
}

/** Applies the limit to `server`; `openCount()` reads the listener's open connections. */
export function limitConnections(server: Server, limit: number, log: Logger, openCount: () => number): { onClose(): void } {
  server.maxConnections = limit;
  metrics.connectionsRefused.inc({ limit: 'pool' }, 0);
  const episodes = new LimitEpisodes(Math.min(limit - 1, Math.floor(limit * 0.9)));
  server.on('drop', () => {
    metrics.connectionsRefused.inc({ limit: 'pool' });
    if (episodes.refused()) log.warn({ limit }, 'Connection limit reached: new connections are refused (server.connection_pool_size)');
  });
  return {
    onClose() {
      const refused = episodes.openCount(openCount());
      if (refused !== null) log.info({ limit, refused }, 'Connections below the limit again: accepting new connections');
    },
  };
}
