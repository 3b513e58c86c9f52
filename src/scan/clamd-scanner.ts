/**
 * Scanner over clamd's socket with the INSTREAM command (clamd(8)): "zINSTREAM\0", then chunks
 * each preceded by its length as a 4-byte big-endian integer, then a zero-length chunk; clamd
 * answers one NUL-terminated line (clamd-reply.ts) and closes. One connection per scan.
 *
 * Written here rather than taken from npm: `clamscan` (2.4) writes the source into the socket
 * without backpressure (a large file fills memory when clamd reads slower than the disk), has no
 * cancellation, and reports connection failures, timeouts and error answers alike; `clamdjs`
 * (1.0.2) is TCP only and its scanStream ignores the stream it is given. The protocol is small
 * and documented; this keeps backpressure, an AbortSignal and typed failures.
 */
import { createConnection, type Socket } from 'node:net';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { describeClamdAddress, type ClamdAddress } from '../config/index.js';
import { parseClamdReply } from './clamd-reply.js';
import type { OpenSource, ScanVerdict, Scanner } from './types.js';

export interface ClamdScannerOptions {
  readonly address: ClamdAddress;
  /** The whole scan: connect, stream, verdict (scan.timeout). */
  readonly timeoutMs: number;
  /** Largest chunk sent at once; clamd reads any size up to StreamMaxLength. Default 64 KiB. */
  readonly chunkBytes?: number;
}

const COMMAND = Buffer.from('zINSTREAM\0', 'latin1');
const TERMINATOR = Buffer.alloc(4);
/** clamd's answers are one short line; anything longer is not read further. */
const MAX_REPLY_BYTES = 4096;

interface Reply {
  readonly text: string;
  readonly connected: boolean;
  readonly error: NodeJS.ErrnoException | null;
}

export class ClamdScanner implements Scanner {
  readonly #o: ClamdScannerOptions;
  readonly #chunkBytes: number;

  constructor(options: ClamdScannerOptions) {
    this.#o = options;
    this.#chunkBytes = options.chunkBytes ?? 64 * 1024;
  }

