// Tests for the fault-injection proxy used by the e2e suites (test/helpers/fault-proxy.ts).
// Every wait is on an event or a byte counter; the only clock use is the throttle rate check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { setImmediate as tick } from 'node:timers/promises';
import { FaultProxy } from '../helpers/fault-proxy.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const T = { timeout: 30_000 }; // a broken fault must fail the test, not hang the suite
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Resolve once predicate() holds, re-checking on every `event` of `emitter`. */
function until(emitter: EventEmitter, event: string, predicate: () => boolean): Promise<void> {
  if (predicate()) return Promise.resolve();
  return new Promise((resolve) => {
    const check = (): void => { if (predicate()) { emitter.off(event, check); resolve(); } };
    emitter.on(event, check);
  });
}

/** What one side of a TCP connection has seen. Emits 'data', 'end', 'close' on `events`. */
class Peer {
  readonly events = new EventEmitter();
  received = 0;
  private readonly chunks: Buffer[] = [];
  ended = false;
  closed = false;
  error: NodeJS.ErrnoException | undefined;
  constructor(readonly sock: net.Socket) {
    sock.on('data', (c: Buffer) => { this.received += c.length; this.chunks.push(c); this.events.emit('data'); });
    sock.on('end', () => { this.ended = true; this.events.emit('end'); });
    sock.on('error', (e) => { this.error = e; });
    sock.on('close', () => { this.closed = true; this.events.emit('close'); });
  }
  get data(): Buffer { return Buffer.concat(this.chunks); }
  waitBytes(n: number): Promise<void> { return until(this.events, 'data', () => this.received >= n); }
  waitClosed(): Promise<void> { return until(this.events, 'close', () => this.closed); }
}

/** A server on 127.0.0.1:0 that records every connection and (if `echo`) echoes, half-close aware. */
async function startUpstream(echo: boolean): Promise<{ server: net.Server; port: number; peers: Peer[]; events: EventEmitter }> {
  const peers: Peer[] = [];
  const events = new EventEmitter();
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    const peer = new Peer(sock);
    if (echo) sock.on('data', (c: Buffer) => { if (!sock.writableEnded) sock.write(c); });
    sock.on('end', () => sock.end());
    peers.push(peer);
    events.emit('connection', peer);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port, peers, events };
}

/** Upstream + proxy + client factory, all torn down after the test. */
async function setup(t: { after: (fn: () => Promise<void>) => void }, echo = true) {
  const up = await startUpstream(echo);
  const proxy = await new FaultProxy({ upstreamPort: up.port }).start();
  const clients: net.Socket[] = [];
  t.after(async () => {
    for (const c of clients) c.destroy();
    await proxy.close();
    for (const p of up.peers) p.sock.destroy();
    await new Promise<void>((resolve) => up.server.close(() => resolve()));
  });
  const connect = async (port = proxy.port): Promise<Peer> => {
    const sock = net.connect(port, '127.0.0.1');
    clients.push(sock);
    const peer = new Peer(sock);
    await once(sock, 'connect');
    return peer;
  };
  /** The upstream side of the n-th (1-based) connection, once the proxy has opened it. */
  const upstreamPeer = async (n: number): Promise<Peer> => {
    await until(up.events, 'connection', () => up.peers.length >= n);
    return up.peers[n - 1]!;
  };
  return { up, proxy, connect, upstreamPeer };
}

test('bytes pass through unmodified in both directions', T, async (t) => {
  const { proxy, connect, upstreamPeer } = await setup(t);
  const payload = randomBytes(4 * MiB);
  const client = await connect();
  client.sock.end(payload);
  const server = await upstreamPeer(1);
  await until(client.events, 'close', () => client.closed);
  assert.equal(client.error, undefined);
  assert.equal(server.received, payload.length);
  assert.equal(sha256(server.data), sha256(payload), 'upstream got the exact bytes');
  assert.equal(sha256(client.data), sha256(payload), 'client got the exact echo');
  assert.equal(proxy.bytesUp, payload.length);
  assert.equal(proxy.bytesDown, payload.length);
  assert.equal(proxy.connections[0]!.bytesUp, payload.length);
  assert.equal(proxy.connectionsAccepted, 1);
});

