/** TCP keep-alive on accepted connections, read from the kernel's socket table (Linux /proc/net/tcp). */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { it } from 'node:test';
import { startServer } from '../helpers/server.js';

/** timer_active and when (in clock ticks) of the socket local:remote (IPv4 loopback ports). */
async function tcpTimer(localPort: number, remotePort: number): Promise<{ timer: number; whenTicks: number } | undefined> {
  const hex = (p: number) => `0100007F:${p.toString(16).toUpperCase().padStart(4, '0')}`;
  const rows = (await readFile('/proc/net/tcp', 'utf8')).split('\n').slice(1).map((l) => l.trim().split(/\s+/));
  const row = rows.find((r) => r[1] === hex(localPort) && r[2] === hex(remotePort));
  if (!row) return undefined;
  const [timer, when] = row[5]!.split(':');
  return { timer: Number.parseInt(timer!, 16), whenTicks: Number.parseInt(when!, 16) };
}

it('accepted connections carry TCP keep-alive with the configured idle time', async () => {
  const server = await startServer({ config: '[timeouts]\nkeep_alive_probe_interval = "45s"\n' });
  const port = Number(new URL(server.baseUrl).port);
  const socket = connect(port, '127.0.0.1');
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    // Let the server accept it: a request answered on this connection proves that.
    socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((resolve) => socket.once('data', resolve));
    const serverSide = await tcpTimer(port, socket.localPort!);
    const clientSide = await tcpTimer(socket.localPort!, port);
    assert.ok(serverSide && clientSide, 'both ends are in /proc/net/tcp');
    assert.equal(clientSide.timer, 0, 'control: the test client did not enable keep-alive');
    assert.equal(serverSide.timer, 2, 'keep-alive timer armed on the server side');
    // The first probe is due in about 45 s (ticks are USER_HZ, 100 on Linux): well past 30 s, before 46 s.
    assert.ok(serverSide.whenTicks > 30 * 100 && serverSide.whenTicks <= 46 * 100, `first probe in ${serverSide.whenTicks} ticks`);
  } finally {
    socket.destroy();
    await server.dispose();
  }
});
