/**
 * Benchmark baseline: the least a Node server can do with an upload, the request body piped
 * into a file. `PUT /<name>` writes <dataDir>/<name> and answers 201 once the file is written.
 * Usage: node pipe-sink-server.js <dataDir> [--durable [--hash-worker=post|ring|transfer] | --fsync-only].
 * Prints one JSON line {"msg":"Server listening","address":…}.
 *
 * --durable adds only what issue 14's rules make every upload pay: sha256 of the bytes as they
 * pass, and an fsync of the file before the 201. It is the floor of any server that hashes while
 * receiving and acknowledges only durable bytes (upload.bench path (f)). The 201 carries the
 * digest in `x-sha256` (and the byte count it covers in `x-sha256-bytes`), so the bench checks it.
 *
 * Experiment (issue 14 item 1: can a durable server reach 0.9x of the sink if the hash leaves the
 * event loop?), with --durable:
 *   --hash-worker=post      chunks copied into 1 MiB batches, each batch transferred to a worker
 *                           thread that hashes it (at most 16 MiB in flight; upload.bench path (g))
 *   --hash-worker=ring      chunks copied into a 4 MiB SharedArrayBuffer ring the worker hashes
 *                           from, Atomics for coordination (path (h))
 *   --hash-worker=transfer  no copy: once a chunk is written to the file, its ArrayBuffer is
 *                           transferred to the worker, ~1 MiB of chunks per message (copied only
 *                           when the chunk does not own its whole ArrayBuffer;
 *                           `x-hash-parts: transferred/copied`) (path (i))
 * --fsync-only: the fsync before the 201 without any hash (path (n)): what durability alone costs,
 * the ceiling of every hashing variant above.
 * --body-file (with --durable or --fsync-only): the file is written the way this server writes a
 * body (src/transfer/body-file.ts: 256 KiB buffer, an fdatasync started every 16 MiB and not
 * waited for), so the final fsync has only the tail left (paths (m), (k), (v), (w)).
 */
import { createHash } from 'node:crypto';
import { close, createWriteStream, fdatasync, fsync, open, write, writev } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import { BODY_FILE_BUFFER, createBodyFile, WRITEBACK_BYTES } from '../../src/transfer/body-file.js';
import { CONSUMED, ENDED, SEQ, SLEEPING, WRITTEN } from './hash-worker.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: pipe-sink-server <dataDir> [--durable [--hash-worker=post|ring|transfer] | --fsync-only]');
const fsyncOnly = process.argv.includes('--fsync-only');
const durable = process.argv.includes('--durable') || fsyncOnly;
const bodyFile = process.argv.includes('--body-file');
if (bodyFile && !durable) throw new Error('--body-file goes with --durable or --fsync-only');
const hashWorker = /^--hash-worker=(post|ring|transfer)$/.exec(process.argv.find((a) => a.startsWith('--hash-worker')) ?? '')?.[1] as
  | 'post'
  | 'ring'
  | 'transfer'
  | undefined;
if (process.argv.some((a) => a.startsWith('--hash-worker')) && (!hashWorker || !durable || fsyncOnly)) {
  throw new Error('--hash-worker=post|ring|transfer goes with --durable');
}

const MiB = 2 ** 20;
const BATCH = MiB;
const MAX_IN_FLIGHT = 16 * MiB;
const RING = 4 * MiB;

function fsyncPath(path: string): Promise<void> {
  return new Promise((resolve, reject) =>
    open(path, 'r', (err, fd) => (err ? reject(err) : fsync(fd, (syncErr) => close(fd, () => (syncErr ? reject(syncErr) : resolve()))))),
  );
}

interface Digest {
  hex: string;
  bytes: number;
}

