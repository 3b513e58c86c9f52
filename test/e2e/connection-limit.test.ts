/**
 * Issue 9.9: `[server] connection_pool_size` is enforced on the main listener. Beyond it a new
 * connection is closed unanswered, counted in hmac_connections_refused_total, and the log says so
 * once per episode; once connections close, new ones are served again.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { rawRequest } from '../helpers/http.js';
import { startServer, type LogLine, type SpawnedServer } from '../helpers/server.js';
import { withTimeout } from '../helpers/service.js';

const LIMIT = 3;
const REACHED = 'Connection limit reached: new connections are refused (server.connection_pool_size)';
const BELOW = 'Connections below the limit again: accepting new connections';

/** A keep-alive connection that got one answer to GET /health (so the server has accepted it), or the bytes of a refused one. */
function dial(baseUrl: string): Promise<{ socket: Socket; answered: boolean; received: string }> {
  const url = new URL(baseUrl);
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = connect({ host: url.hostname, port: Number(url.port) });
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

describe('connection_pool_size', () => {
  let server: SpawnedServer;
  let metricsUrl = '';
  const held: Socket[] = [];
  const refusedTotal = async () => Number(/^hmac_connections_refused_total (\d+)$/m.exec((await rawRequest(metricsUrl, '/metrics')).text)?.[1]);
  const count = (msg: string) => server.logs.filter((l: LogLine) => l.msg === msg).length;

  before(async () => {
    server = await startServer({ config: `[server]\nconnection_pool_size = ${LIMIT}\n[metrics]\nlisten = "127.0.0.1:0"\n` });
    metricsUrl = String((await server.waitForLog((l) => l.msg === 'Metrics listening')).address);
  });
  after(async () => {
    for (const s of held) s.destroy();
    await server?.dispose();
  });

  it('refuses connections beyond the limit, logs once per episode, serves again below it', async () => {
    for (let i = 0; i < LIMIT; i++) {
      const c = await dial(server.baseUrl);
      assert.equal(c.answered, true, `connection ${i + 1} of ${LIMIT} is served`);
      held.push(c.socket);
    }
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
    const again = await dial(server.baseUrl);
    assert.equal(again.answered, true, 'served again');
    held.push(again.socket);

    const next = await dial(server.baseUrl);
    assert.equal(next.answered, false);
    await server.waitForLog((l) => l.msg === REACHED && count(REACHED) === 2); // a second episode, a second line
    assert.equal(await refusedTotal(), 4);
  });
});