test('cut() ends both sides with FIN (no error)', T, async (t) => {
  const { proxy, connect, upstreamPeer } = await setup(t);
  const client = await connect();
  client.sock.write(randomBytes(10 * KiB));
  const server = await upstreamPeer(1);
  await server.waitBytes(10 * KiB);
  proxy.cut();
  await until(client.events, 'end', () => client.ended);
  await until(server.events, 'end', () => server.ended);
  await Promise.all([client.waitClosed(), server.waitClosed()]);
  assert.equal(client.error, undefined, 'a cut is a clean FIN, not a reset');
  assert.equal(server.error, undefined);
});

test('reset() destroys both sides with ECONNRESET', T, async (t) => {
  const { proxy, connect, upstreamPeer } = await setup(t);
  const client = await connect();
  client.sock.write(randomBytes(10 * KiB));
  const server = await upstreamPeer(1);
  await client.waitBytes(10 * KiB); // echo came back: the connection is fully established
  proxy.reset();
  await Promise.all([client.waitClosed(), server.waitClosed()]);
  assert.equal(client.error?.code, 'ECONNRESET');
  assert.equal(server.error?.code, 'ECONNRESET');
  assert.equal(client.ended, false, 'no FIN before the RST');
});

test('a client RST reaches upstream as a RST, and the proxy frees both sockets', T, async (t) => {
  const { proxy, connect, upstreamPeer } = await setup(t);
  const client = await connect();
  client.sock.write('hello');
  const server = await upstreamPeer(1);
  await client.waitBytes(5);
  const conn = proxy.connections[0]!;
  client.sock.resetAndDestroy();
  await server.waitClosed();
  assert.equal(server.error?.code, 'ECONNRESET');
  await proxy.waitFor('disconnect', () => conn.closed); // both proxy-side sockets really closed
});

test('blackhole() forwards nothing, closes nothing, and holds data until restore()', T, async (t) => {
  const { proxy, connect, upstreamPeer } = await setup(t);
  const first = randomBytes(64 * KiB);
  const second = randomBytes(256 * KiB);
  const client = await connect();
  client.sock.write(first);
  const server = await upstreamPeer(1);
  await client.waitBytes(first.length); // echo done: nothing in flight, forwarding loops idle
  const conn = proxy.connections[0]!;

  proxy.blackhole();
  const frozenUp = proxy.bytesUp;
  const frozenDown = proxy.bytesDown;
  client.sock.write(second); // the client keeps writing...
  server.sock.write('late reply'); // ...and so does the server
  await proxy.waitFor('receive', () => conn.receivedUp >= first.length + second.length && conn.receivedDown >= 10);
  await tick(); // give a broken implementation a turn to forward what it just read
  assert.equal(proxy.bytesUp, frozenUp, 'proxy forwarded nothing upstream');
  assert.equal(proxy.bytesDown, frozenDown, 'proxy forwarded nothing downstream');
  assert.equal(server.received, first.length, 'upstream received nothing after blackhole');
  assert.equal(client.received, first.length, 'client received nothing after blackhole');
  for (const p of [client, server]) assert.ok(!p.ended && !p.closed && !p.error, 'no FIN, no RST');

  proxy.restore(); // the link comes back: held bytes are delivered, in order
  await server.waitBytes(first.length + second.length);
  assert.equal(sha256(server.data), sha256(Buffer.concat([first, second])));
  await client.waitBytes(first.length + 10);
});

test('blackhole() also freezes new connections: upstream is not contacted until restore()', T, async (t) => {
  const { up, proxy, connect, upstreamPeer } = await setup(t);
  proxy.blackhole();
  const client = await connect(); // the proxy's kernel accepts, as a dead WiFi AP might
  await proxy.waitForConnections(1);
  const conn = proxy.connections[0]!;
  const payload = randomBytes(64 * KiB);
  client.sock.write(payload);
  await proxy.waitFor('receive', () => conn.receivedUp >= payload.length);
  await tick();
  assert.ok(conn.upstream.pending && !conn.upstream.connecting, 'no upstream connection attempted');
  assert.equal(up.peers.length, 0);
  assert.equal(conn.bytesUp, 0);

  proxy.restore();
  const server = await upstreamPeer(1);
  await client.waitBytes(payload.length);
  assert.equal(sha256(server.data), sha256(payload));
  assert.equal(sha256(client.data), sha256(payload));
});

