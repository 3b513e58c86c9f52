/**
 * Many uploads at once, and memory (issue 14 items 3 and 4). Never part of npm test.
 *   1. Concurrency: N uploads of 1 MiB started at once (tus: POST + one PATCH; PUT) into this
 *      server (signed slots, queue on), into bare @tus/server, and into bare @tus/server with
 *      the hashing and fsyncs issue 14's rules demand ("floor tus": tus-bare-server.ts
 *      --durable), each a fresh child process.
 *      Printed: uploads/s until all answered (and, for hfs, until all published), HEAD p99 of
 *      one unfinished tus upload probed from a separate process during the load, the server's
 *      event-loop delay p99 (perf_hooks monitorEventLoopDelay, preloaded: lag-probe.ts), the
 *      server's CPU time per upload (all threads, /proc; the steadiest figure on a shared
 *      machine), peak RSS.
 *   2. Memory: RSS of this server holding N_STALLED tus PATCHes that sent 64 KiB and stalled.
 *   3. Start-up: time from spawn to "Server listening" and RSS then, with U unfinished tus
 *      uploads and P published files generated on disk in the server's layout.
 * The server refuses nothing the bench asks for: [limits] caps off, connection_pool_size and
 * max_concurrent_uploads above N. The load generator runs here, on the same cores.
 * Env: BENCH_UPLOADS (1000), BENCH_STALLED (1000), BENCH_UNFINISHED (10000), BENCH_PUBLISHED
 *      (100000); BENCH_QUICK=1: 200, 200, 1000, 10000. BENCH_LOAD_PARTS (concurrency,stalled,startup),
 *      BENCH_LOAD_KINDS (e.g. "hfs tus"), BENCH_CPU_PROF=<dir> (servers run with --cpu-prof),
 *      BENCH_HFS_CLI (another build's dist/src/cli.js, e.g. a copy of main's, for before/after runs),
 *      BENCH_COUNT_ASYNC=1 (libuv pool requests and promises per upload; slows the servers).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { signSlotUrl } from '../../src/index.js';
import { SERVER_NODE_FLAGS } from '../../src/node-flags.js';
import { CLI, REPO_ROOT } from '../helpers/server.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SECRET = 'bench-secret-0123456789abcdef';
const MiB = 2 ** 20;
const QUICK = process.env.BENCH_QUICK === '1';
const num = (name: string, full: number, quick: number) => Number(process.env[name] ?? (QUICK ? quick : full));
const UPLOADS = num('BENCH_UPLOADS', 1000, 200);
const STALLED = num('BENCH_STALLED', 1000, 200);
const UNFINISHED = num('BENCH_UNFINISHED', 10_000, 1000);
const PUBLISHED = num('BENCH_PUBLISHED', 100_000, 10_000);
const TUS = { 'Tus-Resumable': '1.0.0' };
/** Count async resources in the servers (lag-probe.ts): slows them, so the timings of such a run mean little. */
const COUNT_ASYNC = process.env.BENCH_COUNT_ASYNC === '1';
const BODY = randomBytes(MiB);
const agent = new Agent({ keepAlive: false, maxSockets: Infinity });

interface Server {
  proc: ChildProcess;
  dataDir: string;
  info: Record<string, string>;
  lagFile: string;
  startMs: number;
}
const children = new Set<ChildProcess>();

const HFS_CONFIG = `[server]
connection_pool_size = ${Math.max(200, UPLOADS, STALLED) * 2 + 100}
max_concurrent_uploads = ${Math.max(100, UPLOADS, STALLED) + 10}
[limits]
max_bodies_per_client = 0
max_connections_per_client = 0
creations_per_minute_per_client = 0
`;

