/**
 * The operator status page (web/status/): a static, read-only shell under the admin prefix at
 * `<prefix>/status`. The shell holds no data and is served without a token; the page asks for
 * the admin token, keeps it in the tab's sessionStorage and fetches `<prefix>/status/data`
 * (an admin route, bearer token required) every few seconds.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Context } from 'koa';

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/**
 * Returns a handler for paths below the admin prefix (`sub`, e.g. "/status"): true when it
 * answered (the shell or one of its two assets), false for anything else.
 */
export function statusPage(prefix: string, webDir = fileURLToPath(new URL('../../../web/status/', import.meta.url))) {
  const files = new Map<string, { file: string; type: string }>([
    ['/status', { file: 'index.html', type: 'text/html; charset=utf-8' }],
    ['/status/status.js', { file: 'status.js', type: 'text/javascript; charset=utf-8' }],
    ['/status/status.css', { file: 'status.css', type: 'text/css; charset=utf-8' }],
  ]);
  const cache = new Map<string, Promise<Asset>>();
  const load = (sub: string, source: { file: string; type: string }) => {
    let loading = cache.get(sub);
    if (!loading) {
      loading = readFile(`${webDir}${source.file}`).then((raw) => {
        const body = source.file === 'index.html' ? Buffer.from(raw.toString('utf8').replaceAll('%PREFIX%', prefix)) : raw;
        return { body, type: source.type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
      });
      loading.catch(() => cache.delete(sub));
      cache.set(sub, loading);
    }
    return loading;
  };
  return async (ctx: Context, sub: string): Promise<boolean> => {
    const source = files.get(sub);
    if (!source || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return false;
    const asset = await load(sub, source);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    ctx.set('Cache-Control', 'no-cache');
    if (asset.type.startsWith('text/html')) {
      ctx.set('Content-Security-Policy', CSP);
      ctx.set('X-Frame-Options', 'DENY');
    }
    ctx.set('ETag', asset.etag);
    if (ctx.get('If-None-Match') === asset.etag) {
      ctx.status = 304;
      return true;
    }
    ctx.type = asset.type;
    ctx.body = asset.body;
    return true;
  };
}
