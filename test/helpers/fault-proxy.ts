/**
 * FaultProxy: a TCP proxy for end-to-end tests that puts a controllable "bad network"
 * between a client and an upstream server on 127.0.0.1.
 *
 * Resumable uploads exist because real networks fail in ugly ways, and the server has to
 * cope with every one of them. This proxy simulates them on demand, on live connections:
 *   - cut()            the peer closes cleanly (FIN on both sides)
 *   - reset()          the connection is killed (TCP RST on both sides)
 *   - blackhole()      half-open WiFi: nothing moves in either direction, but no FIN/RST either,
 *                      so both ends keep waiting (the server must rely on its own timeouts)
 *   - throttle(bps)    a slow link (real pacing: chunks are split and delayed)
 *   - cutAfter(n) / resetAfter(n)  drop a connection mid-request after n client->upstream bytes
 *   - switchNetwork()  WiFi -> 4G handoff: old connections hang (blackholed), new ones arrive
 *                      from a fresh listener, so the server sees a new peer mid-upload
 *   - handoff(addr)    WiFi -> 4G as the server sees it: the client's side of every live
 *                      connection is reset (the phone's OS drops the WiFi sockets), the server's
 *                      side is left half-open and silent (no FIN, no RST), and new connections
 *                      reach the server from another source address (`localAddress`, e.g.
 *                      127.0.0.2 -> 127.0.0.3); with a port, new connections also reach
 *                      another upstream (a load balancer sending the phone to another instance)
 * Counters and events (`waitForBytes`, `waitForConnections`, `waitFor`, 'connection', ...)
 * let tests await progress instead of sleeping.
 *
 * Each direction of a connection is a small queue (a "router buffer" of `bufferBytes`): the
 * proxy reads from the source into it and forwards from it; when it is full the source is
 * paused, so backpressure reaches the sender as it would on a real congested or dead link.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export type Direction = 'up' | 'down'; // up = client -> upstream, down = upstream -> client
export type FaultKind = 'cut' | 'reset';

export interface FaultProxyOptions {
  upstreamPort: number;
  upstreamHost?: string; // default 127.0.0.1
  bufferBytes?: number; // per-direction queue before the source is paused; default 1 MiB
  localAddress?: string; // source address of upstream connections (e.g. 127.0.0.2); default: the OS's choice
  recordUp?: boolean; // keep every byte forwarded client -> upstream per connection (ProxyConnection.forwardedUp)
}

export interface FaultProxyEvents {
  connection: [conn: ProxyConnection]; // a client connected to the proxy
  receive: [conn: ProxyConnection, dir: Direction, bytes: number]; // read from a source
  forward: [conn: ProxyConnection, dir: Direction, bytes: number]; // written to a destination
  fault: [kind: FaultKind, conn: ProxyConnection]; // a cutAfter/resetAfter trigger fired
  disconnect: [conn: ProxyConnection]; // both sockets of a connection are closed
  listening: [port: number]; // a listener started (start() or switchNetwork())
}

/** One client connection and its upstream leg. Counters are cumulative. */
export class ProxyConnection {
  bytesUp = 0; // forwarded client -> upstream
  bytesDown = 0; // forwarded upstream -> client
  receivedUp = 0; // read from the client (forwarded, or still queued in the proxy)
  receivedDown = 0; // read from upstream (forwarded, or still queued in the proxy)
  blackholed = false;
  killed = false; // cut() or reset() was applied
  closed = false; // both sockets closed
  trigger: { kind: FaultKind; at: number } | undefined; // fire `kind` when bytesUp reaches `at`
  readonly upstream = new net.Socket({ allowHalfOpen: true });
  /** With `recordUp`: the bytes forwarded client -> upstream, in order. */
  readonly upChunks: Buffer[] = [];
  private readonly pipes: Pipe[];
  private dialed = false;
  private peerReset = false; // a side died with an error while blackholed: tell the other on restore()

