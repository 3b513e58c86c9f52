/** Small HTTP pieces of the answers the tus endpoint gives itself, beside @tus/server's. */
import type { IncomingMessage } from 'node:http';
import type { Server } from '@tus/server';
import { EXPOSED_HEADERS } from '@tus/utils';
import type { Context } from 'koa';
import type { Config } from '../config/index.js';
import { AppError } from '../errors.js';
import { corsOriginFor } from './cors.js';
import { requestOrigin } from './request-origin.js';
import { CHECKSUM_ALGORITHM_HEADER } from './tus-checksum.js';

/** The URL of an upload, built as @tus/server builds its Location (public_url, or the request's host). */
export function uploadUrlOf(ctx: Context, server: Config['server'], id: string): string {
  const { publicUrl, tusPath, trustProxy } = server;
  const path = `${tusPath.replace(/\/$/, '')}/${id}`;
  if (publicUrl) return `${publicUrl}${path}`;
  const scheme = (ctx.req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  return `${requestOrigin((name) => ctx.get(name) || undefined, scheme, trustProxy)}${path}`;
}

/** What browsers may read of the tus endpoint's answers besides @tus/server's own list (EXPOSED_HEADERS). */
export const TUS_EXPOSED_EXTRA = ['X-Request-Id', CHECKSUM_ALGORITHM_HEADER, 'Upload-Expires', 'Upload-Complete', 'Upload-Incomplete', 'Upload-Limit', 'Upload-Draft-Interop-Version'];
/** The same for the answers the endpoint gives itself, which include downloads of finished uploads. */
const OWN_ANSWERS_EXPOSED = [EXPOSED_HEADERS, ...TUS_EXPOSED_EXTRA, 'ETag', 'Content-Range', 'Content-Disposition'].join(', ');

/** CORS headers of answers the endpoint gives itself (@tus/server sets its own on the rest): the same exposed headers. */
export function answerCors(ctx: Context, cors: Config['cors']): void {
  const allowed = corsOriginFor(ctx.get('Origin') || undefined, cors);
  ctx.vary('Origin');
  if (!allowed) return;
  ctx.set('Access-Control-Allow-Origin', allowed);
  ctx.set('Access-Control-Expose-Headers', OWN_ANSWERS_EXPOSED);
  if (cors.allowCredentials) ctx.set('Access-Control-Allow-Credentials', 'true');
}

/**
 * Removes a request header before @tus/server reads it (it reads `headers`, and `rawHeaders`
 * once it iterates them).
 */
export function dropHeader(req: IncomingMessage, name: string): void {
  delete req.headers[name];
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === name) raw.splice(i, 2);
}

/**
 * OPTIONS (tus discovery and CORS preflight) through @tus/server's web handler, so the answer
 * can be adjusted before it is sent: @tus/server hard-codes Access-Control-Max-Age to 24 h,
 * while [cors] max_age must hold for every preflight.
 */
export async function answerOptions(ctx: Context, server: Server, cors: Config['cors']): Promise<void> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(ctx.req.headers)) {
    if (typeof value === 'string') headers.set(name, value);
    else if (Array.isArray(value)) headers.set(name, value.join(', '));
  }
  // The host is not used for OPTIONS answers; a fixed one keeps a strange Host header harmless.
  let request: Request;
  try {
    request = new Request(`http://localhost${ctx.url}`, { method: 'OPTIONS', headers });
  } catch {
    throw new AppError('ERR_BAD_REQUEST', { message: 'The request target is malformed' });
  }
  const res = await server.handleWeb(request);
  res.headers.forEach((value, name) => ctx.set(name, value));
  // A finished upload's URL also answers GET (tus GET, as at tusd): a preflight may ask for it.
  const methods = res.headers.get('Access-Control-Allow-Methods');
  if (methods && !/\bGET\b/.test(methods)) ctx.set('Access-Control-Allow-Methods', `${methods}, GET`);
  if (res.headers.has('Access-Control-Max-Age')) ctx.set('Access-Control-Max-Age', String(Math.floor(cors.maxAgeMs / 1000)));
  ctx.body = null;
  ctx.status = res.status; // after the body: a null body would make it 204 anyway; keep @tus/server's status
}