test('a blackholed connection stays open after its client dies, until close()', T, async (t) => {
  const { proxy, connect, upstreamPeer } = await setup(t);
  const client = await connect();
  client.sock.write('hello');
  const server = await upstreamPeer(1);
  await client.waitBytes(5);
  const conn = proxy.connections[0]!;
  proxy.blackhole();
  const proxySideClosed = new Promise((resolve) => conn.client.once('close', resolve));
  client.sock.resetAndDestroy(); // the client gives up (RST) while the link is dead
  await proxySideClosed;
  await tick();
  assert.equal(conn.upstream.destroyed, false, 'the proxy did not tell upstream');
  assert.ok(!server.ended && !server.closed);
  await proxy.close();
  await proxy.close(); // idempotent
  await server.waitClosed();
  assert.ok(conn.upstream.destroyed);
});

test('throttle() paces traffic, both ways if asked, and throttle(0) lifts it', T, async (t) => {
  const { proxy, connect, upstreamPeer } = await setup(t);
  const limit = 2 * MiB; // bytes per second
  const size = 2 * MiB; // ~1 s per throttled transfer
  const check = (what: string, bytes: number, startedAt: number): void => {
    const rate = bytes / ((performance.now() - startedAt) / 1000);
    t.diagnostic(`${what}: limit ${limit} B/s, measured ${Math.round(rate)} B/s`);
    // Generous bounds: above 2x means no limiting; below limit/5 means stalls, not pacing.
    assert.ok(rate < 2 * limit, `${what}: ${rate} B/s should be below 2x the limit`);
    assert.ok(rate > limit / 5, `${what}: ${rate} B/s is far below the limit`);
  };
  const [upData, downData, fastData] = [randomBytes(size), randomBytes(size), randomBytes(4 * size)];
  const client = await connect();
  await proxy.waitForConnections(1);

  proxy.throttle(limit); // client -> upstream only, applied to a live connection
  let start = performance.now();
  client.sock.write(upData);
  const server = await upstreamPeer(1);
  await server.waitBytes(size);
  check('client->upstream', size, start);
  await client.waitBytes(size); // the echo (not throttled) is back

  proxy.throttle(limit, true); // now upstream -> client too
  start = performance.now();
  server.sock.write(downData);
  await client.waitBytes(2 * size);
  check('upstream->client', size, start);

  proxy.throttle(0);
  start = performance.now();
  client.sock.write(fastData);
  await server.waitBytes(5 * size);
  const rate = (4 * size) / ((performance.now() - start) / 1000);
  t.diagnostic(`unthrottled: measured ${Math.round(rate)} B/s`);
  assert.ok(rate > 2 * limit, `rate ${rate} should exceed the old limit once lifted`);
  assert.equal(sha256(server.data), sha256(Buffer.concat([upData, fastData])), 'pacing splits, never alters');
});

test('cutAfter(n) FINs the connection after exactly n bytes, once', T, async (t) => {
  const { proxy, connect, upstreamPeer } = await setup(t);
  const n = 100_000;
  proxy.cutAfter(n);
  const faulted = once(proxy, 'fault');
  const client = await connect();
  client.sock.write(randomBytes(1 * MiB));
  const server = await upstreamPeer(1);
  const [kind] = await faulted;
  assert.equal(kind, 'cut');
  await Promise.all([until(server.events, 'end', () => server.ended), until(client.events, 'end', () => client.ended)]);
  assert.equal(server.received, n);
  assert.equal(proxy.connections[0]!.bytesUp, n);
  assert.equal(server.error, undefined);

  // One-shot: the next connection (a client retry) goes through untouched.
  const retry = await connect();
  const payload = randomBytes(1 * MiB);
  retry.sock.end(payload);
  const server2 = await upstreamPeer(2);
  await until(server2.events, 'end', () => server2.ended);
  assert.equal(sha256(server2.data), sha256(payload));
});