  constructor(
    readonly proxy: FaultProxy,
    readonly id: number,
    readonly client: net.Socket,
    private readonly target: { host: string; port: number },
    /** Source address of the upstream leg (what the server sees as the client's address). */
    readonly localAddress: string | undefined,
  ) {
    this.pipes = [new Pipe(this, client, this.upstream, 'up'), new Pipe(this, this.upstream, client, 'down')];
    let open = 2;
    for (const [sock, other] of [[client, this.upstream], [this.upstream, client]] as const) {
      sock.setNoDelay(true);
      sock.on('error', () => {}); // surfaced through 'close' (hadError) and the peer's view
      sock.on('close', (hadError) => {
        // A clean FIN is forwarded by the Pipe; an error (RST) is passed on as a RST, except that
        // a blackholed link carries no news of a peer's death: the other side keeps hanging.
        if (hadError && !this.killed) { if (this.blackholed) this.peerReset = true; else destroy(other, true); }
        if (--open === 0) { this.closed = true; proxy.emit('disconnect', this); }
      });
    }
  }

  /** Connect upstream (deferred while blackholed: the server sees nothing of a dead link). */
  connect(): void {
    if (this.blackholed || this.dialed || this.upstream.destroyed) return;
    this.dialed = true;
    this.upstream.connect({ port: this.target.port, host: this.target.host, ...(this.localAddress ? { localAddress: this.localAddress } : {}) });
  }

  /** The phone lost this network: reset the client's side, leave the server's side open and silent. */
  dropClient(): void {
    if (this.killed) return;
    this.blackholed = true;
    destroy(this.client, true);
  }

  cut(): void { this.kill('cut'); } // FIN both sides, discarding whatever is still queued
  reset(): void { this.kill('reset'); } // RST both sides
  blackhole(): void { this.blackholed = true; } // stop forwarding both ways, close nothing
  /** Resume forwarding (queued bytes are delivered, like a link that comes back). */
  restore(): void {
    if (!this.blackholed || this.killed) return;
    this.blackholed = false;
    if (this.peerReset) return this.kill('reset');
    this.connect();
    for (const p of this.pipes) void p.run();
  }

  kill(kind: FaultKind): void {
    if (this.killed) return;
    this.killed = true;
    this.trigger = undefined;
    for (const p of this.pipes) p.drop();
    for (const s of [this.client, this.upstream]) {
      if (s === this.upstream && !this.dialed) s.destroy(); // blackholed from birth: nothing to close
      else if (kind === 'reset') destroy(s, true);
      else s.end();
    }
  }
}

/** One direction of a connection: queue from `src`, paced/gated forwarding to `dst`. */
class Pipe {
  private queue: Buffer[] = [];
  private queued = 0;
  private srcDone = false;
  private running = false;
  private nextAt = 0; // performance.now() before which the next throttled slice may not go

  constructor(private readonly conn: ProxyConnection, private readonly src: net.Socket, private readonly dst: net.Socket, private readonly dir: Direction) {
    src.on('data', (chunk: Buffer) => {
      if (conn.killed) return;
      this.queue.push(chunk);
      this.queued += chunk.length;
      if (dir === 'up') conn.receivedUp += chunk.length; else conn.receivedDown += chunk.length;
      if (this.queued >= conn.proxy.bufferBytes) src.pause();
      conn.proxy.emit('receive', conn, dir, chunk.length);
      void this.run();
    });
    src.on('end', () => { this.srcDone = true; void this.run(); });
  }

  drop(): void { this.queue = []; this.queued = 0; this.src.resume(); }

