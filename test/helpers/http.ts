/** Raw HTTP for tests: keeps the path exactly as given (fetch would normalise "..") and exposes the socket. */
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type ClientRequest } from 'node:http';
import { Readable } from 'node:stream';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export interface RawRequestOptions {
  method?: string;
  headers?: Record<string, string | number>;
  body?: Buffer | string | Readable;
  /** Called once the request is created, e.g. to destroy its socket mid-body. */
  onRequest?: (req: ClientRequest) => void;
}

export function rawRequest(baseUrl: string, path: string, options: RawRequestOptions = {}): Promise<RawResponse> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    options.onRequest?.(req);
    const { body } = options;
    if (body instanceof Readable) body.pipe(req);
    else req.end(body);
  });
}

/** Path (with query) of an absolute URL, for rawRequest. */
export const pathOf = (url: string) => {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
};

export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Deterministic-size random content. */
export const randomData = (size: number) => randomBytes(size);

/** A random slot directory, like Prosody's uuid. */
export const slotDir = () => randomBytes(8).toString('hex');
