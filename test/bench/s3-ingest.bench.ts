/**
 * S3 ingest against the file store, in one run (issue 12.8): this server's PUT and its tus path
 * (POST, then one PATCH) into two servers started side by side, one on the file backend and one
 * on S3 (a throw-away Ceph RadosGW on this machine, test/helpers/rgw.ts). Each sample is timed and
 * its server CPU (utime+stime from /proc) counted from the upload request until the file is
 * published (a GET serves it whole), so hashing, dedup and the server-side copies are included.
 * RadosGW's own CPU is not counted (it runs here too and competes for the same cores).
 * PUT bodies go up with S3_PUT_PARTS_IN_FLIGHT parts in flight while the next one fills (the
 * header line says how many and the part size), tus PATCH bodies through @tus/s3-store.
 * Run by `npm run bench` (scripts/bench.sh; BENCH_FILTER=s3 for this one alone), never by npm test.
 * Env: BENCH_S3_SIZE (default 256MiB, 64MiB with BENCH_QUICK=1: RadosGW keeps every object in
 * memory, and a file is held up to three times while it is finalized; its OSD gets 12x that, and
 * a full OSD blocks writes), BENCH_RUNS (default 2, medians), BENCH_S3_PART_SIZE (default 8MiB,
 * the servers' [storage.s3] part_size).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { CreateBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { parseSize } from '../../src/config/index.js';
import { signSlotUrl } from '../../src/index.js';
import { SERVER_NODE_FLAGS } from '../../src/node-flags.js';
import { S3_PUT_PARTS_IN_FLIGHT } from '../../src/storage/s3.js';
import { startRadosGw, type RadosGw } from '../helpers/rgw.js';
import { CLI, REPO_ROOT } from '../helpers/server.js';

const SECRET = 'bench-secret-0123456789abcdef';
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const CLK_TCK = 100; // Linux's USER_HZ on every kernel this runs on
const BUCKET = 'bench';

interface Server {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly info: Record<string, string>;
}

interface Sample {
  readonly mibPerSec: number;
  readonly cpuSecPerGiB: number;
}

const children = new Set<ChildProcess>();

async function startHfs(name: string, dir: string, config: string): Promise<Server> {
  await writeFile(`${dir}.toml`, config);
  const proc = spawn(process.execPath, [...SERVER_NODE_FLAGS, CLI, 'serve'], {
    cwd: REPO_ROOT,
    env: { ...process.env, HFS_LISTEN: '127.0.0.1:0', HFS_DATA_DIR: dir, HFS_SECRET: SECRET, HFS_CONFIG: `${dir}.toml` },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  children.add(proc);
  const info = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s`)), 30_000);
    proc.once('exit', (code) => reject(new Error(`${name} exited (${code}) before listening`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (!line.includes('"Server listening"')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as Record<string, string>);
    });
  });
  return { name, proc, info };
}

function cpuSeconds(proc: ChildProcess): number {
  const text = readFileSync(`/proc/${proc.pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function send(url: string, method: string, headers: Record<string, string>, body?: { path: string; size: number }): Promise<{ status: number; location?: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: body ? { ...headers, 'Content-Length': String(body.size) } : headers, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ...(res.headers.location && { location: res.headers.location }), bytes }));
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`${method} ${new URL(url).pathname}: no progress for 60 s`)));
    req.on('error', reject);
    if (!body) req.end();
    else pipeline(createReadStream(body.path, { end: body.size - 1, highWaterMark: MiB }), req).catch(reject);
  });
}

/** One upload through `protocol`, timed and CPU-counted until a GET serves the whole file. */
async function sample(server: Server, protocol: 'put' | 'tus', payload: string, size: number): Promise<Sample> {
  const path = `${randomBytes(8).toString('hex')}/bench.bin`;
  const slot = signSlotUrl({ secret: SECRET, path, baseUrl: server.info.uploadUrl!, size });
  let url = slot.url;
  let headers: Record<string, string> = {};
  if (protocol === 'tus') {
    const created = await send(server.info.tusUrl!, 'POST', { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(size), 'Upload-Slot': slot.url });
    if (created.status !== 201 || !created.location) throw new Error(`${server.name}: tus creation answered ${created.status}`);
    url = new URL(created.location, server.info.tusUrl).toString();
    headers = { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' };
  }
  const cpu0 = cpuSeconds(server.proc);
  const t0 = performance.now();
  const res = await send(url, protocol === 'tus' ? 'PATCH' : 'PUT', headers, { path: payload, size });
  if (res.status !== (protocol === 'tus' ? 204 : 201)) throw new Error(`${server.name} ${protocol}: answered ${res.status}`);
  const seconds = (performance.now() - t0) / 1000;
  // Published: a GET (which waits for finalization, or answers 503 to retry) serves every byte.
  let got = await send(slot.getUrl, 'GET', {});
  for (let i = 0; i < 60 && got.status === 503; i++) got = await send(slot.getUrl, 'GET', {});
  const cpu = cpuSeconds(server.proc) - cpu0;
  if (got.status !== 200 || got.bytes !== size) throw new Error(`${server.name} ${protocol}: GET answered ${got.status} with ${got.bytes} bytes`);
  return { mibPerSec: size / MiB / seconds, cpuSecPerGiB: cpu / (size / GiB) };
}

/** Empties the bench bucket (RadosGW's memory holds every object). */
async function emptyBucket(client: S3Client): Promise<void> {
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
    if (keys.length === 0) return;
    await client.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys, Quiet: true } }));
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(root: string, rgw: RadosGw): Promise<void> {
  const size = benchSize();
  const partSize = process.env.BENCH_S3_PART_SIZE ?? '8MiB';
  const runs = Number(process.env.BENCH_RUNS ?? '2');
  if (!(size > 0 && Number.isInteger(runs) && runs >= 1)) throw new Error('BENCH_S3_SIZE must be > 0 and BENCH_RUNS a whole number >= 1');
  const client = new S3Client({
    region: rgw.region,
    endpoint: rgw.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const payload = join(root, 'payload.bin');
  const block = randomBytes(16 * MiB);
  const fh = await open(payload, 'wx');
  for (let at = 0; at < size; at += block.length) await fh.write(block, 0, Math.min(block.length, size - at));
  await fh.close();

  const s3Config = [
    '[storage]', 'backend = "s3"', '[storage.s3]', `bucket = "${BUCKET}"`, `endpoint = "${rgw.endpoint}"`, 'force_path_style = true',
    `access_key_id = "${rgw.accessKeyId}"`, `secret_access_key = "${rgw.secretAccessKey}"`, `part_size = "${partSize}"`, '',
  ].join('\n');
  const servers = [await startHfs('file', join(root, 'file'), ''), await startHfs('s3', join(root, 's3'), s3Config)];
  const cases = servers.flatMap((server) => (['put', 'tus'] as const).map((protocol) => ({ server, protocol, samples: [] as Sample[] })));
  for (const c of cases) await sample(c.server, c.protocol, payload, Math.min(size, 16 * MiB)); // warm-up, not measured
  await emptyBucket(client);
  for (let run = 0; run < runs; run++) {
    for (const c of cases) {
      c.samples.push(await sample(c.server, c.protocol, payload, size));
      await emptyBucket(client);
    }
  }
  const row = (c: (typeof cases)[number]) => ({ name: `${c.server.name} ${c.protocol}`, mib: median(c.samples.map((s) => s.mibPerSec)), cpu: median(c.samples.map((s) => s.cpuSecPerGiB)) });
  const rows = cases.map(row);
  const fileOf = (protocol: string) => rows.find((r) => r.name === `file ${protocol}`)!;
  console.log(`S3 ingest vs file store: ${cpus().length} cores, node ${process.version}, file ${(size / MiB).toFixed(0)} MiB, median of ${runs} run(s), until published`);
  console.log(`S3: part size ${partSize}, PUT ${S3_PUT_PARTS_IN_FLIGHT} parts in flight; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(['server', 'MiB/s', 'CPU s/GiB', 'MiB/s vs file', 'CPU vs file'].join('  '));
  for (const r of rows) {
    const base = fileOf(r.name.split(' ')[1]!);
    console.log([r.name.padEnd(8), r.mib.toFixed(0).padStart(5), r.cpu.toFixed(2).padStart(9), `${(r.mib / base.mib).toFixed(2)}x`.padStart(13), `${(r.cpu / base.cpu).toFixed(2)}x`.padStart(11)].join('  '));
  }
  console.log('note: RadosGW (memstore) runs on the same cores and its CPU is not counted; S3 figures are for loopback to it.');
  client.destroy();
}

function benchSize(): number {
  return parseSize(process.env.BENCH_S3_SIZE ?? (process.env.BENCH_QUICK === '1' ? '64MiB' : '256MiB'));
}

const root = await mkdtemp(join(tmpdir(), 'hfs-bench-s3-'));
let rgw: RadosGw | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const proc of children) proc.kill('SIGKILL');
    void (rgw?.stop() ?? Promise.resolve()).finally(() => {
      console.error(`bench failed: interrupted by ${signal}`);
      process.exit(1);
    });
  });
}
try {
  rgw = await startRadosGw({ memstoreBytes: Math.max(1024 * MiB, 12 * benchSize()) });
  await main(root, rgw);
} catch (err) {
  console.error(`bench failed: ${(err as Error).message.split('\n')[0]}`);
  process.exitCode = 1;
} finally {
  for (const proc of children) proc.kill('SIGTERM');
  await Promise.all([...children].map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)))));
  await rgw?.stop();
  await rm(root, { recursive: true, force: true });
}
