/**
 * `[redis] url`: which Redis deployment cluster mode talks to. Pure: parses and validates the
 * URL; src/cluster/ turns the result into ioredis clients. Forms (ioredis supports each
 * deployment; only the first has a URL syntax of its own in ioredis, so the multi-host forms
 * are parsed here):
 *
 *   redis://[user:password@]host[:port][/db]                      one server (rediss:// for TLS)
 *   redis+sentinel://[user:password@]host:port[,host:port…]/master-name[/db]
 *                                                                 Sentinel; the password is the
 *                                                                 data nodes' (sentinels: none)
 *   redis+cluster://[user:password@]host:port[,host:port…]        Redis Cluster seed nodes
 *
 * `rediss+sentinel://` and `rediss+cluster://` use TLS to the data nodes.
 */

export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

export interface RedisAuth {
  readonly username?: string;
  readonly password?: string;
}

export type RedisTarget =
  /** Passed to ioredis as is (it parses redis:// and rediss:// itself). */
  | ({ readonly kind: 'standalone'; readonly url: string; readonly tls: boolean } & RedisAuth)
  | ({ readonly kind: 'sentinel'; readonly sentinels: readonly RedisNode[]; readonly masterName: string; readonly db: number; readonly tls: boolean } & RedisAuth)
  | ({ readonly kind: 'cluster'; readonly nodes: readonly RedisNode[]; readonly tls: boolean } & RedisAuth);

const SCHEMES: Record<string, { kind: RedisTarget['kind']; tls: boolean; defaultPort: number }> = {
  redis: { kind: 'standalone', tls: false, defaultPort: 6379 },
  rediss: { kind: 'standalone', tls: true, defaultPort: 6379 },
  'redis+sentinel': { kind: 'sentinel', tls: false, defaultPort: 26379 },
  'rediss+sentinel': { kind: 'sentinel', tls: true, defaultPort: 26379 },
  'redis+cluster': { kind: 'cluster', tls: false, defaultPort: 6379 },
  'rediss+cluster': { kind: 'cluster', tls: true, defaultPort: 6379 },
};

/** Throws a message naming what is wrong (the caller adds the key path); never echoes a password. */
export function parseRedisUrl(input: string): RedisTarget {
  const m = /^([a-z+]+):\/\/(?:([^@/]*)@)?([^/?#]*)(\/[^?#]*)?$/i.exec(input.trim());
  const scheme = m ? SCHEMES[m[1]!.toLowerCase()] : undefined;
  if (!m || !scheme) {
    if (/^[a-z+]+:\/\/[^?#]*[?#]/i.test(input.trim())) {
      throw new Error("takes no query string or fragment (ioredis options such as ?family= are not read here; docs/cluster.md lists the [redis] keys); a '?' or '#' in a password is written %3F or %23");
    }
    throw new Error(`must be a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL (see docs/cluster.md)`);
  }
  // An '@' after the first '/' means a password with a '/' in it was not percent-encoded: the
  // host part would then be a piece of the password, which an error must never echo.
  if (`${m[3]}${m[4] ?? ''}`.includes('@')) {
    throw new Error("the user name and password must be percent-encoded ('/' as %2F, '@' as %40, ':' as %3A)");
  }
  const auth = parseAuth(m[2]);
  const nodes = parseNodes(m[3]!, scheme.defaultPort);
  const segments = (m[4] ?? '').split('/').filter((s) => s !== '').map(decodeURIComponent);
  switch (scheme.kind) {
    case 'standalone': {
      if (nodes.length !== 1) throw new Error('a redis:// URL names one host; use redis+sentinel:// or redis+cluster:// for several');
      if (segments.length > 1) throw new Error('the path of a redis:// URL is the database number only, e.g. /0');
      if (segments.length === 1) dbNumber(segments[0]!);
      return { kind: 'standalone', url: input.trim(), tls: scheme.tls, ...auth };
    }
    case 'sentinel': {
      const [masterName, db, ...rest] = segments;
      if (masterName === undefined || rest.length > 0) throw new Error('a redis+sentinel:// URL needs the master name as its path, e.g. /mymaster or /mymaster/0');
      return { kind: 'sentinel', sentinels: nodes, masterName, db: db === undefined ? 0 : dbNumber(db), tls: scheme.tls, ...auth };
    }
    case 'cluster': {
      if (segments.length > 0) throw new Error('a redis+cluster:// URL has no path: Redis Cluster has database 0 only');
      return { kind: 'cluster', nodes, tls: scheme.tls, ...auth };
    }
  }
}

function parseAuth(userinfo: string | undefined): RedisAuth {
  if (userinfo === undefined || userinfo === '') return {};
  const colon = userinfo.indexOf(':');
  const username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
  const password = colon < 0 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
  // redis://user@host is a password in ioredis' URL form when no colon is given; keep that reading.
  if (password === undefined) return { password: username };
  return { ...(username !== '' && { username }), ...(password !== '' && { password }) };
}

function parseNodes(hosts: string, defaultPort: number): RedisNode[] {
  if (hosts === '') throw new Error('names no host');
  return hosts.split(',').map((part) => {
    const m = /^(\[[0-9a-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/i.exec(part);
    if (!m) throw new Error(`"${part}" is not a host[:port]`);
    const port = m[2] === undefined ? defaultPort : Number(m[2]);
    if (port < 1 || port > 65_535) throw new Error(`port ${m[2]} is out of range`);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
  });
}

function dbNumber(text: string): number {
  if (!/^\d{1,2}$/.test(text)) throw new Error(`database "${text}" is not a number from 0 to 99`);
  return Number(text);
}

/** The URL without its password, for logs and status output. */
export function redactRedisUrl(input: string): string {
  return input.replace(/^([a-z+]+:\/\/)([^@/]*)@/i, (_all, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return colon < 0 ? `${scheme}***@` : `${scheme}${userinfo.slice(0, colon)}:***@`;
  });
}
