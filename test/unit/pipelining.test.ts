import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { inOrderPerConnection } from '../../src/http/pipelining.js';

type FakeSocket = { writable: boolean; destroyed: boolean; _httpMessage?: unknown };

/**
 * A connection's request and its answer, as far as inOrderPerConnection looks at them. As Node
 * does, the socket names the first answer not yet done; a later one gets it once that is over.
 */
function exchange(socket: FakeSocket) {
  const res = Object.assign(new EventEmitter(), { writableEnded: false, destroyed: false, _last: false, destroy() { this.destroyed = true; } });
  socket._httpMessage ??= res;
  res.once('close', () => {
    if (socket._httpMessage === res) socket._httpMessage = null;
  });
  return { req: { socket } as unknown as IncomingMessage, res: res as unknown as ServerResponse & typeof res };
}

describe('inOrderPerConnection (HTTP/1.1 pipelining)', () => {
  it('a pipelined request is handled once the one before it is answered; other connections do not wait', () => {
    const handled: string[] = [];
    const handle = inOrderPerConnection((req) => handled.push((req as unknown as { name: string }).name));
    const socket: FakeSocket = { writable: true, destroyed: false };
    const first = exchange(socket);
    const second = exchange(socket);
    const elsewhere = exchange({ writable: true, destroyed: false } as FakeSocket);
    Object.assign(first.req, { name: 'first' });
    Object.assign(second.req, { name: 'second' });
    Object.assign(elsewhere.req, { name: 'elsewhere' });
    handle(first.req, first.res);
    handle(second.req, second.res);
    handle(elsewhere.req, elsewhere.res);
    assert.deepEqual(handled, ['first', 'elsewhere']);
    first.res.emit('finish');
    first.res.emit('close');
    assert.deepEqual(handled, ['first', 'elsewhere', 'second'], 'once, on the first of finish and close');
  });

  it('behind an answer that closed the connection, or on a dead socket, it is dropped: never handled, its response closed', () => {
    for (const [what, setUp] of [
      ['Connection: close', (first: ReturnType<typeof exchange>) => (first.res._last = true)],
      ['peer gone', (_first: ReturnType<typeof exchange>, socket: FakeSocket) => Object.assign(socket, { writable: false, destroyed: true })],
    ] as const) {
      let handled = 0;
      const handle = inOrderPerConnection(() => void (handled += 1));
      const socket: FakeSocket = { writable: true, destroyed: false };
      const first = exchange(socket);
      const second = exchange(socket);
      handle(first.req, first.res);
      handle(second.req, second.res);
      let closed = false;
      second.res.once('close', () => (closed = true));
      setUp(first, socket);
      first.res.emit('close');
      assert.deepEqual([handled, second.res.destroyed, closed], [1, true, true], what);
    }
  });
});