function spawnServer(args: string[], dataDir: string, env: Record<string, string> = {}): Promise<Server> {
  const lagFile = `${dataDir}.lag.json`;
  const t0 = performance.now();
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const proc = spawn(process.execPath, [...SERVER_NODE_FLAGS, ...prof, '--import', join(HERE, 'lag-probe.js'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, HFS_BENCH_LAG_FILE: lagFile, HFS_BENCH_COUNT_ASYNC: process.env.BENCH_COUNT_ASYNC ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let last = '';
  createInterface({ input: proc.stderr! }).on('line', (l) => (last = l.trim() || last));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 120 s: ${last}`)), 120_000);
    proc.once('exit', (code) => reject(new Error(`server exited (${code}) before listening: ${last}`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (!line.includes('"Server listening"')) return;
      clearTimeout(timer);
      resolve({ proc, dataDir, info: JSON.parse(line) as Record<string, string>, lagFile, startMs: performance.now() - t0 });
    });
  });
}

async function startHfs(dataDir: string): Promise<Server> {
  writeFileSync(`${dataDir}.toml`, HFS_CONFIG);
  return spawnServer([process.env.BENCH_HFS_CLI ?? CLI, 'serve'], dataDir, { HFS_LISTEN: '127.0.0.1:0', HFS_DATA_DIR: dataDir, HFS_SECRET: SECRET, HFS_CONFIG: `${dataDir}.toml` });
}
const startBare = (dataDir: string, durable: boolean) => {
  mkdirSync(dataDir, { recursive: true });
  return spawnServer([join(HERE, 'tus-bare-server.js'), dataDir, ...(durable ? ['--durable'] : [])], dataDir);
};

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const force = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(force);
  }
  children.delete(proc);
}

interface Answer {
  status: number;
  location?: string;
  body: string;
}
function send(url: string, method: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: body ? { ...headers, 'Content-Length': String(body.length) } : headers, agent }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += text.length < 200 ? c.toString() : ''));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ...(res.headers.location && { location: res.headers.location }), body: text.slice(0, 200) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The server's event-loop delay since the previous read (lag-probe.ts) and its RSS. */
interface LagReading {
  p50: number;
  p99: number;
  max: number;
  rss: number;
  /** With BENCH_COUNT_ASYNC=1: requests to the libuv pool and promises since the previous reading. */
  pool: number;
  promises: number;
}
async function lag(server: Server): Promise<LagReading> {
  await rm(server.lagFile, { force: true });
  server.proc.kill('SIGUSR2');
  for (let i = 0; i < 500; i++) {
    const text = await readFile(server.lagFile, 'utf8').catch(() => '');
    if (text) return JSON.parse(text) as LagReading;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('lag probe did not answer');
}

/** utime + stime of a process (all threads) in ms, from /proc/<pid>/stat (100 ticks/s on Linux). */
const cpuMsOf = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};
const statusOf = (pid: number, field: 'VmRSS' | 'VmHWM') => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

/** Creates one tus upload; returns its absolute URL. */
async function tusCreate(server: Server, bare: boolean, size: number, path = `${randomBytes(6).toString('hex')}/f.bin`): Promise<string> {
  const base = bare ? `${server.info.address}/files` : server.info.tusUrl!;
  const headers: Record<string, string> = { ...TUS, 'Upload-Length': String(size) };
  if (!bare) headers['Upload-Slot'] = signSlotUrl({ secret: SECRET, path, baseUrl: server.info.uploadUrl!, size }).url;
  const created = await send(base, 'POST', headers);
  if (created.status !== 201 || !created.location) throw new Error(`creation answered ${created.status} ${created.body}`);
  return new URL(created.location, base).toString();
}

/** 'floor tus': bare @tus/server plus the hashing and fsyncs every upload must pay (tus-bare-server.ts --durable). */
type Kind = 'bare tus' | 'floor tus' | 'hfs tus' | 'hfs PUT';
const isBare = (kind: Kind) => kind === 'bare tus' || kind === 'floor tus';
async function oneUpload(server: Server, kind: Kind): Promise<string | null> {
  if (kind === 'hfs PUT') {
    const path = `${randomBytes(6).toString('hex')}/f.bin`;
    const slot = signSlotUrl({ secret: SECRET, path, baseUrl: server.info.uploadUrl!, size: BODY.length });
    const res = await send(slot.url, 'PUT', {}, BODY);
    if (res.status !== 201) throw new Error(`PUT answered ${res.status} ${res.body}`);
    return path;
  }
  const path = `${randomBytes(6).toString('hex')}/f.bin`;
  const url = await tusCreate(server, isBare(kind), BODY.length, path);
  const res = await send(url, 'PATCH', { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, BODY);
  if (res.status !== 204) throw new Error(`PATCH answered ${res.status} ${res.body}`);
  return isBare(kind) ? null : path;
}

async function concurrency(root: string, kind: Kind): Promise<string> {
  const dataDir = join(root, kind.replace(' ', '-'));
  const server = isBare(kind) ? await startBare(dataDir, kind === 'floor tus') : await startHfs(dataDir);
  try {
    const probeUrl = await tusCreate(server, isBare(kind), 10);
    for (let i = 0; i < 20; i++) await oneUpload(server, kind); // warm-up
    const prober = spawn(process.execPath, [join(HERE, 'head-prober.js'), probeUrl], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(prober);
    const proberOut = new Promise<string>((r) => {
      let out = '';
      prober.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      prober.once('exit', () => r(out));
    });
    await lag(server); // starts the window
    const cpu0 = cpuMsOf(server.proc.pid!);
    const t0 = performance.now();
    const paths = await Promise.all(Array.from({ length: UPLOADS }, () => oneUpload(server, kind)));
    const answeredS = (performance.now() - t0) / 1000;
    let during = await lag(server);
    let publishedS = NaN;
    if (!isBare(kind)) {
      // Published = the file at its final path. One stat per poll for most polls (the first one
      // still missing): walking files/ every 20 ms took a core from the server it measures.
      const { stat } = await import('node:fs/promises');
      const pending = paths.filter((p): p is string => p !== null);
      while (pending.length > 0) {
        while (pending.length > 0 && (await stat(join(dataDir, 'files', pending[pending.length - 1]!)).then(() => true, () => false))) pending.pop();
        if (pending.length > 0) await new Promise((r) => setTimeout(r, 20));
      }
      publishedS = (performance.now() - t0) / 1000;
    }
    const cpuPerUpload = (cpuMsOf(server.proc.pid!) - cpu0) / UPLOADS;
    if (COUNT_ASYNC) {
      // Counted until published: finalization's work included (the lag reading above stays as it was).
      const after = await lag(server);
      during = { ...during, pool: during.pool + after.pool, promises: during.promises + after.promises };
    }
    prober.kill('SIGTERM');
    const head = JSON.parse(await proberOut) as { n: number; p50: number; p99: number; failed: number };
    children.delete(prober);
    const peak = statusOf(server.proc.pid!, 'VmHWM');
    return (
      `  ${kind.padEnd(9)} ${UPLOADS} x 1 MiB at once: ${(UPLOADS / answeredS).toFixed(0).padStart(4)} uploads/s answered` +
      (Number.isNaN(publishedS) ? '' : `, ${(UPLOADS / publishedS).toFixed(0)}/s published`) +
      `; HEAD p50 ${head.p50.toFixed(1)} p99 ${head.p99.toFixed(1)} ms (${head.n} probes, ${head.failed} failed); event-loop delay p99 ${during.p99} ms max ${during.max} ms;` +
      ` server CPU ${cpuPerUpload.toFixed(1)} ms/upload${isBare(kind) ? '' : ' (until published)'}; peak RSS ${peak.toFixed(0)} MiB` +
      (COUNT_ASYNC ? `; per upload: ${(during.pool / UPLOADS).toFixed(1)} libuv pool requests, ${(during.promises / UPLOADS).toFixed(0)} promises` : '')
    );
  } finally {
    await stop(server.proc);
  }
}

/** N tus PATCHes that sent 64 KiB of 1 MiB and then stall; RSS of the server holding them. */
async function stalled(root: string): Promise<string> {
  const server = await startHfs(join(root, 'stalled'));
  const sockets: Array<{ destroy(): void }> = [];
  try {
    const before = statusOf(server.proc.pid!, 'VmRSS');
    const urls = [];
    for (let i = 0; i < STALLED; i += 50) urls.push(...(await Promise.all(Array.from({ length: Math.min(50, STALLED - i) }, () => tusCreate(server, false, MiB)))));
    for (const url of urls) {
      const req = request(url, { method: 'PATCH', agent, headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(MiB) } });
      req.on('error', () => {});
      req.write(BODY.subarray(0, 64 * 1024));
      sockets.push(req);
    }
    await new Promise((r) => setTimeout(r, 3000)); // let the server take the bytes in
    const { rss } = await lag(server);
    const hwm = statusOf(server.proc.pid!, 'VmHWM');
    return `  ${STALLED} stalled tus PATCHes (64 KiB sent of 1 MiB): RSS ${(rss / MiB).toFixed(0)} MiB (idle ${before.toFixed(0)} MiB, peak ${hwm.toFixed(0)} MiB)`;
  } finally {
    for (const s of sockets) s.destroy();
    await stop(server.proc);
  }
}

/** Writes U unfinished tus uploads and P published files (files/, meta/, cas/ hard links) like the server leaves them. */
function generate(dataDir: string, unfinished: number, published: number): void {
  const now = Date.now();
  mkdirSync(join(dataDir, 'tus'), { recursive: true });
  for (let i = 0; i < unfinished; i++) {
    const id = `bench${i.toString(36).padStart(8, '0')}${randomBytes(8).toString('hex')}`;
    writeFileSync(join(dataDir, 'tus', id), BODY.subarray(0, 1024));
    const hfs = { slotPath: `u${i % 100}/${id}/f.bin`, contentType: 'application/octet-stream', scheme: 'v', signedSize: MiB, createdAtMs: now };
    writeFileSync(join(dataDir, 'tus', `${id}.json`), JSON.stringify({ id, size: MiB, offset: 1024, creation_date: new Date(now).toISOString(), hfs }));
  }
  for (let i = 0; i < published; i++) {
    const content = Buffer.from(`published file ${i}\n`);
    const sha = createHash('sha256').update(content).digest('hex');
    const slot = `p${i % 1000}/${i.toString(36)}/f.txt`;
    const file = join(dataDir, 'files', slot);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
    mkdirSync(join(dataDir, 'cas', sha.slice(0, 2)), { recursive: true });
    linkSync(file, join(dataDir, 'cas', sha.slice(0, 2), sha));
    const meta = join(dataDir, 'meta', `${slot}.json`);
    mkdirSync(dirname(meta), { recursive: true });
    const record = { contentType: 'text/plain', uploadId: `bench-${i}`, sha256: sha, size: content.length, protocol: 'put', receivedAtMs: now, publishedAt: new Date(now).toISOString() };
    writeFileSync(meta, JSON.stringify(record));
  }
}

async function startup(root: string): Promise<string> {
  const dataDir = join(root, 'startup');
  mkdirSync(dataDir, { recursive: true });
  const t0 = performance.now();
  generate(dataDir, UNFINISHED, PUBLISHED);
  const genS = (performance.now() - t0) / 1000;
  const lines: string[] = [];
  const empty = join(root, 'startup-empty');
  mkdirSync(empty);
  for (const [pass, dir] of [['empty data dir (reference)', empty], ['cold (first start on these files)', dataDir], ['warm (second start)', dataDir]] as const) {
    const server = await startHfs(dir);
    const rssAtListen = statusOf(server.proc.pid!, 'VmRSS');
    const cpuAtListen = cpuMsOf(server.proc.pid!); // steadier than the wall time on a shared machine
    const probe = await tusCreate(server, false, 10); // answers: the server is up, not only listening
    void probe;
    await new Promise((r) => setTimeout(r, 2000)); // background work after listening (index loads, sweeps)
    const rssLater = statusOf(server.proc.pid!, 'VmRSS');
    lines.push(`  ${pass}: listening after ${server.startMs.toFixed(0)} ms (node start included; server CPU ${cpuAtListen} ms), RSS ${rssAtListen.toFixed(0)} MiB then, ${rssLater.toFixed(0)} MiB 2 s later`);
    await stop(server.proc);
  }
  return `  ${UNFINISHED} unfinished tus uploads + ${PUBLISHED} published files generated in ${genS.toFixed(1)} s\n${lines.join('\n')}`;
}

const root = await mkdtemp(join(tmpdir(), 'hfs-load-bench-'));
try {
  console.log(`load bench: node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}, linux ${release()}; client and servers share these cores`);
  console.log(`1. concurrency (${UPLOADS} uploads of 1 MiB at once; order alternates tus/bare)`);
  const parts = (process.env.BENCH_LOAD_PARTS ?? 'concurrency,stalled,startup').split(',');
  const kinds = (process.env.BENCH_LOAD_KINDS?.split(',') ?? ['bare tus', 'floor tus', 'hfs tus', 'hfs PUT', 'bare tus']) as Kind[];
  if (parts.includes('concurrency')) for (const kind of kinds) console.log(await concurrency(root, kind));
  console.log('2. memory with stalled uploads');
  if (parts.includes('stalled')) console.log(await stalled(root));
  console.log('3. start-up');
  if (parts.includes('startup')) console.log(await startup(root));
} catch (err) {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  for (const c of children) c.kill('SIGKILL');
  agent.destroy();
  await rm(root, { recursive: true, force: true, maxRetries: 3 });
}
