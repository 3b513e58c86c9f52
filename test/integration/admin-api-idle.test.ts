/**
 * The admin API and the listener's idle timeout (upload_stall_timeout): an authorized admin
 * request (verify, recover, a long listing) is never cut off by it while it works, and the
 * connection gets it back for the next request.
 */
import assert from 'node:assert/strict';
import { Agent as HttpAgent, createServer, request, type Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import Koa from 'koa';
import { adminApi } from '../../src/http/admin-api.js';
import type { TusUploadStore } from '../../src/storage/index.js';

const TOKEN = 'a'.repeat(40);

function get(port: number, path: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers: { Authorization: `Bearer ${TOKEN}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Polls a condition set by an event of the server in this process (bounded: 5 s). */
async function waitFor(condition: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setImmediate(r));
  }
  return true;
}

describe('admin API: the idle timeout of the listener', () => {
  it('is off while an admin route works, and back once its answer is over', async () => {
    const koa = new Koa();
    const admin = adminApi({
      token: TOKEN,
      prefix: '/admin',
      tusStore: {} as TusUploadStore,
      locker: {} as never,
      onTerminated: () => {},
      routes: [
        { method: 'GET', path: '/probe', handle: async (_p, ctx) => ({ idleMsDuring: ctx.req.socket.timeout ?? 0 }) },
      ],
    });
    // The idle timeout once an answer is over: read by a 'close' listener added after the
    // admin handler's own (listeners run in the order they were added).
    const afterAnswer: number[] = [];
    koa.use(async (ctx, next) => {
      await next();
      ctx.res.once('close', () => afterAnswer.push(ctx.req.socket.timeout ?? 0));
    });
    koa.use((ctx) => admin(ctx));
    const server = createServer(koa.callback());
    server.setTimeout(5_000); // as listener.ts sets upload_stall_timeout
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    try {
      const { port } = server.address() as AddressInfo;
      const during = await get(port, '/admin/probe', agent);
      assert.equal(during.status, 200, during.body);
      assert.equal((JSON.parse(during.body) as { idleMsDuring: number }).idleMsDuring, 0, 'no idle timeout while the route works');
      const closed = await waitFor(() => afterAnswer.length === 1);
      assert.ok(closed, 'the answer closed');
      assert.deepEqual(afterAnswer, [5_000], 'restored for the next request on the connection');
      const unauthorized = await new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port, path: '/admin/probe', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        }).on('error', reject).end();
      });
      assert.equal(unauthorized, 401);
    } finally {
      agent.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
