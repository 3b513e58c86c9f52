/**
 * A raw-socket client for IETF Resumable Uploads, written from the draft text and behaving as
 * URLSession does: it sends the request head and body at once, records every interim (1xx)
 * response, and can cut the connection after N body bytes once it saw the 104, either closed
 * (FIN) or left half-open (no FIN, nothing more sent: a phone that lost its network).
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { withTimeout } from './service.js';

export interface RawHead {
  status: number;
  headers: Record<string, string>;
}

export interface RufhExchange {
  interim: RawHead[];
  /** The final response; null when the connection ended without one. */
  final: (RawHead & { body: string }) | null;
  /** The socket when the request was left half-open (the caller destroys it). */
  socket?: Socket;
}

export interface RufhRequestOptions {
  method: string;
  /** Path and query. */
  target: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Cut after this many body bytes, once a 104 arrived (or at once, when `waitFor104` is false). */
  cutAfter?: number;
  cut?: 'close' | 'half-open';
  waitFor104?: boolean;
  timeoutMs?: number;
  /** For an https:// base URL: the CA (e.g. the self-signed certificate) to verify the server with. */
  ca?: Buffer;
}

/** Parses interim and final responses off a byte stream. */
class ResponseReader {
  private buf = Buffer.alloc(0);
  readonly interim: RawHead[] = [];
  final: (RawHead & { body: string }) | null = null;
  private pendingFinal: { head: RawHead; length: number } | null = null;
  onInterim: ((h: RawHead) => void) | undefined;
  onFinal: (() => void) | undefined;

  constructor(private readonly method: string) {}

  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.pendingFinal) {
        if (this.buf.length < this.pendingFinal.length) return;
        this.final = { ...this.pendingFinal.head, body: this.buf.subarray(0, this.pendingFinal.length).toString('utf8') };
        this.pendingFinal = null;
        this.onFinal?.();
        return;
      }
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
      this.buf = this.buf.subarray(end + 4);
      const status = Number(lines[0]!.split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      if (status < 200) {
        this.interim.push({ status, headers });
        this.onInterim?.({ status, headers });
        continue;
      }
      const length = this.method === 'HEAD' || status === 204 || status === 304 ? 0 : Number(headers['content-length'] ?? 0);
      this.pendingFinal = { head: { status, headers }, length };
    }
  }
}

export function rufhRequest(baseUrl: string, options: RufhRequestOptions): Promise<RufhExchange> {
  const url = new URL(baseUrl);
  const body = options.body ?? Buffer.alloc(0);
  const socket = url.protocol === 'https:' ? tlsConnect({ host: url.hostname, port: Number(url.port), ...(options.ca && { ca: options.ca }) }) : connect(Number(url.port), url.hostname);
  const reader = new ResponseReader(options.method);
  const head = [`${options.method} ${options.target} HTTP/1.1`, `Host: ${url.host}`, ...Object.entries(options.headers).map(([k, v]) => `${k}: ${v}`)];
  if (!Object.keys(options.headers).some((k) => k.toLowerCase() === 'content-length') && options.method !== 'HEAD' && options.method !== 'OPTIONS') head.push(`Content-Length: ${body.length}`);
  const done = new Promise<RufhExchange>((resolve, reject) => {
    socket.on('data', (c: Buffer) => reader.push(c));
    socket.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? undefined : reject(err)));
    socket.once('close', () => resolve({ interim: reader.interim, final: reader.final }));
    reader.onFinal = () => {
      socket.end();
      resolve({ interim: reader.interim, final: reader.final });
    };
  });
  socket.write(`${head.join('\r\n')}\r\n\r\n`);
  if (options.cutAfter === undefined) {
    socket.write(body);
    return withTimeout(done, options.timeoutMs ?? 30_000, `${options.method} got no answer`);
  }
  const first = body.subarray(0, Math.min(options.cutAfter, 64 * 1024));
  socket.write(first);
  const saw104 =
    options.waitFor104 === false
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          if (reader.interim.some((h) => h.status === 104)) return resolve();
          reader.onInterim = (h) => h.status === 104 && resolve();
          socket.once('close', () => reject(new Error('closed before a 104')));
        });
  return withTimeout(
    saw104.then(async () => {
      socket.write(body.subarray(first.length, options.cutAfter));
      await new Promise<void>((r) => socket.write('', () => r()));
      if (options.cut === 'half-open') return { interim: reader.interim, final: null, socket };
      socket.destroy();
      return { interim: reader.interim, final: null };
    }),
    options.timeoutMs ?? 30_000,
    'no 104 before the cut',
  );
}
