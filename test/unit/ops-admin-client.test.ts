/** The admin API client: ids cannot change the route. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AdminClient } from '../../src/ops/cli/admin-client.js';
import { OpsFailure } from '../../src/ops/types.js';

describe('AdminClient', () => {
  let server: Server;
  let base = '';
  const requests: string[] = [];
  before(async () => {
    server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"replayed":7,"purged":7}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('refuses an id that URL normalisation would drop (another route), encodes the others', async () => {
    const client = new AdminClient(base, 'token');
    for (const id of ['', '.', '..']) {
      await assert.rejects(client.replayDeadLetters({ id }), (err: unknown) => err instanceof OpsFailure && err.exitCode === 2, JSON.stringify(id));
      await assert.rejects(client.purgeDeadLetters({ id }), OpsFailure);
    }
    assert.deepEqual(requests, [], 'nothing sent: "/dead-letters/./replay" is the replay-all route');
    await client.replayDeadLetters({ id: 'a/b?c' });
    assert.deepEqual(requests, ['POST /admin/dead-letters/a%2Fb%3Fc/replay']);
  });
});
