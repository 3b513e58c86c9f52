/**
 * Issue 9.9: `[server] connection_pool_size` is enforced on the main listener. Beyond it a new
 * connection takes the place of the longest idle keep-alive connection, or, when every open one
 * is busy, is closed unanswered, counted in hmac_connections_refused_total, and the log says so
 * once per episode; once connections close, new ones are served again. `[limits]
 * max_connections_per_client` does the same per client address, so one client never fills the
 * pool; other addresses are still served.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, rawRequest, slotDir } from '../helpers/http.js';
import { startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';
import { withTimeout } from '../helpers/service.js';

const LIMIT = 3;
const REACHED = 'Connection limit reached: new connections are refused (server.connection_pool_size)';
const BELOW = 'Connections below the limit again: accepting new connections';

/** A keep-alive connection that got one answer to GET /health (so the server has accepted it), or the bytes of a refused one. */
function dial(baseUrl: string, localAddress?: string): Promise<{ socket: Socket; answered: boolean; received: string }> {
  const url = new URL(baseUrl);
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = connect({ host: url.hostname, port: Number(url.port), ...(localAddress ? { localAddress } : {}) });
      let received = '';
      socket.on('data', (d: Buffer) => {
        received += d.toString('latin1');
        if (/\r\n\r\n\{"status":"ok"\}$/.test(received)) resolve({ socket, answered: true, received });
      });
      socket.on('error', () => {}); // a refused connection may end in a reset
      socket.once('close', () => resolve({ socket, answered: false, received }));
      socket.once('connect', () => socket.write(`GET /health HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`));
      socket.once('timeout', () => reject(new Error('no answer and no close')));
    }),
    15_000,
    'the connection was neither answered nor closed',
  );
}

/**
 * A connection with a request in flight: after one answered GET (so it has been idle between
 * requests), a PUT sent as curl sends it (Expect: 100-continue) whose body stops after 10 of its
 * 1,000 bytes: busy.
 */
