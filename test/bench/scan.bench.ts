/**
 * What malware scanning costs (docs/scanning.md), with a real clamd (its own one-line signature
 * database: the official one cannot be downloaded here, and it makes clamd itself slower):
 *   1. the scanner alone: INSTREAM of a file to clamd (unix socket), beside sha256 of the same
 *      file (the pipeline's hash step) for scale
 *   2. upload to published: one PUT of the file, timed until the server logs "File published",
 *      into a server with [scan] off and one with it on (both on loopback, interleaved runs)
 * Run by `npm run bench` (scripts/bench.sh), never by `npm test`.
 * Env: BENCH_SCAN_SIZE (default 256MiB; clamd's limits are raised to 1 GiB), BENCH_RUNS (default 2).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseSize } from '../../src/config/index.js';
import { sha256File } from '../../src/finalize/index.js';
import { signSlotUrl } from '../../src/index.js';
import { ClamdScanner } from '../../src/scan/index.js';
import { startClamd, type Clamd } from '../helpers/clamd.js';
import { TEST_SECRET, startServer, type SpawnedServer } from '../helpers/server.js';

const MiB = 2 ** 20;

async function writePayload(file: string, size: number): Promise<void> {
  const block = randomBytes(16 * MiB);
  const fh = await open(file, 'wx');
  try {
    for (let at = 0; at < size; at += block.length) await fh.write(block, 0, Math.min(block.length, size - at));
  } finally {
    await fh.close();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

function put(url: string, file: string, size: number): Promise<{ status: number; requestId: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', headers: { 'Content-Length': String(size) }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, requestId: String(res.headers['x-request-id']) }));
    });
    req.on('error', reject);
    pipeline(createReadStream(file, { end: size - 1, highWaterMark: MiB }), req).catch(reject);
  });
}

/** Seconds from the first byte sent until the server logged "File published" for this upload; and the part after the 201. */
async function uploadToPublished(server: SpawnedServer, file: string, size: number): Promise<{ total: number; finalize: number }> {
  const path = `${randomBytes(8).toString('hex')}/bench.bin`;
  const slot = signSlotUrl({ secret: TEST_SECRET, path, size, baseUrl: server.uploadUrl });
  const t0 = performance.now();
  const res = await put(slot.url, file, size);
  const answered = performance.now();
  if (res.status !== 201) throw new Error(`PUT answered ${res.status}`);
  const jobId = `put-${res.requestId}`;
  await server.waitForLog((l) => l.jobId === jobId && l.msg === 'File published', 600_000);
  const done = performance.now();
  await rm(join(server.dataDir, 'files', path.split('/')[0]!), { recursive: true, force: true });
  return { total: (done - t0) / 1000, finalize: (done - answered) / 1000 };
}

async function main(): Promise<void> {
  const size = parseSize(process.env.BENCH_SCAN_SIZE ?? '256MiB');
  const runs = Number(process.env.BENCH_RUNS ?? '2');
  if (!(size > 0 && size <= 1024 * MiB)) throw new Error('BENCH_SCAN_SIZE must be more than 0 and at most 1GiB (clamd limits)');
  if (!(Number.isInteger(runs) && runs >= 1)) throw new Error(`BENCH_RUNS must be a whole number >= 1, got "${process.env.BENCH_RUNS}"`);
  const root = await mkdtemp(join(tmpdir(), 'hfs-scan-bench-'));
  let clamd: Clamd | undefined;
  const servers: SpawnedServer[] = [];
  try {
    const payload = join(root, 'payload.bin');
    await writePayload(payload, size);
    clamd = await startClamd({
      signatures: [{ data: Buffer.from('hmac-file-server bench signature'), name: 'Hfs.Bench' }],
      // Above clamd's defaults (25M stream, 100M file, 400M scan) it would stop scanning early and look fast.
      streamMaxLength: '1024M',
      extraConfig: ['MaxFileSize 1024M', 'MaxScanSize 1024M'],
    });
    const scanner = new ClamdScanner({ address: { path: clamd.socket }, timeoutMs: 600_000 });
    const never = new AbortController().signal;

    // 1. The scanner alone, and sha256 for scale.
    const scanSecs: number[] = [];
    const hashSecs: number[] = [];
    await scanner.scan(() => createReadStream(payload), never); // warm-up: clamd's first scan after start is several times slower
    for (let run = 0; run < runs; run++) {
      scanSecs.push(
        await timed(async () => {
          const verdict = await scanner.scan(() => createReadStream(payload), never);
          if (verdict.kind !== 'clean') throw new Error(`scan answered ${JSON.stringify(verdict)}`);
        }),
      );
      hashSecs.push(await timed(() => sha256File(payload, {})));
    }

    // 2. Upload to published, scan off vs on.
    const off = await startServer({ config: '' });
    servers.push(off);
    const on = await startServer({ config: `[scan]\nenabled = true\nclamd = "${clamd.socket}"\nmax_size = "1GiB"\ntimeout = "10m"\n[workers]\nqueue_timeout = "20m"\n` });
    servers.push(on);
    for (const s of servers) await uploadToPublished(s, payload, Math.min(size, 16 * MiB)); // warm-up
    const samples = { off: [] as Array<{ total: number; finalize: number }>, on: [] as Array<{ total: number; finalize: number }> };
    for (let run = 0; run < runs; run++) {
      samples.off.push(await uploadToPublished(off, payload, size));
      samples.on.push(await uploadToPublished(on, payload, size));
    }

    const mib = size / MiB;
    const rate = (secs: number[]) => (mib / median(secs)).toFixed(0);
    const cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
    console.log(`machine: ${cpuModel}, ${cpus().length} cores, Linux ${release()}, node ${process.version}; file ${mib.toFixed(0)} MiB, median of ${runs} run(s)`);
    console.log(`clamd: ${clamd.socket.includes('/') ? 'unix socket' : 'tcp'}, one-line .hdb database (the official database makes clamd slower)`);
    console.log(`1. scanner alone      clamd INSTREAM ${rate(scanSecs)} MiB/s (${scanSecs.map((s) => (mib / s).toFixed(0)).join(' / ')}); sha256 of the same file ${rate(hashSecs)} MiB/s`);
    const row = (name: string, xs: Array<{ total: number; finalize: number }>) =>
      `   ${name.padEnd(10)} ${rate(xs.map((x) => x.total)).padStart(5)} MiB/s upload to published (${xs.map((x) => (mib / x.total).toFixed(0)).join(' / ')}), finalization after the 201: ${median(xs.map((x) => x.finalize)).toFixed(2)} s`;
    console.log('2. PUT to published');
    console.log(row('scan off', samples.off));
    console.log(row('scan on', samples.on));
  } finally {
    for (const s of servers) await s.dispose();
    await clamd?.dispose();
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  }
}

try {
  await main();
} catch (err) {
  console.error(`bench failed: ${(err as Error).message.split('\n')[0]}`);
  process.exitCode = 1;
}
