/**
 * X-Forwarded-Proto as @tus/server can take it. @tus/server answers 400 "Invalid
 * x-forwarded-proto" to any request whose header is not exactly `http` or `https`, even when it
 * ignores the header (respectForwardedHeaders off), so a list from chained proxies
 * (`https, http`), another case (`HTTPS`) or an empty value failed every tus request. Without
 * `[server] trust_proxy` the header means nothing here and is dropped; with it, the first value
 * (the client's side, as Express reads it) is kept when it is http or https, lower-cased.
 */
import type { IncomingMessage } from 'node:http';

const NAME = 'x-forwarded-proto';

/** What @tus/server should see: the value to keep, or null to drop the header. */
export function forwardedProtoFor(value: string, trustProxy: boolean): 'http' | 'https' | null {
  if (!trustProxy) return null;
  const first = value.split(',')[0]!.trim().toLowerCase();
  return first === 'http' || first === 'https' ? first : null;
}

/** Rewrites the request's header in place (both views: headers and rawHeaders). */
export function normalizeForwardedProto(req: IncomingMessage, trustProxy: boolean): void {
  const value = req.headers[NAME];
  if (value === undefined) return;
  const kept = forwardedProtoFor(Array.isArray(value) ? value.join(',') : value, trustProxy);
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === NAME) raw.splice(i, 2);
  if (kept === null) delete req.headers[NAME];
  else {
    req.headers[NAME] = kept;
    raw.push('X-Forwarded-Proto', kept);
  }
}