  async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const { conn, dst, dir } = this;
    const proxy = conn.proxy;
    try {
      while (!conn.killed && !conn.blackholed) {
        const chunk = this.queue[0];
        if (!chunk) {
          if (this.srcDone && !dst.writableEnded) dst.end(); // propagate FIN after the data
          break;
        }
        if (dst.destroyed) { this.drop(); break; }
        const rate = proxy.rate(dir);
        const wait = this.nextAt - performance.now();
        if (rate && wait > 0) { await sleep(wait); continue; } // re-check faults after sleeping
        let n = rate ? Math.min(chunk.length, Math.max(1, Math.floor(rate / 50))) : chunk.length; // ~20 ms slices
        const trig = dir === 'up' ? conn.trigger : undefined;
        const fire = trig && conn.bytesUp + n >= trig.at ? trig : undefined;
        if (fire) n = Math.max(0, fire.at - conn.bytesUp); // forward exactly up to the trigger
        const slice = chunk.subarray(0, n);
        if (n === chunk.length) this.queue.shift(); else this.queue[0] = chunk.subarray(n);
        this.queued -= n;
        // Keep at most ~20 ms of credit, so timer lateness is caught up but idle time is not banked.
        if (rate) this.nextAt = Math.max(performance.now() - 20, this.nextAt) + (n * 1000) / rate;
        if (dir === 'up') { conn.bytesUp += n; proxy.bytesUp += n; } else { conn.bytesDown += n; proxy.bytesDown += n; }
        if (n > 0) {
          if (dir === 'up' && proxy.recordUp) conn.upChunks.push(Buffer.from(slice));
          const written = new Promise<void>((resolve) => dst.write(slice, () => resolve()));
          proxy.emit('forward', conn, dir, n);
          await written; // wait until handed to the kernel: backpressure for the queue
        }
        if (fire) { proxy.fire(conn, fire.kind); break; }
        if (this.queued < proxy.bufferBytes && !this.srcDone) this.src.resume();
      }
    } finally {
      this.running = false;
    }
  }
}

export class FaultProxy extends EventEmitter<FaultProxyEvents> {
  readonly connections: ProxyConnection[] = []; // every connection ever accepted, in order
  bytesUp = 0; // total forwarded client -> upstream
  bytesDown = 0; // total forwarded upstream -> client
  readonly bufferBytes: number;
  readonly recordUp: boolean;
  /** Source address for new upstream connections; handoff() changes it. */
  localAddress: string | undefined;
  private target: { host: string; port: number };
  private server: net.Server | undefined;
  private readonly oldServers: net.Server[] = [];
  private rates: Record<Direction, number | null> = { up: null, down: null };
  private blackholeNew = false;
  private nextTrigger: { kind: FaultKind; n: number; once: boolean } | undefined;
  private closing: Promise<void> | undefined;

  constructor(opts: FaultProxyOptions) {
    super();
    this.target = { host: opts.upstreamHost ?? '127.0.0.1', port: opts.upstreamPort };
    this.bufferBytes = opts.bufferBytes ?? 1024 * 1024;
    this.localAddress = opts.localAddress;
    this.recordUp = opts.recordUp ?? false;
  }

  get port(): number {
    const addr = this.server?.address();
    if (!addr || typeof addr === 'string') throw new Error('FaultProxy is not listening');
    return addr.port;
  }
  get url(): string { return `http://127.0.0.1:${this.port}`; }
  get connectionsAccepted(): number { return this.connections.length; }
  /** Connections whose sockets are not both closed yet (includes blackholed ones). */
  get liveConnections(): ProxyConnection[] { return this.connections.filter((c) => !c.closed); }

  async start(): Promise<this> {
    if (this.closing) throw new Error('FaultProxy is closed');
    this.server = await this.listen();
    return this;
  }

  /** FIN both sides of every live connection. */
  cut(): void { for (const c of this.liveConnections) c.cut(); }
  /** RST both sides of every live connection. */
  reset(): void { for (const c of this.liveConnections) c.reset(); }
  /** Freeze live connections and new ones (accepted, but upstream not contacted) until restore(). */
  blackhole(): void { this.blackholeNew = true; for (const c of this.liveConnections) c.blackhole(); }
  /** Undo blackhole() for live and future connections (also those frozen by switchNetwork()). */
  restore(): void { this.blackholeNew = false; for (const c of this.liveConnections) c.restore(); }

  /** Limit each connection to `bytesPerSecond` client->upstream (and upstream->client if `both`); 0/null removes it. */
  throttle(bytesPerSecond: number | null, both = false): void {
    const r = bytesPerSecond && bytesPerSecond > 0 ? bytesPerSecond : null;
    this.rates = { up: r, down: both ? r : null };
  }
  rate(dir: Direction): number | null { return this.rates[dir]; }

  /** Cut a connection once n more client->upstream bytes have passed (live: counted from now; new: from their start). */
  cutAfter(n: number, opts: { once?: boolean } = {}): void { this.arm('cut', n, opts.once ?? true); }
  /** Like cutAfter(), with a RST. Exactly n bytes reach upstream (RST may still discard some in flight). */
  resetAfter(n: number, opts: { once?: boolean } = {}): void { this.arm('reset', n, opts.once ?? true); }
  /** Disarm cutAfter()/resetAfter(). */
  clearTriggers(): void { this.nextTrigger = undefined; for (const c of this.connections) c.trigger = undefined; }

