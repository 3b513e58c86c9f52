/**
 * A load balancer for cluster tests: a TCP proxy on 127.0.0.1 that hands each new client
 * connection to the next backend (round robin, no stickiness), or to one pinned backend.
 *
 *   pin(i) / unpin()   new connections go to backend i / round robin again
 *   switchNetwork()    a phone leaving WiFi: every open connection is dropped on the client side
 *                      (the client sees its socket fail and reconnects), while the backend side
 *                      stays open and silent, no FIN, no RST, like a peer that vanished
 *   bytesUp[i]         request bytes clients sent towards backend i; waitForBytes(i, n) resolves
 *                      once that count reaches n (an event, not a poll)
 *   setBackend(i, port)  a restarted backend on a new port
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { withTimeout } from './service.js';

interface Link {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  readonly backend: number;
}

export class RoundRobinProxy extends EventEmitter<{ bytes: [backend: number] }> {
  readonly bytesUp: number[];
  readonly connections: number[];
  #server: net.Server | undefined;
  #ports: number[];
  #next = 0;
  #pinned: number | null = null;
  readonly #links = new Set<Link>();
  /** Backend sockets left hanging by switchNetwork(), destroyed on close(). */
  readonly #hanging = new Set<net.Socket>();

  constructor(ports: readonly number[]) {
    super();
    this.#ports = [...ports];
    this.bytesUp = ports.map(() => 0);
    this.connections = ports.map(() => 0);
  }

  get port(): number {
    return (this.#server!.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.#server = net.createServer((client) => this.#accept(client));
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
  }

  /** Resolves once clients sent at least `bytes` towards `backend` in total (bounded wait). */
  waitForBytes(backend: number, bytes: number, timeoutMs = 60_000): Promise<void> {
    if (this.bytesUp[backend]! >= bytes) return Promise.resolve();
    let listener!: (b: number) => void;
    const reached = new Promise<void>((resolve) => {
      listener = (b) => {
        if (b === backend && this.bytesUp[backend]! >= bytes) resolve();
      };
      this.on('bytes', listener);
    });
    return withTimeout(reached, timeoutMs, `backend ${backend} did not receive ${bytes} bytes`).finally(() => this.off('bytes', listener));
  }

  pin(backend: number): void {
    this.#pinned = backend;
  }

  unpin(): void {
    this.#pinned = null;
  }

  setBackend(backend: number, port: number): void {
    this.#ports[backend] = port;
  }

  /** Client sides fail now; backend sides stay open and silent (half-open, as after a network switch). */
  switchNetwork(): void {
    for (const link of [...this.#links]) {
      this.#links.delete(link);
      link.client.unpipe(link.upstream);
      link.upstream.unpipe(link.client);
      link.upstream.removeAllListeners('data');
      link.upstream.pause();
      this.#hanging.add(link.upstream);
      link.client.destroy();
    }
  }

  /** Ends every connection to `backend` at once (a crashed backend, as the client sees it). */
  dropBackend(backend: number): void {
    for (const link of [...this.#links]) {
      if (link.backend !== backend) continue;
      link.client.destroy();
      link.upstream.destroy();
    }
  }

  async close(): Promise<void> {
    for (const link of this.#links) {
      link.client.destroy();
      link.upstream.destroy();
    }
    for (const socket of this.#hanging) socket.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }

  #accept(client: net.Socket): void {
    const backend = this.#pinned ?? this.#next++ % this.#ports.length;
    this.connections[backend]! += 1;
    const upstream = net.connect({ host: '127.0.0.1', port: this.#ports[backend]! });
    const link: Link = { client, upstream, backend };
    this.#links.add(link);
    const end = () => {
      if (!this.#links.delete(link)) return;
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      this.bytesUp[backend]! += chunk.length;
      this.emit('bytes', backend);
    });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  }
}