/** The worker thread and the uploads it hashes (by id). */
const worker = hashWorker ? new Worker(new URL('./hash-worker.js', import.meta.url)) : undefined;
const jobs = new Map<number, { onAck(len: number): void; onDigest(d: Digest): void }>();
let nextId = 1;
worker?.on('message', (m: { op: 'ack'; id: number; len: number } | ({ op: 'digest'; id: number } & Digest)) => {
  const job = jobs.get(m.id);
  if (!job) return;
  if (m.op === 'ack') job.onAck(m.len);
  else {
    jobs.delete(m.id);
    job.onDigest(m);
  }
});
worker?.on('error', (err) => {
  console.error(`hash worker failed: ${err.message}`);
  process.exit(1);
});

/** One upload's digest on the worker, fed by postMessage (batched copies, or transferred chunks). */
class PostedDigest {
  readonly id = nextId++;
  inFlight = 0;
  /** Times the body waited for the worker (MAX_IN_FLIGHT reached). */
  waits = 0;
  transferred = 0;
  copied = 0;
  #waiting: (() => void) | undefined;
  #batch: Buffer | undefined;
  #used = 0;
  readonly digest: Promise<Digest>;

  constructor() {
    let onDigest!: (d: Digest) => void;
    this.digest = new Promise((resolve) => (onDigest = resolve));
    jobs.set(this.id, {
      onAck: (len) => {
        this.inFlight -= len;
        if (this.#waiting && this.inFlight <= MAX_IN_FLIGHT) {
          const go = this.#waiting;
          this.#waiting = undefined;
          go();
        }
      },
      onDigest,
    });
    worker!.postMessage({ op: 'start', id: this.id });
  }

  /** Calls `go` now, or once the worker has caught up to MAX_IN_FLIGHT. */
  paced(go: () => void): void {
    if (this.inFlight <= MAX_IN_FLIGHT) go();
    else {
      this.waits++;
      this.#waiting = go;
    }
  }

  /** (post) Copies `chunk` into the current batch; a full batch goes to the worker. */
  copy(chunk: Buffer): void {
    for (let off = 0; off < chunk.length; ) {
      this.#batch ??= Buffer.allocUnsafeSlow(BATCH);
      const n = chunk.copy(this.#batch, this.#used, off);
      off += n;
      this.#used += n;
      if (this.#used === BATCH) this.flushBatch();
    }
  }

  flushBatch(): void {
    if (!this.#batch || this.#used === 0) return;
    const b = this.#batch;
    this.#post([{ ab: b.buffer as ArrayBuffer, off: b.byteOffset, len: this.#used }]);
    this.#batch = undefined;
    this.#used = 0;
  }

  #handed: Array<{ ab: ArrayBuffer; off: number; len: number }> = [];
  #handedBytes = 0;

  /**
   * (transfer) Hands written chunks to the worker: their ArrayBuffers when whole, else a copy;
   * posted once BATCH bytes are gathered (one postMessage per 64 KiB chunk cost ~0.5 CPU-s/GiB
   * on the event loop: the first profile), and by end().
   */
  hand(chunks: Buffer[]): void {
    const parts = chunks.map((c) => {
      if (c.byteOffset === 0 && c.byteLength === c.buffer.byteLength) {
        this.transferred++;
        return { ab: c.buffer as ArrayBuffer, off: 0, len: c.byteLength };
      }
      this.copied++;
      const copy = Buffer.allocUnsafeSlow(c.length);
      c.copy(copy);
      return { ab: copy.buffer as ArrayBuffer, off: 0, len: c.length };
    });
    this.#handed.push(...parts);
    for (const p of parts) this.#handedBytes += p.len;
    if (this.#handedBytes >= BATCH) this.#postHanded();
  }

  #postHanded(): void {
    if (this.#handed.length === 0) return;
    this.#post(this.#handed);
    this.#handed = [];
    this.#handedBytes = 0;
  }

  #post(parts: Array<{ ab: ArrayBuffer; off: number; len: number }>): void {
    for (const p of parts) this.inFlight += p.len;
    worker!.postMessage({ op: 'data', id: this.id, parts }, [...new Set(parts.map((p) => p.ab))]);
  }

  end(): Promise<Digest> {
    this.#postHanded();
    worker!.postMessage({ op: 'end', id: this.id });
    return this.digest;
  }
}

/** Atomics.waitAsync (V8 has it; the ES2023 lib this project compiles against does not declare it). */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string } }).waitAsync;

