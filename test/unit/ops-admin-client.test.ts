/** The admin API client: ids cannot change the route; every request has a bounded wait for its answer. */
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

describe('AdminClient against a slow server', () => {
  let server: Server;
  let base = '';
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/silent/verify' || req.url?.startsWith('/silent/recover')) return; // accepts, never answers
      // Headers at once, then a run longer than the client's timeout.
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      res.write('{"progress":{"done":0,"total":2,"unit":"files"}}\n');
      setTimeout(() => res.write('{"progress":{"done":1,"total":2,"unit":"files"}}\n'), 300);
      setTimeout(() => res.end('{"result":{"checked":2,"bytes":0,"unverifiable":0,"problems":[]}}\n'), 700);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('verify and recover give up when no headers come within the timeout (exit 1, naming the server)', async () => {
    const client = new AdminClient(`${base}/silent`, 'token', 200);
    const started = Date.now();
    for (const run of [() => client.verify(), () => client.recover({ dryRun: true })]) {
      await assert.rejects(run(), (err: unknown) => {
        assert.ok(err instanceof OpsFailure);
        assert.equal(err.exitCode, 1);
        assert.equal(err.message, `the admin API at ${base}/silent did not answer within 0.2 s`);
        return true;
      });
    }
    assert.ok(Date.now() - started < 5000);
  });

  it('a run whose headers came streams its progress for longer than the timeout', async () => {
    const seen: number[] = [];
    const report = await new AdminClient(`${base}/streaming`, 'token', 200).verify((p) => seen.push(p.done));
    assert.equal(report.checked, 2);
    assert.deepEqual(seen, [0, 1]);
  });
});
