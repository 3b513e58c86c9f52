/**
 * HTTP/1.1 over a bare socket, for requests no HTTP client will send: absolute-form targets,
 * invalid percent-encoding, broken framing. One request per connection (`Connection: close` is
 * the caller's), the whole answer read until the server closes.
 */
import { connect } from 'node:net';
import { withTimeout } from './service.js';

export interface RawExchange {
  /** Status of the final response (1xx interim answers skipped); 0 when the server closed without answering. */
  status: number;
  headers: Record<string, string>;
  /** Bytes after the header block (dechunked when chunked). */
  body: Buffer;
}

export async function sendRaw(host: string, port: number, request: Buffer, timeoutMs = 20_000): Promise<RawExchange> {
  const received = await withTimeout(
    new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      // Written, not ended: Node's server drops a request whose client half-closes before the answer.
      const socket = connect({ host, port }, () => socket.write(request));
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('error', () => {}); // a reset after the answer is the server closing: what arrived counts
      socket.once('close', () => resolve(Buffer.concat(chunks)));
    }),
    timeoutMs,
    `no complete answer to ${JSON.stringify(request.subarray(0, 120).toString('latin1'))}`,
  );
  return parseResponse(received);
}

export function parseResponse(raw: Buffer): RawExchange {
  let rest = raw;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) return { status: 0, headers: {}, body: rest };
    const [statusLine = '', ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
    rest = rest.subarray(end + 4);
    if (status >= 100 && status < 200) continue; // 100 Continue and friends
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    return { status, headers, body: headers['transfer-encoding'] === 'chunked' ? dechunk(rest) : rest };
  }
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(out);
}
