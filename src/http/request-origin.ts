/**
 * The origin (scheme://host) a client used to reach this server, for the upload URLs we hand out
 * (tus Location, IETF Resumable Uploads Location). Read as @tus/server and tusd read it: behind a
 * trusted proxy (`[server] trust_proxy`), RFC 7239 `Forwarded` first, then `X-Forwarded-Proto` /
 * `X-Forwarded-Host`; otherwise the Host header and the listener's own scheme; without any host,
 * nothing (the URL stays path-only). Of a list, the first element counts: it was added by the
 * proxy nearest the client, which saw what it asked for.
 */
import parseForwarded from 'forwarded-parse';
import { isHostValue } from './request-target.js';
import { forwardedProtoFor } from './tus-request-fixes.js';

export type HeaderOf = (name: string) => string | undefined;

export function requestOrigin(header: HeaderOf, listenerScheme: 'http' | 'https', trustProxy: boolean): string {
  let scheme: string | undefined;
  let host: string | undefined;
  if (trustProxy) {
    const forwarded = firstForwarded(header('forwarded'));
    // A forwarded host that would change the URL (a space, '/', '@') counts as absent.
    host = [forwarded?.host, firstOfList(header('x-forwarded-host'))].find((h) => h !== undefined && isHostValue(h));
    scheme = forwarded?.proto ?? forwardedProtoFor(header('x-forwarded-proto') ?? '', trustProxy) ?? undefined;
  }
  scheme = scheme?.toLowerCase();
  host ||= header('host');
  // No host at all (an HTTP/1.0 request may omit Host): '' makes the URL path-only, which a
  // client resolves against the URL it asked, where 'http:///files/…' would lead nowhere.
  if (!host) return '';
  return `${scheme === 'http' || scheme === 'https' ? scheme : listenerScheme}://${host}`;
}

function firstForwarded(value: string | undefined): { host?: string | undefined; proto?: string | undefined } | undefined {
  if (!value) return undefined;
  try {
    return parseForwarded(value)[0];
  } catch {
    // Not RFC 7239 as proxies often write it (an unquoted IPv6 for=, an unquoted host:port): read
    // the first host= and proto= as @tus/server does, rather than dropping the whole header.
    return { host: /\bhost="?([^";,]+)/i.exec(value)?.[1], proto: /\bproto="?([^";,]+)/i.exec(value)?.[1] };
  }
}

function firstOfList(value: string | undefined): string | undefined {
  const first = value?.split(',')[0]?.trim();
  return first || undefined;
}