  /** WiFi -> 4G: blackhole live connections, stop accepting on the old port, listen on a new one. */
  async switchNetwork(): Promise<{ port: number; url: string }> {
    if (!this.server || this.closing) throw new Error('FaultProxy is not running');
    for (const c of this.liveConnections) c.blackhole();
    this.blackholeNew = false; // the new network works
    const old = this.server;
    this.server = await this.listen(); // bound before the old one closes, so the port differs
    old.close();
    this.oldServers.push(old);
    return { port: this.port, url: this.url };
  }

  /**
   * WiFi -> 4G as the server sees it: every live connection's client side is reset (clients
   * notice at once and retry), its server side is left half-open and silent, and new
   * connections reach the server from `newLocalAddress` (and, given `newUpstreamPort`, another
   * server: the load balancer picked another instance). Returns the connections left hanging.
   */
  handoff(newLocalAddress: string, newUpstreamPort?: number): ProxyConnection[] {
    const hanging = this.liveConnections.filter((c) => !c.killed);
    for (const c of hanging) c.dropClient();
    this.localAddress = newLocalAddress;
    if (newUpstreamPort !== undefined) this.target = { ...this.target, port: newUpstreamPort }; // live ones keep theirs
    return hanging;
  }

  /** Resolve once `predicate()` holds, re-checking on every `event`. */
  waitFor<K extends keyof FaultProxyEvents>(event: K, predicate: () => boolean): Promise<void> {
    if (predicate()) return Promise.resolve();
    const ee: EventEmitter = this; // untyped view: `check` ignores the event's arguments
    return new Promise((resolve) => {
      const check = (): void => { if (predicate()) { ee.off(event, check); resolve(); } };
      ee.on(event, check);
    });
  }
  /** Resolve once at least n bytes in total were forwarded client -> upstream. */
  waitForBytes(n: number): Promise<void> { return this.waitFor('forward', () => this.bytesUp >= n); }
  /** Resolve once at least n connections were accepted (counting from the proxy's start). */
  waitForConnections(n: number): Promise<void> { return this.waitFor('connection', () => this.connections.length >= n); }

  /** Destroy every socket (blackholed ones too) and close all listeners. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of this.connections) { c.killed = true; destroy(c.client, false); destroy(c.upstream, false); }
      const servers = [...this.oldServers, ...(this.server ? [this.server] : [])];
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
    })();
    return this.closing;
  }

  /** @internal called by a Pipe when a trigger fires. */
  fire(conn: ProxyConnection, kind: FaultKind): void {
    if (this.nextTrigger?.once ?? true) this.clearTriggers();
    conn.kill(kind);
    this.emit('fault', kind, conn);
  }

  private arm(kind: FaultKind, n: number, once: boolean): void {
    this.nextTrigger = { kind, n, once };
    for (const c of this.liveConnections) if (!c.killed) c.trigger = { kind, at: c.bytesUp + n };
  }

  private listen(): Promise<net.Server> {
    const server = net.createServer({ allowHalfOpen: true }, (client) => {
      if (this.closing) { client.destroy(); return; }
      const conn = new ProxyConnection(this, this.connections.length + 1, client, this.target, this.localAddress);
      if (this.nextTrigger) conn.trigger = { kind: this.nextTrigger.kind, at: this.nextTrigger.n };
      conn.blackholed = this.blackholeNew;
      conn.connect();
      this.connections.push(conn);
      this.emit('connection', conn);
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        if (this.closing) server.close(); // close() ran while we were binding
        this.emit('listening', (server.address() as net.AddressInfo).port);
        resolve(server);
      });
    });
  }
}

function destroy(sock: net.Socket, rst: boolean): void {
  if (sock.destroyed) return;
  // A RST needs a connected handle with no FIN sent (libuv refuses it after shutdown, and Node
  // then leaks the handle), so a socket we already ended is just destroyed.
  if (rst && sock.remotePort !== undefined && !sock.writableEnded) sock.resetAndDestroy();
  else sock.destroy();
}