test('resetAfter(n) RSTs a live connection after n more bytes', T, async (t) => {
  // No echo, and the client sends exactly n more bytes: neither end has a write in flight when
  // the RST lands, so both must report ECONNRESET. (A socket that is mid-write may instead see
  // the error consumed by the failed write and then a plain EOF; that is kernel behaviour.)
  const { proxy, connect, upstreamPeer } = await setup(t, false);
  const n = 100_000;
  const client = await connect();
  client.sock.write(randomBytes(50 * KiB));
  const server = await upstreamPeer(1);
  await server.waitBytes(50 * KiB);
  proxy.resetAfter(n); // counted from now on the live connection
  const faulted = once(proxy, 'fault');
  client.sock.write(randomBytes(n));
  assert.deepEqual((await faulted).slice(0, 1), ['reset']);
  await Promise.all([client.waitClosed(), server.waitClosed()]);
  assert.equal(proxy.connections[0]!.bytesUp, 50 * KiB + n);
  assert.ok(server.received <= 50 * KiB + n, `upstream got ${server.received}`);
  assert.equal(server.error?.code, 'ECONNRESET');
  assert.equal(client.error?.code, 'ECONNRESET');
});

test('switchNetwork() leaves old connections hanging and serves new ones on a new port', T, async (t) => {
  const { proxy, connect, upstreamPeer } = await setup(t);
  const oldPort = proxy.port;
  const wifi = await connect();
  wifi.sock.write(randomBytes(64 * KiB));
  const wifiServer = await upstreamPeer(1);
  await wifi.waitBytes(64 * KiB);
  const oldConn = proxy.connections[0]!;

  const { port, url } = await proxy.switchNetwork();
  assert.notEqual(port, oldPort);
  assert.equal(url, `http://127.0.0.1:${port}`);
  assert.equal(proxy.port, port);

  // The new network works end to end, and the server sees a different peer.
  const lte = await connect(port);
  const payload = randomBytes(1 * MiB);
  lte.sock.end(payload);
  const lteServer = await upstreamPeer(2);
  await lte.waitClosed();
  assert.equal(sha256(lte.data), sha256(payload));
  assert.notEqual(lteServer.sock.remotePort, wifiServer.sock.remotePort);

  // The old connection is still open but dead: writes go nowhere, nothing closes.
  wifi.sock.write(randomBytes(32 * KiB));
  await proxy.waitFor('receive', () => oldConn.receivedUp >= 96 * KiB);
  await tick();
  assert.equal(oldConn.bytesUp, 64 * KiB);
  assert.equal(wifiServer.received, 64 * KiB);
  for (const p of [wifi, wifiServer]) assert.ok(!p.ended && !p.closed && !p.error);

  // The old listener no longer accepts.
  const refused = net.connect(oldPort, '127.0.0.1');
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
  assert.equal(proxy.connectionsAccepted, 2);
});

test('handoff() resets the client side, leaves the server side half-open and silent, and switches the source address', T, async (t) => {
  const up = await startUpstream(false);
  const proxy = await new FaultProxy({ upstreamPort: up.port, localAddress: '127.0.0.2' }).start();
  const clients: net.Socket[] = [];
  t.after(async () => {
    for (const c of clients) c.destroy();
    await proxy.close();
    for (const p of up.peers) p.sock.destroy();
    await new Promise<void>((resolve) => up.server.close(() => resolve()));
  });
  const connect = async (): Promise<Peer> => {
    const sock = net.connect(proxy.port, '127.0.0.1');
    clients.push(sock);
    await once(sock, 'connect');
    return new Peer(sock);
  };
  const wifi = await connect();
  wifi.sock.write(randomBytes(64 * KiB));
  await until(up.events, 'connection', () => up.peers.length >= 1);
  const wifiServer = up.peers[0]!;
  await wifiServer.waitBytes(64 * KiB);
  assert.equal(wifiServer.sock.remoteAddress, '127.0.0.2');

  const hanging = proxy.handoff('127.0.0.3');
  assert.equal(hanging.length, 1);
  await wifi.waitClosed();
  assert.equal(wifi.error?.code, 'ECONNRESET', 'the phone sees its WiFi socket die');

  const lte = await connect();
  lte.sock.write(randomBytes(8 * KiB));
  await until(up.events, 'connection', () => up.peers.length >= 2);
  const lteServer = up.peers[1]!;
  await lteServer.waitBytes(8 * KiB);
  assert.equal(lteServer.sock.remoteAddress, '127.0.0.3');
  assert.equal(proxy.connections[1]!.localAddress, '127.0.0.3');
  // The server's old connection: no FIN, no RST, no more bytes.
  for (let i = 0; i < 20; i++) await tick();
  assert.ok(!wifiServer.ended && !wifiServer.closed && !wifiServer.error, 'old server side stays half-open');
  assert.equal(wifiServer.received, 64 * KiB);
});
