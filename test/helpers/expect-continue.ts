/**
 * A request with `Expect: 100-continue`, for tests that must know whether the server read any
 * body byte: the body is sent only once the server says 100 Continue, and `beforeBody` runs
 * just before (a storage test fills the disk there). A final answer without a 100 means the
 * server decided before the body: `continued` is false and not a byte was sent.
 */
import { request as httpRequest } from 'node:http';
import type { RawResponse } from './http.js';

export interface ContinueOptions {
  method: string;
  headers: Record<string, string | number>;
  body: Buffer;
  beforeBody?: () => Promise<void>;
}

export interface ContinueResult {
  res: RawResponse;
  /** The server sent 100 Continue (and the body was sent). */
  continued: boolean;
}

export function requestWithContinue(baseUrl: string, path: string, options: ContinueOptions): Promise<ContinueResult> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    let continued = false;
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      path,
      method: options.method,
      headers: { ...options.headers, Expect: '100-continue', 'Content-Length': options.body.length },
      agent: false,
    });
    req.on('continue', () => {
      continued = true;
      void (options.beforeBody ?? (async () => {}))().then(
        () => req.end(options.body),
        (err: unknown) => {
          req.destroy();
          reject(err);
        },
      );
    });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        if (!continued) req.destroy(); // the body was never sent: this request is over
        resolve({ continued, res: { status: res.statusCode ?? 0, headers: res.headers, body, text, json: () => JSON.parse(text) } });
      });
    });
    // A server answering mid-body may close before the client wrote everything: the answer counts.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    req.on('close', () => {
      if (!answered) reject(new Error(`${options.method} ${path}: the connection closed without an answer`));
    });
    req.flushHeaders();
  });
}
