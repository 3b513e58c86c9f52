/**
 * Cluster tests: a redis-server that can be killed and started again on its port with its data
 * (AOF), and several server processes on one shared data directory (each with its own instance
 * directory) behind a round-robin proxy.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, rawRequest, type RawResponse } from './http.js';
import { freePort } from './redis.js';
import { RoundRobinProxy } from './round-robin-proxy.js';
import { startServer, TEST_SECRET, type LogLine, type SpawnedServer } from './server.js';
import { startService, type RunningService } from './service.js';

export const ADMIN_TOKEN = 'cluster-admin-token-0123456789';

export interface RestartableRedis {
  readonly url: string;
  /** SIGKILL (no shutdown save); resolves once it exited. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (the AOF brings the data back). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** redis-server with `appendonly yes` (appendfsync everysec, the deployment guide's setting) in its own directory. */
export async function startPersistentRedis(): Promise<RestartableRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'hfs-redis-'));
  let service: RunningService | null = null;
  const start = async () => {
    service = await startService({
      cmd: 'redis-server',
      pkg: 'redis-server',
      args: ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec'],
      ready: /Ready to accept connections/,
    });
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      const s = service;
      service = null;
      if (s === null) return;
      s.proc.kill('SIGKILL');
      await s.exited;
    },
    restart: start,
    async stop() {
      await service?.stop();
      service = null;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ClusterOptions {
  readonly size: number;
  readonly redisUrl: string;
  /** Extra TOML sections (not [redis] or [cluster], which this helper writes). */
  readonly config?: string;
  /** Extra TOML keys for [redis]. */
  readonly redisKeys?: string;
  readonly env?: Record<string, string | undefined>;
  /** Extra environment of instance i only (e.g. a crash hook on one of them). */
  readonly envOf?: (i: number) => Record<string, string | undefined>;
  /**
   * The storage sections every instance gets (backends.ts `config()`: S3 names one bucket for all).
   * On S3 each instance also gets a data directory of its own: nothing is shared but Redis and the bucket.
   */
  readonly storage?: { readonly backend: 'file' | 's3'; readonly config: string };
}

export interface TestCluster {
  /** The shared data directory (file backend); on S3 the directory holding each instance's own. */
  readonly dataDir: string;
  /** Instance i's data directory (the shared one on the file backend). */
  dataDirOf(i: number): string;
  readonly servers: SpawnedServer[];
  readonly proxy: RoundRobinProxy;
  /** Upload prefix and tus URL through the proxy (the load balancer). */
  readonly uploadUrl: string;
  readonly tusUrl: string;
  instanceId(i: number): string;
  /** Starts instance i again (after kill or stop) and points the proxy at it. */
  restart(i: number): Promise<SpawnedServer>;
  /** Every log line of every instance matching `pred`. */
  linesOf(pred: (l: LogLine) => boolean): LogLine[];
  dispose(): Promise<void>;
}

export async function startCluster(options: ClusterOptions): Promise<TestCluster> {
  const dataDir = await mkdtemp(join(tmpdir(), 'hfs-cluster-'));
  const instanceId = (i: number) => `node-${String.fromCharCode(97 + i)}`;
  const configOf = (i: number) => `
[redis]
health_check_interval = "200ms"
lock_ttl = "2s"
${options.redisKeys ?? ''}

[cluster]
instance_id = "${instanceId(i)}"
heartbeat_interval = "300ms"

[admin]
token = "${ADMIN_TOKEN}"

${options.config ?? ''}

${options.storage?.config ?? ''}
`;
  const ownDirs = options.storage?.backend === 's3';
  const dataDirOf = (i: number) => (ownDirs ? join(dataDir, instanceId(i)) : dataDir);
  const start = async (i: number) => {
    if (ownDirs) await mkdir(dataDirOf(i), { recursive: true });
    return startServer({ dataDir: dataDirOf(i), config: configOf(i), env: { HFS_REDIS_URL: options.redisUrl, ...options.env, ...options.envOf?.(i) } });
  };
  const servers: SpawnedServer[] = [];
  const retired: SpawnedServer[] = [];
  const dispose = async () => {
    await proxy?.close();
    await Promise.all([...servers, ...retired].map((s) => s.dispose()));
    await rm(dataDir, { recursive: true, force: true });
  };
  let proxy: RoundRobinProxy | undefined;
  try {
    // One at a time: the helper writes each config file beside the shared data directory.
    for (let i = 0; i < options.size; i++) servers.push(await start(i));
    proxy = new RoundRobinProxy(servers.map((s) => Number(new URL(s.baseUrl).port)));
    await proxy.start();
  } catch (err) {
    await dispose();
    throw err;
  }
  const p = proxy;
  return {
    dataDir,
    dataDirOf,
    servers,
    proxy: p,
    uploadUrl: `${p.url}/upload/`,
    tusUrl: `${p.url}/files`,
    instanceId,
    async restart(i) {
      const server = await start(i);
      retired.push(servers[i]!);
      servers[i] = server;
      p.setBackend(i, Number(new URL(server.baseUrl).port));
      return server;
    },
    linesOf: (pred) => [...retired, ...servers].flatMap((s) => s.logs.filter(pred)),
    dispose,
  };
}

/** A signed slot for `path` under `uploadUrl` (the proxy's, usually). */
export function slot(uploadUrl: string, path: string, size: number): { putPath: string; getPath: string; url: string } {
  const s = signSlotUrl({ secret: TEST_SECRET, path, size, baseUrl: uploadUrl });
  return { putPath: pathOf(s.url), getPath: pathOf(s.getUrl), url: s.url };
}

/** PUT through `baseUrl`; resolves the status. */
export async function putVia(baseUrl: string, uploadUrl: string, path: string, body: Buffer): Promise<RawResponse> {
  const s = slot(uploadUrl, path, body.length);
  return rawRequest(baseUrl, s.putPath, { method: 'PUT', headers: { 'Content-Length': body.length }, body });
}

/** A tus creation-with-upload of the whole body through `baseUrl`. */
export async function tusVia(baseUrl: string, uploadUrl: string, path: string, body: Buffer): Promise<RawResponse> {
  const s = slot(uploadUrl, path, body.length);
  return rawRequest(baseUrl, '/files/', {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': body.length, 'Upload-Slot': s.url, 'Content-Type': 'application/offset+octet-stream' },
    body,
  });
}

/**
 * GET until the file is there: a 503 (still being finalized, or Redis unreachable at that
 * instance) is retried after its Retry-After, capped; anything else is returned.
 */
export async function getPublished(baseUrl: string, getPath: string, deadlineMs = 60_000): Promise<RawResponse> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const res = await rawRequest(baseUrl, getPath);
    if (res.status !== 503 || Date.now() > end) return res;
    await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, Number(res.headers['retry-after'] ?? 1) * 1000)));
  }
}

/** 'File published' lines (fresh publishes only) by job id, over every instance. */
export function publishedJobs(cluster: TestCluster): Map<string, number> {
  const byJob = new Map<string, number>();
  for (const line of cluster.linesOf((l) => l.msg === 'File published')) byJob.set(String(line.jobId), (byJob.get(String(line.jobId)) ?? 0) + 1);
  return byJob;
}