function busy(server: SpawnedServer): Socket {
  const url = new URL(server.baseUrl);
  const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/busy.bin`, baseUrl: server.uploadUrl, size: 1000 });
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  socket.on('error', () => {});
  let got = '';
  const onData = (d: Buffer) => {
    got += d.toString('latin1');
    if (!/\{"status":"ok"\}$/.test(got)) return;
    socket.off('data', onData);
    socket.write(`PUT ${pathOf(slot.url)} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n0123456789`);
  };
  socket.on('data', onData);
  socket.once('connect', () => socket.write(`GET /health HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`));
  return socket;
}

/** A connection that has sent nothing yet. */
function fresh(baseUrl: string): Socket {
  const url = new URL(baseUrl);
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  socket.on('error', () => {});
  return socket;
}

/** hmac_open_connections of the main listener. */
async function openConnections(metricsUrl: string): Promise<number> {
  return Number(/^hmac_open_connections (\d+)$/m.exec((await rawRequest(metricsUrl, '/metrics')).text)?.[1]);
}

/** hmac_active_uploads: upload bodies streaming. */
async function activeUploads(metricsUrl: string): Promise<number> {
  return Number(/^hmac_active_uploads (\d+)$/m.exec((await rawRequest(metricsUrl, '/metrics')).text)?.[1]);
}

/** Polls a condition on the server's metrics (bounded: 10 s). */
async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** hmac_connections_refused_total{limit} as the metrics listener reports it. */
async function refusedCount(metricsUrl: string, limit: 'pool' | 'client'): Promise<number> {
  const text = (await rawRequest(metricsUrl, '/metrics')).text;
  return Number(new RegExp(`^hmac_connections_refused_total\\{limit="${limit}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
}

/** A server with its metrics on a listener of their own, and that listener's URL. */
async function serverWithMetrics(config: string): Promise<{ server: SpawnedServer; metricsUrl: string }> {
  const server = await startServer({ config: `${config}[metrics]\nlisten = "127.0.0.1:0"\n` });
  return { server, metricsUrl: String((await server.waitForLog((l) => l.msg === 'Metrics listening')).address) };
}

describe('connection_pool_size', () => {
  let server: SpawnedServer;
  let metricsUrl = '';
  const held: Socket[] = [];
  const refusedTotal = () => refusedCount(metricsUrl, 'pool');
  const count = (msg: string) => server.logs.filter((l: LogLine) => l.msg === msg).length;

  before(async () => {
    ({ server, metricsUrl } = await serverWithMetrics(`[server]\nconnection_pool_size = ${LIMIT}\n`));
  });
  after(async () => {
    for (const s of held) s.destroy();
    await server?.dispose();
  });

  it('refuses connections beyond the limit while every open one is busy, logs once per episode, serves again below it', async () => {
    // Busy: an upload body in flight. Accepted once the open count shows it.
    for (let i = 0; i < LIMIT; i++) held.push(busy(server));
    await until(async () => (await activeUploads(metricsUrl)) === LIMIT, 'the busy connections have their uploads in flight');
    for (let i = 0; i < 3; i++) {
      const over = await dial(server.baseUrl);
      assert.deepEqual([over.answered, over.received], [false, ''], 'closed without a byte');
    }
    await server.waitForLog((l) => l.msg === REACHED);
    assert.equal(await refusedTotal(), 3);
    assert.equal(count(REACHED), 1, 'one line for the episode, not one per refusal');

    held.shift()!.destroy();
    const below = await server.waitForLog((l) => l.msg === BELOW);
    assert.equal(below.refused, 3);
    held.push(busy(server));
    await until(async () => (await activeUploads(metricsUrl)) === LIMIT, 'the busy connection has its upload in flight');
    const next = await dial(server.baseUrl);
    assert.equal(next.answered, false);
    await server.waitForLog((l) => l.msg === REACHED && count(REACHED) === 2); // a second episode, a second line
    assert.equal(await refusedTotal(), 4);
  });

  it('a new connection takes the place of the keep-alive connection idle the longest (idle sockets of a few clients filled the pool)', async () => {
    for (const s of held.splice(0)) s.destroy();
    await until(async () => (await openConnections(metricsUrl)) === 0, 'the earlier connections closed');
    const idle: Socket[] = [];
    for (let i = 0; i < LIMIT; i++) {
      const c = await dial(server.baseUrl);
      assert.equal(c.answered, true, `connection ${i + 1} of ${LIMIT} is served`);
      idle.push(c.socket);
    }
    const oldestClosed = new Promise((resolve) => idle[0]!.once('close', resolve));
    const refusedBefore = await refusedTotal();
    const newcomer = await dial(server.baseUrl);
    assert.equal(newcomer.answered, true, 'served: the longest idle connection made room');
    await oldestClosed;
    assert.equal(idle[1]!.destroyed, false, 'the others stay');
    assert.equal(await refusedTotal(), refusedBefore, 'nothing refused');
    const closed = Number(/^hmac_idle_connections_closed_total (\d+)$/m.exec((await rawRequest(metricsUrl, '/metrics')).text)?.[1]);
    assert.equal(closed, 1);
    // Connections that never sent a request are idle too: the oldest of them makes room.
    for (const s of [...idle, newcomer.socket]) s.destroy();
    await until(async () => (await openConnections(metricsUrl)) === 0, 'the keep-alive connections closed');
    const silent = Array.from({ length: LIMIT }, () => fresh(server.baseUrl));
    await until(async () => (await openConnections(metricsUrl)) === LIMIT, 'the silent connections were accepted');
    const firstClosed = new Promise((resolve) => silent[0]!.once('close', resolve));
    const another = await dial(server.baseUrl);
    assert.equal(another.answered, true, 'served: the oldest silent connection made room');
    await firstClosed;
    held.push(...silent, another.socket);
  });
});

describe('max_connections_per_client', () => {
  const MAX = 2;
  const CLIENT_REACHED = 'Client connection limit reached: its new connections are refused ([limits] max_connections_per_client)';
  let server: SpawnedServer;
  let metricsUrl = '';
  const held: Socket[] = [];
  const refused = (limit: 'pool' | 'client') => refusedCount(metricsUrl, limit);

  before(async () => {
    ({ server, metricsUrl } = await serverWithMetrics(`[limits]\nmax_connections_per_client = ${MAX}\n`));
  });
  after(async () => {
    for (const s of held) s.destroy();
    await server?.dispose();
  });

  it('one address gets its cap, not more; another address is served meanwhile; a closed one frees a place', async () => {
    assert.equal(await refused('client'), 0, 'the series exists before the first refusal');
    for (let i = 0; i < MAX; i++) {
      const c = await dial(server.baseUrl, '127.0.0.1');
      assert.equal(c.answered, true, `connection ${i + 1} of ${MAX} is served`);
      held.push(c.socket);
    }
    for (let i = 0; i < 2; i++) {
      const over = await dial(server.baseUrl, '127.0.0.1');
      assert.deepEqual([over.answered, over.received], [false, ''], 'closed without a byte');
    }
    const other = await dial(server.baseUrl, '127.0.0.2');
    assert.equal(other.answered, true, 'another client is not starved');
    held.push(other.socket);
    await server.waitForLog((l) => l.msg === CLIENT_REACHED);
    assert.equal(await refused('client'), 2);
    assert.equal(await refused('pool'), 0);
    assert.equal(server.logs.filter((l: LogLine) => l.msg === CLIENT_REACHED).length, 1, 'logged once, counted in the metric');

    const closed = held.shift()!;
    const gone = new Promise((resolve) => closed.once('close', resolve));
    closed.destroy();
    await gone;
    // The server counts the close once its socket sees it: retry until the place is free.
    let again = await dial(server.baseUrl, '127.0.0.1');
    for (let i = 0; i < 50 && !again.answered; i++) again = await dial(server.baseUrl, '127.0.0.1');
    assert.equal(again.answered, true, 'served again once one of its connections closed');
    held.push(again.socket);
  });
});

describe('header slowloris ([server] headers_timeout)', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer({ config: '[server]\nconnection_pool_size = 3\nheaders_timeout = "1s"\n' });
  });
  after(async () => server?.dispose());

  /** A connection that sends header lines forever and never ends them; resolves what it got once the server closed it. */
  function slowloris(baseUrl: string): Promise<string> {
    const url = new URL(baseUrl);
    // Half-open allowed: the server's FIN after its 408 does not close this side; only the server's close does.
    const socket = connect({ host: url.hostname, port: Number(url.port), allowHalfOpen: true });
    socket.on('error', () => {}); // a peer that still writes may see the close as a reset
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.write(`GET /health HTTP/1.1\r\nHost: ${url.host}\r\n`);
    const trickle = setInterval(() => socket.writable && socket.write('X-Slow: 1\r\n'), 50);
    // Without the close after the answer, the trickle keeps the socket busy, so no idle timeout ends it either.
    return withTimeout(new Promise<string>((resolve) => socket.once('close', () => resolve(received))), 15_000, 'the slowloris connection was left open after its 408').finally(() => {
      clearInterval(trickle);
      socket.destroy();
    });
  }

  it('trickling header blocks fill the pool for headers_timeout only: each gets 408 ERR_HEADERS_TIMEOUT, is closed, and the pool serves again', async () => {
    const answers = await Promise.all([slowloris(server.baseUrl), slowloris(server.baseUrl), slowloris(server.baseUrl)]);
    for (const text of answers) {
      assert.match(text, /^HTTP\/1\.1 408 /);
      assert.match(text, /"code":"ERR_HEADERS_TIMEOUT"/);
    }
    const served = await dial(server.baseUrl);
    assert.equal(served.answered, true, 'the pool is free again');
    served.socket.destroy();
  });
});
