/**
 * A throwaway redis-server per test file (Debian `redis-server`, no persistence) and the small
 * things Redis tests share: a unique key prefix per test and clients that are closed for you.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import { startService } from './service.js';

/** A free TCP port on loopback (closed again: something else may take it, rarely). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export interface RedisServer {
  readonly url: string;
  /** SIGTERM; resolves once it exited. */
  stop(): Promise<void>;
}

/** redis-server without persistence on a free port; resolves once it accepts connections. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const service = await startService({
    cmd: 'redis-server',
    pkg: 'redis-server',
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    ready: /Ready to accept connections/,
  });
  return { url: `redis://127.0.0.1:${port}`, stop: () => service.stop() };
}

/** A key prefix no other test uses, so tests can share one redis-server. */
export function uniquePrefix(label: string): string {
  return `test:${label}:${randomBytes(4).toString('hex')}:`;
}

/** Opens ioredis clients for one test file and closes them all in `closeAll`. */
export class RedisClients {
  readonly #open = new Set<Redis>();

  constructor(readonly url: string) {}

  /** A new connection; BullMQ workers need `maxRetriesPerRequest: null`, so every client has it. */
  open(): Redis {
    const client = new Redis(this.url, { maxRetriesPerRequest: null, lazyConnect: false });
    this.#open.add(client);
    return client;
  }

  async closeAll(): Promise<void> {
    const clients = [...this.#open];
    this.#open.clear();
    await Promise.all(clients.map((c) => (c.status === 'end' ? undefined : c.quit().catch(() => c.disconnect()))));
  }
}

/** A redis-server and its clients for the enclosing scope (file or describe), read after `before` ran. */
export interface RedisFixture {
  readonly server: RedisServer;
  readonly clients: RedisClients;
}

/**
 * Starts a throwaway redis-server before the tests of the enclosing scope and stops it (and
 * every client opened through `clients`) after them. Call at the top of a file or a describe.
 */
export function useRedis(): RedisFixture {
  let server: RedisServer | undefined;
  let clients: RedisClients | undefined;
  before(async () => {
    server = await startRedis();
    clients = new RedisClients(server.url);
  });
  after(async () => {
    await clients?.closeAll();
    await server?.stop();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useRedis(): read inside a test or hook, after before() ran');
    return value;
  };
  return {
    get server() {
      return started(server);
    },
    get clients() {
      return started(clients);
    },
  };
}
