/**
 * The browser upload page: web/index.html, its script and style, tus-js-client's browser bundle
 * (served from node_modules, never a CDN) and a small config.json telling the page where the tus
 * endpoint and the slot source are. Everything is under `[upload_page] path`; the assets live in
 * `<path>page-assets/`. The page mints no slots: it asks the operator's signing endpoint or takes
 * a pasted slot URL (docs/clients.md).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Context, Next } from 'koa';
import type { Config } from '../config/index.js';

export const PAGE_ASSETS_DIR = 'page-assets/';

export interface UploadPageOptions {
  page: Config['upload_page'];
  server: Config['server'];
  /** The store joins tus partials (the file store; S3 refuses Upload-Concat): else one upload per file. */
  concatenation: boolean;
  /** Folder holding index.html, app.js, style.css. Default: the package's web/. */
  webDir?: string;
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

type AssetSource = { file: string; type: string } | { json: () => unknown };

/** koa middleware: answers GET/HEAD for the page and its assets, passes everything else on. */
export function uploadPage(options: UploadPageOptions): (ctx: Context, next: Next) => Promise<void> {
  const { page, server } = options;
  const webDir = options.webDir ?? fileURLToPath(new URL('../../../web/', import.meta.url));
  const tusBundle = createRequire(import.meta.url).resolve('tus-js-client/dist/tus.min.js');
  const publicUrl = server.publicUrl;
  const pageConfig = {
    // Relative unless a public URL is configured, so the page works behind any host name.
    tusEndpoint: `${publicUrl}${server.tusPath}`,
    uploadBase: `${publicUrl}${server.uploadPath}`,
    signingEndpoint: page.signingEndpoint,
    chunkSize: page.chunkBytes,
    maxUploadSize: server.maxUploadBytes,
    parallelUploads: options.concatenation ? page.parallelUploads : 1,
  };
  const assets = new Map<string, AssetSource>([
    [page.path, { file: `${webDir}index.html`, type: 'text/html; charset=utf-8' }],
    [`${page.path}${PAGE_ASSETS_DIR}app.js`, { file: `${webDir}app.js`, type: 'text/javascript; charset=utf-8' }],
    [`${page.path}${PAGE_ASSETS_DIR}style.css`, { file: `${webDir}style.css`, type: 'text/css; charset=utf-8' }],
    [`${page.path}${PAGE_ASSETS_DIR}tus.min.js`, { file: tusBundle, type: 'text/javascript; charset=utf-8' }],
    [`${page.path}${PAGE_ASSETS_DIR}config.json`, { json: () => pageConfig }],
  ]);
  const csp = contentSecurityPolicy([page.signingEndpoint, publicUrl]);
  const cache = new Map<string, Promise<Asset>>();

  const load = (path: string, source: AssetSource): Promise<Asset> => {
    let loading = cache.get(path);
    if (!loading) {
      loading = (async () => {
        const body = 'file' in source ? await readFile(source.file) : Buffer.from(JSON.stringify(source.json()));
        const type = 'file' in source ? source.type : 'application/json';
        return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
      })();
      // A failed read (a missing web/ folder) is retried on the next request, not cached.
      loading.catch(() => cache.delete(path));
      cache.set(path, loading);
    }
    return loading;
  };

  return async (ctx: Context, next: Next): Promise<void> => {
    const source = assets.get(ctx.path);
    if (!source || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    const asset = await load(ctx.path, source);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer'); // slot URLs and upload URLs are capabilities
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    ctx.set('Cache-Control', 'no-cache');
    if (asset.type.startsWith('text/html')) {
      ctx.set('Content-Security-Policy', csp);
      ctx.set('X-Frame-Options', 'DENY');
    }
    ctx.set('ETag', asset.etag);
    if (ctx.get('If-None-Match') === asset.etag) {
      ctx.status = 304;
      return;
    }
    ctx.type = asset.type;
    ctx.body = asset.body;
  };
}

/** Scripts and styles from this origin only; fetches also to the signing endpoint and public URL. */
function contentSecurityPolicy(urls: string[]): string {
  const origins = new Set<string>(["'self'"]);
  for (const url of urls) {
    if (/^https?:\/\//.test(url)) origins.add(new URL(url).origin);
  }
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${[...origins].join(' ')}`,
    "form-action 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}
