/**
 * What malware scanning costs (docs/scanning.md), with a real clamd (its own one-line signature
 * database: the official one cannot be downloaded here, and it makes clamd itself slower):
 *   1. the scanner alone: INSTREAM of a file to clamd (unix socket), beside sha256 of the same
 *      file (the pipeline's hash step) for scale
 *   2. upload to published: one PUT of the file, timed until the server logs "File published",
 *      into a server with [scan] off and one with it on (both on loopback, interleaved runs)
 *   3. the same on S3 (a throw-away Ceph RadosGW on loopback, test/helpers/rgw.ts): the scanner
 *      streaming the object from the bucket, and PUT to published with scan off / on
 * Run by `npm run bench` (scripts/bench.sh), never by `npm test`.
 * Env: BENCH_SCAN_SIZE (default 256MiB; clamd's limits are raised to 1 GiB), BENCH_RUNS (default 2),
 *      BENCH_SCAN_S3_SIZE (default 128MiB: RadosGW's memstore OSD keeps every object in RAM; 0 skips part 3).
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
import { createS3Client, objectSource } from '../../src/storage/s3.js';
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startClamd, type Clamd } from '../helpers/clamd.js';
import { startRadosGw, type RadosGw } from '../helpers/rgw.js';
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

/**
 * Seconds from the first byte sent until the server logged "File published" for this upload; and
 * the part after the 201. `unpublish` removes the published file afterwards (default: below the data dir).
 */
async function uploadToPublished(server: SpawnedServer, file: string, size: number, unpublish?: (path: string) => Promise<void>): Promise<{ total: number; finalize: number }> {
  const path = `${randomBytes(8).toString('hex')}/bench.bin`;
  const slot = signSlotUrl({ secret: TEST_SECRET, path, size, baseUrl: server.uploadUrl });
  const t0 = performance.now();
  const res = await put(slot.url, file, size);
  const answered = performance.now();
  if (res.status !== 201) throw new Error(`PUT answered ${res.status}`);
  const jobId = `put-${res.requestId}`;
  await server.waitForLog((l) => l.jobId === jobId && l.msg === 'File published', 600_000);
  const done = performance.now();
  if (unpublish) await unpublish(path);
  else await rm(join(server.dataDir, 'files', path.split('/')[0]!), { recursive: true, force: true });
  return { total: (done - t0) / 1000, finalize: (done - answered) / 1000 };
}

async function main(): Promise<void> {
  const size = parseSize(process.env.BENCH_SCAN_SIZE ?? '256MiB');
  const runs = Number(process.env.BENCH_RUNS ?? '2');
  if (!(size > 0 && size <= 1024 * MiB)) throw new Error('BENCH_SCAN_SIZE must be more than 0 and at most 1GiB (clamd limits)');
  if (!(Number.isInteger(runs) && runs >= 1)) throw new Error(`BENCH_RUNS must be a whole number >= 1, got "${process.env.BENCH_RUNS}"`);
  const root = await mkdtemp(join(tmpdir(), 'hfs-scan-bench-'));
  let clamd: Clamd | undefined;
  let rgw: RadosGw | undefined;
  let client: S3Client | undefined;
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

    // 3. On S3: the scanner reading the object, and PUT to published (the scan streams from the bucket).
    const s3Size = parseSize(process.env.BENCH_SCAN_S3_SIZE ?? '128MiB');
    if (s3Size > 0) {
      const s3mib = s3Size / MiB;
      rgw = await startRadosGw({ memstoreBytes: Math.max(1024 * MiB, 8 * s3Size) });
      const settings = { region: rgw.region, endpoint: rgw.endpoint, forcePathStyle: true, accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey, keyPrefix: '', partBytes: 8 * MiB };
      client = createS3Client({ ...settings, bucket: 'hfs-scan-bench' });
      const s3 = client;
      await s3.send(new CreateBucketCommand({ Bucket: 'hfs-scan-bench' }));
      await s3.send(new PutObjectCommand({ Bucket: 'hfs-scan-bench', Key: 'payload.bin', Body: createReadStream(payload, { end: s3Size - 1 }), ContentLength: s3Size }));
      const object = objectSource(s3, 'hfs-scan-bench', 'payload.bin', s3Size);
      const s3ScanSecs: number[] = [];
      const fileScanSecs: number[] = [];
      for (let run = 0; run < runs; run++) {
        s3ScanSecs.push(await timed(() => scanner.scan(() => object.open(), never)));
        fileScanSecs.push(await timed(() => scanner.scan(() => createReadStream(payload, { end: s3Size - 1 }), never)));
      }
      const s3Config = (bucket: string) =>
        `[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "${bucket}"\nendpoint = "${settings.endpoint}"\nforce_path_style = true\naccess_key_id = "${settings.accessKeyId}"\nsecret_access_key = "${settings.secretAccessKey}"\nkey_prefix = "hfs/"\npart_size = "8MiB"\n`;
      for (const bucket of ['hfs-scan-off', 'hfs-scan-on']) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const offS3 = await startServer({ config: s3Config('hfs-scan-off') });
      servers.push(offS3);
      const onS3 = await startServer({ config: `${s3Config('hfs-scan-on')}[scan]\nenabled = true\nclamd = "${clamd.socket}"\nmax_size = "1GiB"\ntimeout = "10m"\n[workers]\nqueue_timeout = "20m"\n` });
      servers.push(onS3);
      const unpublish = (bucket: string) => async (path: string) => {
        for (const area of ['files/', 'claims/']) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `hfs/${area}${path}` }));
      };
      for (const [srv, bucket] of [[offS3, 'hfs-scan-off'], [onS3, 'hfs-scan-on']] as const) await uploadToPublished(srv, payload, Math.min(s3Size, 16 * MiB), unpublish(bucket)); // warm-up
      const s3Samples = { off: [] as Array<{ total: number; finalize: number }>, on: [] as Array<{ total: number; finalize: number }> };
      for (let run = 0; run < runs; run++) {
        s3Samples.off.push(await uploadToPublished(offS3, payload, s3Size, unpublish('hfs-scan-off')));
        s3Samples.on.push(await uploadToPublished(onS3, payload, s3Size, unpublish('hfs-scan-on')));
      }
      const s3rate = (secs: number[]) => (s3mib / median(secs)).toFixed(0);
      const s3row = (name: string, xs: Array<{ total: number; finalize: number }>) =>
        `   ${name.padEnd(10)} ${s3rate(xs.map((x) => x.total)).padStart(5)} MiB/s upload to published (${xs.map((x) => (s3mib / x.total).toFixed(0)).join(' / ')}), finalization after the 201: ${median(xs.map((x) => x.finalize)).toFixed(2)} s`;
      console.log(`3. on S3 (RadosGW on loopback, memstore OSD), ${s3mib.toFixed(0)} MiB`);
      console.log(`   scanner alone: clamd INSTREAM from the S3 object ${s3rate(s3ScanSecs)} MiB/s, from a local file ${s3rate(fileScanSecs)} MiB/s`);
      console.log(s3row('scan off', s3Samples.off));
      console.log(s3row('scan on', s3Samples.on));
    }
  } finally {
    for (const s of servers) await s.dispose();
    client?.destroy();
    await rgw?.stop();
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
