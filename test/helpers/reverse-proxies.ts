/**
 * Real reverse proxies in front of the spawned server (Debian nginx, caddy, haproxy), each on a
 * free loopback port with a generated config in its own temp dir, in the foreground, started
 * through service.ts (a missing binary names its package; every wait has a deadline). The
 * configs are what an operator would write for an upload server: request bodies streamed, no
 * body size limit, the client's Host passed on. nginx adds no forwarding header, so only the
 * peer address tells the server a proxy is in between; Caddy adds X-Forwarded-For.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis.js';
import { startService, type RunningService } from './service.js';

export type ProxyKind = 'nginx' | 'nginx-http10' | 'caddy' | 'haproxy';

export interface ReverseProxy {
  readonly kind: ProxyKind;
  /** e.g. http://127.0.0.1:41234 */
  readonly baseUrl: string;
  /** What the proxy printed (nginx: its error log). */
  output(): string;
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

/** How long nginx waits for an upstream answer; the desynchronised request ends after it. */
export const NGINX_READ_TIMEOUT_S = 10;

/** Starts `kind` on a free loopback port, forwarding to `upstream` (http://127.0.0.1:port). */
export async function startReverseProxy(kind: ProxyKind, upstream: string): Promise<ReverseProxy> {
  const dir = await mkdtemp(join(tmpdir(), `hfs-${kind}-`));
  const up = new URL(upstream).host;
  try {
    const port = await freePort();
    const service = await launch(kind, dir, port, up);
    return {
      kind,
      baseUrl: `http://127.0.0.1:${port}`,
      output: () => service.output(),
      waitForOutput: (re, timeoutMs) => service.waitForOutput(re, timeoutMs),
      async stop() {
        await service.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function launch(kind: ProxyKind, dir: string, port: number, upstream: string): Promise<RunningService> {
  switch (kind) {
    case 'nginx':
    case 'nginx-http10': {
      const file = join(dir, 'nginx.conf');
      await writeFile(file, nginxConfig(dir, port, upstream, kind === 'nginx'));
      // getrlimit is logged once the listening sockets are open.
      return startService({ cmd: 'nginx', pkg: 'nginx', args: ['-c', file, '-p', dir, '-e', 'stderr'], ready: /getrlimit\(RLIMIT_NOFILE\)/ });
    }
    case 'caddy': {
      const file = join(dir, 'Caddyfile');
      await writeFile(file, caddyConfig(port, upstream));
      // Caddy keeps state under $HOME/XDG dirs: all in the temp dir.
      const env = { ...process.env, HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), XDG_DATA_HOME: join(dir, 'data') };
      return startService({ cmd: 'caddy', pkg: 'caddy', args: ['run', '--config', file, '--adapter', 'caddyfile'], ready: /"msg":"serving initial configuration"/, spawnOptions: { env } });
    }
    case 'haproxy': {
      const file = join(dir, 'haproxy.cfg');
      await writeFile(file, haproxyConfig(port, upstream));
      // Master-worker mode prints "Loading success." once the worker listens; SIGTERM to the master stops both.
      return startService({ cmd: 'haproxy', pkg: 'haproxy', args: ['-W', '-db', '-f', file], ready: /Loading success/ });
    }
  }
}

/**
 * nginx: `proxy_http_version 1.1` with upstream keep-alive (the common tuning), or nginx's
 * default HTTP/1.0 to the upstream (`http11` false).
 */
function nginxConfig(dir: string, port: number, upstream: string, http11: boolean): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, t)};`).join('\n');
  return `daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log stderr info;
events { worker_connections 256; }
http {
  access_log off;
${temp}
  upstream hfs {
    server ${upstream};
${http11 ? '    keepalive 8;\n' : ''}  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    proxy_request_buffering off;
    location / {
      proxy_pass http://hfs;
      proxy_set_header Host $http_host;
      proxy_read_timeout ${NGINX_READ_TIMEOUT_S}s;
${http11 ? '      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n' : ''}    }
  }
}
`;
}

function caddyConfig(port: number, upstream: string): string {
  return `{
\tadmin off
\tauto_https off
}

http://127.0.0.1:${port} {
\tbind 127.0.0.1
\treverse_proxy ${upstream}
}
`;
}

function haproxyConfig(port: number, upstream: string): string {
  return `global
  maxconn 256
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend uploads
  bind 127.0.0.1:${port}
  default_backend hfs
backend hfs
  server hfs1 ${upstream}
`;
}
