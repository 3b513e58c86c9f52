/**
 * `[server] listen_backlog`: the kernel completes this many handshakes for the listener before the
 * server accepts them. With Node's default (511) a burst of new connections (a thousand clients
 * starting or retrying at once) overflows it: the kernel drops the handshakes beyond it and each
 * of those clients waits for its SYN to be resent, 1 s and more (docs/performance.md).
 *
 * The server is stopped (SIGSTOP), so it accepts nothing while the burst arrives: every connection
 * that completes is held by the kernel's queue, and only the backlog decides how many do.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { once } from 'node:events';
import { startServer, type SpawnedServer } from '../helpers/server.js';
import { withTimeout } from '../helpers/service.js';

/** Above Node's default backlog (511), below the kernel's usual cap (net.core.somaxconn 4096). */
const BURST = 600;

/** Opens `count` connections at once; resolves with them once every one completed its handshake. */
async function burst(baseUrl: string, count: number, held: Socket[]): Promise<void> {
  const url = new URL(baseUrl);
  const connected = Array.from({ length: count }, () => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    socket.on('error', () => {}); // ends with the test
    held.push(socket);
    return once(socket, 'connect');
  });
  await Promise.all(connected);
}

describe('[server] listen_backlog', () => {
  let server: SpawnedServer | undefined;
  const held: Socket[] = [];
  after(async () => {
    for (const s of held) s.destroy();
    server?.proc.kill('SIGCONT');
    await server?.dispose();
  });

  it(`holds a burst of ${BURST} new connections while the server accepts none (default 4096)`, async () => {
    server = await startServer();
    server.proc.kill('SIGSTOP');
    try {
      await withTimeout(burst(server.baseUrl, BURST, held), 20_000, `not all ${BURST} connections completed: the listen queue is shorter than the burst`);
    } finally {
      server.proc.kill('SIGCONT');
    }
    // Accepted and served once it runs again.
    const answered = new Promise<string>((resolve) => {
      let text = '';
      held[0]!.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(text);
      });
    });
    held[0]!.write(`GET /health HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(await withTimeout(answered, 20_000, 'no answer after SIGCONT'), /^HTTP\/1\.1 200 /);
  });
});
