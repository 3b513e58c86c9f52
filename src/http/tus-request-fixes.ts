/**
 * What stock tus clients and proxies send that @tus/server refuses or ignores, turned into what
 * tusd accepts, before anything else reads the request (both views of a header change:
 * `headers` and `rawHeaders`, which @tus/server's Request adapter reads).
 * - X-HTTP-Method-Override (tus 1.0: the server MUST use it as the method; tus-js-client's
 *   overridePatchMethod, environments without PATCH/DELETE): @tus/server ignores it.
 * - X-Forwarded-Proto: @tus/server answers 400 to anything but exactly `http` or `https`, even
 *   when it ignores the header, so a list from chained proxies (`https, http`), `HTTPS` or an
 *   empty value failed every request. Without `[server] trust_proxy` it means nothing here and
 *   is dropped; with it, the first value (the client's side, as Express reads it) is kept.
 * - an empty Upload-Metadata (tuspy sends `Upload-Metadata: ` when given no metadata): @tus/server
 *   answers 400; tusd reads no metadata. Dropped.
 * - a query on an upload URL (a cache-buster added by a proxy, a CDN or an app): @tus/server reads
 *   the id from the whole URL, so `/files/<id>?t=1` was an unknown upload (404); tusd reads the
 *   path alone. Dropped from every request but a creation, whose query may carry `slot`.
 */
import type { IncomingMessage } from 'node:http';
import { AppError } from '../errors.js';

/** Pure: the method a tus request stands for. */
export function methodOf(method: string, override: string | undefined): string {
  const wanted = override?.trim().toUpperCase();
  return wanted ? wanted : method;
}

/** Pure: what @tus/server should see of X-Forwarded-Proto: the value to keep, or null to drop it. */
export function forwardedProtoFor(value: string, trustProxy: boolean): 'http' | 'https' | null {
  if (!trustProxy) return null;
  const first = value.split(',')[0]!.trim().toLowerCase();
  return first === 'http' || first === 'https' ? first : null;
}

export function adaptTusRequest(req: IncomingMessage, trustProxy: boolean): void {
  const override = req.headers['x-http-method-override'];
  if (override !== undefined) {
    const method = methodOf(req.method ?? 'GET', Array.isArray(override) ? override[0] : override);
    // Node fixed the response's framing by the method sent: a HEAD answer to a POST would
    // announce a Content-Length and send no body, and the connection's next answer would be read as it.
    if (method === 'HEAD' && req.method !== 'HEAD') throw new AppError('ERR_BAD_REQUEST', { message: 'X-HTTP-Method-Override cannot turn a request into HEAD: send HEAD itself' });
    req.method = method;
  }
  const query = req.url?.indexOf('?') ?? -1;
  if (query >= 0 && req.method !== 'POST') req.url = req.url!.slice(0, query);
  const proto = req.headers['x-forwarded-proto'];
  if (proto !== undefined) replaceHeader(req, 'x-forwarded-proto', forwardedProtoFor(Array.isArray(proto) ? proto.join(',') : proto, trustProxy));
  const metadata = req.headers['upload-metadata'];
  if (typeof metadata === 'string' && metadata.trim() === '') replaceHeader(req, 'upload-metadata', null);
}

/** Sets header `name` (lower case) to one `value`, or removes it (null). */
function replaceHeader(req: IncomingMessage, name: string, value: string | null): void {
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === name) raw.splice(i, 2);
  if (value === null) delete req.headers[name];
  else {
    req.headers[name] = value;
    raw.push(name, value);
  }
}