/** (ring) One upload's digest on the worker, fed through a SharedArrayBuffer ring. */
class RingDigest {
  readonly id = nextId++;
  // A Buffer over the SharedArrayBuffer: Buffer.copy is a memcpy, Uint8Array.set into shared
  // memory an element-wise copy (0.17 against 0.06 CPU-s/GiB, /tmp microbenchmark).
  readonly #ring = Buffer.from(new SharedArrayBuffer(RING));
  readonly #ctl = new Int32Array(new SharedArrayBuffer(5 * 4));
  #written = 0;
  /** Times the body waited for the worker (ring full). */
  waits = 0;
  readonly #digest: Promise<Digest>;

  constructor() {
    let onDigest!: (d: Digest) => void;
    this.#digest = new Promise((resolve) => (onDigest = resolve));
    jobs.set(this.id, { onAck: () => {}, onDigest });
    worker!.postMessage({ op: 'ring', id: this.id, sab: this.#ring.buffer, ctl: this.#ctl.buffer });
  }

  /** Copies all of `chunk` into the ring, waiting (off the thread: waitAsync) while it is full; then `done`. */
  put(chunk: Buffer, off: number, done: () => void): void {
    const ctl = this.#ctl;
    for (;;) {
      const consumed = Atomics.load(ctl, CONSUMED);
      const free = RING - ((this.#written - consumed) | 0);
      if (free === 0) {
        const w = waitAsync(ctl, CONSUMED, consumed);
        if (w.async) {
          this.waits++;
          void (w.value as Promise<string>).then(() => this.put(chunk, off, done));
          return;
        }
        continue;
      }
      const n = Math.min(free, chunk.length - off);
      const at = this.#written & (RING - 1);
      const first = Math.min(n, RING - at);
      chunk.copy(this.#ring, at, off, off + first);
      if (first < n) chunk.copy(this.#ring, 0, off + first, off + n);
      this.#written = (this.#written + n) | 0;
      off += n;
      Atomics.store(ctl, WRITTEN, this.#written);
      Atomics.add(ctl, SEQ, 1);
      // A worker that set SLEEPING after this SEQ bump sees SEQ changed and does not sleep.
      if (Atomics.load(ctl, SLEEPING) === 1) Atomics.notify(ctl, SEQ);
      if (off === chunk.length) return done();
    }
  }

  end(): Promise<Digest> {
    Atomics.store(this.#ctl, ENDED, 1);
    Atomics.add(this.#ctl, SEQ, 1);
    Atomics.notify(this.#ctl, SEQ);
    return this.#digest;
  }
}

/**
 * (transfer) A file sink like fs.WriteStream (same 16 KiB highWaterMark, writev of what queued
 * meanwhile; with --body-file like BodyFileStream: 256 KiB, early fdatasyncs) that hands each
 * chunk to the worker once its write completed.
 */
class HandingFileSink extends Writable {
  #sinceSync = 0;
  #syncing = false;

  constructor(
    private readonly fd: number,
    private readonly hashed: PostedDigest,
  ) {
    super({ highWaterMark: bodyFile ? BODY_FILE_BUFFER : 16 * 1024 });
  }

  #earlySync(bytes: number): void {
    if (!bodyFile) return;
    this.#sinceSync += bytes;
    if (this.#sinceSync < WRITEBACK_BYTES || this.#syncing) return;
    this.#sinceSync = 0;
    this.#syncing = true;
    fdatasync(this.fd, () => (this.#syncing = false));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#writeAll([chunk], cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.#writeAll(
      chunks.map((c) => c.chunk),
      cb,
    );
  }

  #writeAll(bufs: Buffer[], cb: (err?: Error | null) => void): void {
    const total = bufs.reduce((n, b) => n + b.length, 0);
    const done = (err: NodeJS.ErrnoException | null, written: number) => {
      if (err) return cb(err);
      if (written !== total) return cb(new Error(`short write: ${written} of ${total} bytes`));
      this.#earlySync(total);
      this.hashed.paced(() => {
        this.hashed.hand(bufs);
        cb();
      });
    };
    if (bufs.length === 1) write(this.fd, bufs[0]!, 0, total, null, done);
    else writev(this.fd, bufs, done);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    close(this.fd, (closeErr) => cb(err ?? closeErr));
  }
}

function openFile(path: string): Promise<number> {
  return new Promise((resolve, reject) => open(path, 'wx', (err, fd) => (err ? reject(err) : resolve(fd))));
}

/**
 * After the body's last byte was written: the digest and the fsync, timed
 * (`x-tail: <waits for the worker> waits, hash +<ms>, fsync <ms>`: where the wall time after the
 * last write goes, and how often the worker held the body back).
 */
async function tail(digest: Promise<Digest> | Digest, path: string, waits: number): Promise<{ digest: Digest; tail: string }> {
  const t0 = performance.now();
  let hashMs = 0;
  let fsyncMs = 0;
  const [d] = await Promise.all([
    Promise.resolve(digest).then((d) => ((hashMs = performance.now() - t0), d)),
    fsyncPath(path).then(() => (fsyncMs = performance.now() - t0)),
  ]);
  return { digest: d, tail: `${waits} waits, hash +${hashMs.toFixed(0)} ms, fsync ${fsyncMs.toFixed(0)} ms` };
}

/** Receives the body into `path`; resolves the digest (durable modes) once the file is fsynced. */
async function receive(req: NodeJS.ReadableStream, path: string): Promise<{ digest?: Digest; parts?: string; tail?: string }> {
  if (hashWorker === 'transfer') {
    const hashed = new PostedDigest();
    const sink = new HandingFileSink(await openFile(path), hashed);
    await pipeline(req, sink);
    return { ...(await tail(hashed.end(), path, hashed.waits)), parts: `${hashed.transferred}/${hashed.copied}` };
  }
  const file = bodyFile ? createBodyFile(path, { flags: 'wx' }) : createWriteStream(path, { flags: 'wx' });
  if (!durable) {
    await pipeline(req, file);
    return {};
  }
  if (fsyncOnly) {
    await pipeline(req, file);
    const t0 = performance.now();
    await fsyncPath(path);
    return { tail: `fsync ${(performance.now() - t0).toFixed(0)} ms` };
  }
  if (hashWorker === 'post') {
    const hashed = new PostedDigest();
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hashed.copy(chunk);
        hashed.paced(() => done(null, chunk));
      },
      flush(done) {
        hashed.flushBatch();
        done();
      },
    });
    await pipeline(req, tap, file);
    return tail(hashed.end(), path, hashed.waits);
  }
  if (hashWorker === 'ring') {
    const hashed = new RingDigest();
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hashed.put(chunk, 0, () => done(null, chunk));
      },
    });
    await pipeline(req, tap, file);
    return tail(hashed.end(), path, hashed.waits);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  await pipeline(req, tap, file);
  return tail({ hex: hash.digest('hex'), bytes }, path, 0);
}

const server = createServer({ requestTimeout: 0 }, (req, res) => {
  const name = /^\/([\w.-]+)$/.exec(req.url ?? '')?.[1];
  if (req.method !== 'PUT' || !name || name.startsWith('.')) {
    req.resume();
    res.writeHead(400).end();
    return;
  }
  receive(req, join(dir, name)).then(
    ({ digest, parts, tail }) =>
      res
        .writeHead(201, {
          ...(digest && { 'x-sha256': digest.hex, 'x-sha256-bytes': String(digest.bytes) }),
          ...(parts && { 'x-hash-parts': parts }),
          ...(tail && { 'x-tail': tail }),
        })
        .end(),
    (err: Error) => res.writeHead(500).end(err.message),
  );
});
// Exit on the bench's SIGTERM through process.exit, so BENCH_CPU_PROF's --cpu-prof writes its profile.
process.once('SIGTERM', () => process.exit(0));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ msg: 'Server listening', address: `http://127.0.0.1:${port}` }));
});
