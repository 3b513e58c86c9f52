/**
 * Who may read the metrics on the main listener. Behind a reverse proxy the main listener is the
 * public origin, and the metrics tell more than an uploader should learn: a dedup hit after an
 * upload says the same bytes were already stored (whether someone else has a given file), besides
 * the disk's size and the versions. So by default only a scraper on this host reads them there: a
 * loopback peer whose request passed no proxy. `[metrics] public = true` serves anyone;
 * `[metrics] listen` gives them a listener of their own, reachable as the operator binds it.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { FORWARDING_HEADERS } from './rufh-interim.js';

export function isLoopbackAddress(address: string | undefined): boolean {
  return address !== undefined && (address === '::1' || /^(::ffff:)?127\./i.test(address));
}

export function mayReadMetrics(peer: string | undefined, headers: IncomingHttpHeaders, isPublic: boolean): boolean {
  if (isPublic) return true;
  return isLoopbackAddress(peer) && !FORWARDING_HEADERS.some((h) => headers[h] !== undefined);
}
