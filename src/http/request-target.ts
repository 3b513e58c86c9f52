/**
 * The request target as the rest of the server expects it: origin-form (`/path?query`).
 *
 * Node accepts absolute-form targets (`PATCH http://host:port/files/ HTTP/1.1`), which RFC 9112
 * §3.2.2 says a server must accept, but koa and @tus/server parse them with URL parsers that
 * throw on a bad authority (`http://x:99999/…`, `http://[::1/…`): before the error middleware,
 * koa's throw left no log line and a plain-text 500 (issue 9.10). A valid absolute-form target is
 * rewritten to origin-form, its authority becoming the Host; a malformed one is a 400.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Context, Next } from 'koa';
import { AppError } from '../errors.js';

const ABSOLUTE_FORM = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)$/is;

export type ParsedTarget = { form: 'origin'; pathAndQuery: string } | { form: 'absolute'; pathAndQuery: string; authority: string };

/** Pure: classifies a raw request target; null when it cannot be served (bad authority, unknown scheme, garbage). */
export function parseRequestTarget(target: string): ParsedTarget | null {
  if (target.startsWith('/')) return { form: 'origin', pathAndQuery: target };
  if (target === '*') return { form: 'origin', pathAndQuery: target }; // OPTIONS *: answered like any unknown path
  const m = ABSOLUTE_FORM.exec(target);
  if (!m) return null;
  const [, scheme = '', authority = '', rest = ''] = m;
  if (!/^https?$/i.test(scheme) || authority === '' || authority.includes('@')) return null;
  try {
    new URL(`${scheme}://${authority}/`); // validates host and port (0-65535) the way every later parser will
  } catch {
    return null;
  }
  // The path is kept exactly as sent (URL parsing would resolve "..", hiding a traversal attempt).
  const pathAndQuery = rest === '' ? '/' : rest.startsWith('/') ? rest : rest.startsWith('?') ? `/${rest}` : null;
  return pathAndQuery === null ? null : { form: 'absolute', pathAndQuery, authority };
}

/** Pure: why the Host lines of a request are unacceptable (RFC 9112 §3.2), or null. */
export function hostProblem(rawHeaders: readonly string[]): string | null {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === 'host') values.push(rawHeaders[i + 1]!);
  if (values.length > 1) return 'More than one Host header';
  const [value] = values;
  if (value === undefined || value === '') return null; // an empty Host is allowed (no authority)
  return isHostValue(value) ? null : 'The Host header is malformed';
}

/** A host and an optional port (0-65535), as every later parser reads it: nothing that would change a URL built with it. */
export function isHostValue(value: string): boolean {
  if (/[\s@/\\?#]/.test(value)) return false;
  try {
    new URL(`http://${value}/`);
    return true;
  } catch {
    return false;
  }
}

/** The path to log for a raw target, without the query (signatures) and without throwing. */
export function logPathOf(target: string): string {
  const parsed = parseRequestTarget(target);
  const raw = parsed ? parsed.pathAndQuery : target;
  const q = raw.indexOf('?');
  return (q < 0 ? raw : raw.slice(0, q)).slice(0, 512);
}

/** koa middleware, after requestLog and errorMiddleware: rewrites absolute-form, refuses malformed targets. */
export async function requestTarget(ctx: Context, next: Next): Promise<void> {
  // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host (Node would, bare).
  if (ctx.req.httpVersion === '1.1' && ctx.req.headers.host === undefined) throw new AppError('ERR_BAD_REQUEST', { message: 'The Host header is missing' });
  // ... and to more than one Host line or an invalid value (Node keeps the first and checks nothing).
  const host = hostProblem(ctx.req.rawHeaders);
  if (host) throw new AppError('ERR_BAD_REQUEST', { message: host });
  // RFC 9110 §10.1.1: 100-continue is the only expectation; Node hands the others to us.
  const expect = ctx.req.headers.expect;
  if (expect !== undefined && !/(?:^|\W)100-continue(?:$|\W)/i.test(expect)) throw new AppError('ERR_EXPECTATION_FAILED');
  // A tunnel request (authority-form target): this server is no proxy.
  if (ctx.method === 'CONNECT') throw new AppError('ERR_METHOD_NOT_ALLOWED', { message: 'CONNECT is not supported: this server is no proxy' });
  const target = ctx.req.url ?? '';
  const parsed = parseRequestTarget(target);
  if (parsed === null) throw new AppError('ERR_BAD_REQUEST', { message: 'The request target is malformed' });
  if (parsed.form === 'absolute') {
    ctx.req.url = parsed.pathAndQuery;
    ctx.req.headers.host = parsed.authority; // RFC 9112 §3.2.2: the target's authority replaces Host
  }
  // A body on a method whose routes read none: nobody reads it, and to keep the connection Node
  // would wait for all of it, byte by byte, past every timeout (GET /ready with Content-Length 1e9
  // sending a byte every 5 s held its connection for minutes). The answer closes the connection;
  // what still arrives is dropped for at most LINGER_MS (lingering-close.ts).
  if (BODILESS_METHODS.has(ctx.method) && hasBody(ctx.req.headers)) ctx.set('Connection', 'close');
  await next();
}

const BODILESS_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'TRACE']);

function hasBody(headers: IncomingHttpHeaders): boolean {
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
}