  /** "unix:/run/clamav/clamd.ctl" or "host:port", for logs. */
  get address(): string {
    return describeClamdAddress(this.#o.address);
  }

  async scan(open: OpenSource, signal: AbortSignal): Promise<ScanVerdict> {
    signal.throwIfAborted();
    const deadline = AbortSignal.timeout(this.#o.timeoutMs);
    const stop = AbortSignal.any([signal, deadline]);
    const socket = createConnection(this.#o.address);
    const reply = collectReply(socket);
    let source: Readable | null = null;
    const abort = () => {
      source?.destroy();
      socket.destroy();
    };
    stop.addEventListener('abort', abort, { once: true });
    try {
      let sourceError: Error | null = null;
      let sent = 0;
      try {
        await once(socket, 'connect', { signal: stop });
        source = open();
        ({ sourceError, sent } = await this.#send(socket, source, stop));
      } catch {
        // Connection refused, lost while sending, or aborted: told apart below.
      }
      if (signal.aborted) throw signal.reason;
      if (sourceError !== null && !deadline.aborted) return { kind: 'source_failed', error: sourceError };
      const answer = await reply; // settles on 'close': clamd closes after answering, or abort() destroyed it
      if (signal.aborted) throw signal.reason;
      if (deadline.aborted && answer.text === '') return { kind: 'failed', failure: 'timeout', message: `clamd gave no verdict within ${this.#o.timeoutMs} ms` };
      if (answer.text !== '') return parseClamdReply(answer.text);
      const cause = answer.error?.code ?? answer.error?.message ?? 'closed';
      if (!answer.connected) return { kind: 'failed', failure: 'unavailable', message: `cannot connect to clamd at ${this.address} (${cause})` };
      if (sent > 0) return this.#lostMidStream(cause, signal);
      return { kind: 'failed', failure: 'unavailable', message: `clamd at ${this.address} closed the connection without a verdict (${cause})` };
    } finally {
      stop.removeEventListener('abort', abort);
      source?.destroy();
      socket.destroy();
    }
  }

  /**
   * Writes the command, the framed source and the terminator, waiting for 'drain' whenever the
   * socket buffers (clamd reads slower than the source). Resolves the source's error, if any.
   * Stops early, without throwing, once clamd answers or closes the connection (it answers
   * before the end on errors, e.g. "size limit exceeded"). Resolves how many bytes were sent.
   */
  async #send(socket: Socket, source: Readable, stop: AbortSignal): Promise<{ sourceError: Error | null; sent: number }> {
    const closed = new AbortController();
    socket.once('close', () => closed.abort());
    const halt = AbortSignal.any([stop, closed.signal]);
    let answered = false;
    socket.once('data', () => (answered = true));
    const ended = new Error('connection ended');
    const write = async (data: Buffer) => {
      if (halt.aborted || socket.destroyed || answered) throw ended;
      if (!socket.write(data)) await once(socket, 'drain', { signal: halt });
    };
    let sent = 0;
    try {
      await write(COMMAND);
      for await (const data of source as AsyncIterable<Buffer>) {
        for (let at = 0; at < data.length; at += this.#chunkBytes) {
          const part = data.subarray(at, at + this.#chunkBytes);
          const header = Buffer.allocUnsafe(4);
          header.writeUInt32BE(part.length, 0);
          await write(header);
          await write(part);
          sent += part.length;
          // Let the event loop read between chunks: after an early answer clamd closes, and a
          // write into the closed socket makes Node drop the unread answer with the socket.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
      await write(TERMINATOR);
    } catch (err) {
      if (err === ended || halt.aborted || socket.destroyed) return { sourceError: null, sent }; // its reply (or close) says why
      return { sourceError: err as Error, sent };
    }
    return { sourceError: null, sent };
  }

  /**
   * The connection ended mid-stream without an answer: a live clamd did that on purpose (almost
   * always StreamMaxLength; its answer can be lost when Node drops the socket on EPIPE), a dead
   * one did not. PING tells them apart.
   */
  async #lostMidStream(cause: string, signal: AbortSignal): Promise<ScanVerdict> {
    if (await this.ping(AbortSignal.any([signal, AbortSignal.timeout(2_000)]))) {
      return { kind: 'failed', failure: 'error', message: `clamd at ${this.address} closed the connection while reading the stream (${cause}); is its StreamMaxLength below scan.max_size?` };
    }
    return { kind: 'failed', failure: 'unavailable', message: `clamd at ${this.address} closed the connection without a verdict (${cause})` };
  }

  /** True when clamd answers PONG to zPING. Never rejects. */
  async ping(signal: AbortSignal = AbortSignal.timeout(2_000)): Promise<boolean> {
    const socket = createConnection(this.#o.address);
    const reply = collectReply(socket);
    const abort = () => socket.destroy();
    signal.addEventListener('abort', abort, { once: true });
    try {
      await once(socket, 'connect', { signal });
      socket.write('zPING\0');
      return (await reply).text.replace(/\0$/, '') === 'PONG';
    } catch {
      return false;
    } finally {
      signal.removeEventListener('abort', abort);
      socket.destroy();
    }
  }
}

/** Everything clamd says until the connection closes (bounded), and how it ended. */
function collectReply(socket: Socket): Promise<Reply> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  let connected = false;
  let error: NodeJS.ErrnoException | null = null;
  socket.once('connect', () => (connected = true));
  socket.on('data', (chunk: Buffer) => {
    if (bytes >= MAX_REPLY_BYTES) return;
    chunks.push(chunk);
    bytes += chunk.length;
  });
  socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err));
  return new Promise((resolve) => {
    socket.once('close', () => resolve({ text: Buffer.concat(chunks).toString('utf8'), connected, error }));
  });
}
