/**
 * `[server] connection_pool_size`: the most TCP connections the main listener keeps open (a
 * connection beyond it replaces the longest idle keep-alive connection, or is closed at once,
 * before any byte is read). It bounds
 * file descriptors and per-socket memory against a flood of idle or slow connections. Each refusal
 * is counted (hmac_connections_refused_total); the log gets one line when refusals start and one
 * when the count fell back below the resume mark, not one per refused connection.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
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

/**
 * Applies the limit to `server`; `openCount()` reads the listener's open connections (the new
 * one not yet among them). A connection beyond the limit first takes the place of the connection
 * idle the longest: no request in flight, between two requests of a keep-alive connection or
 * before its first (its client opens a new one when it needs it, as after keepAliveTimeout);
 * only when every open connection is busy is it refused. Idle sockets from a few addresses
 * filled the pool before, and every other client was refused until they timed out.
 */
export function limitConnections(server: Server, limit: number, log: Logger, openCount: () => number): { admit(socket: Socket): boolean; onClose(): void } {
  metrics.connectionsRefused.inc({ limit: 'pool' }, 0);
  metrics.idleConnectionsClosed.inc(0);
  const episodes = new LimitEpisodes(Math.min(limit - 1, Math.floor(limit * 0.9)));
  // By the TCP socket the listener accepted (a TLS request's socket wraps it): requests in
  // flight, and the idle ones, longest idle first (insertion order).
  const inFlight = new WeakMap<Duplex, number>();
  const idle = new Map<Duplex, true>();
  const requestStarts = (req: IncomingMessage, res: ServerResponse) => {
    const socket = tcpOf(req.socket);
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    idle.delete(socket);
    res.once('close', () => {
      const left = (inFlight.get(socket) ?? 1) - 1;
      inFlight.set(socket, left);
      if (left === 0 && !socket.destroyed) idle.set(socket, true);
    });
  };
  // Every way a request reaches the app: a 100-continue upload is never a 'request'.
  server.on('request', requestStarts);
  server.on('checkContinue', requestStarts);
  server.on('checkExpectation', requestStarts);
  server.on('connect', (req: IncomingMessage, socket: Duplex) => idle.delete(tcpOf(socket))); // answered, then closed (client-errors.ts)
  return {
    admit(socket) {
      socket.once('close', () => idle.delete(socket));
      if (openCount() >= limit) {
        let longestIdle: Duplex | undefined;
        for (const s of idle.keys()) {
          if (!s.destroyed) {
            longestIdle = s;
            break;
          }
        }
        if (longestIdle === undefined) {
          socket.destroy();
          metrics.connectionsRefused.inc({ limit: 'pool' });
          if (episodes.refused()) log.warn({ limit }, 'Connection limit reached: new connections are refused (server.connection_pool_size)');
          return false;
        }
        idle.delete(longestIdle);
        longestIdle.destroy();
        metrics.idleConnectionsClosed.inc();
      }
      idle.set(socket, true); // idle until its first request
      return true;
    },
    onClose() {
      const refused = episodes.openCount(openCount());
      if (refused !== null) log.info({ limit, refused }, 'Connections below the limit again: accepting new connections');
    },
  };
}

/** The TCP socket under a request's socket: a TLS socket wraps the one the listener accepted. */
function tcpOf(socket: Duplex): Duplex {
  return (socket as { _parent?: Duplex | null })._parent ?? socket;
}
