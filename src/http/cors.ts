import type { Context, Next } from 'koa';
import type { Config } from '../config/index.js';

const EXPOSED = ['ETag', 'Content-Length', 'Content-Range', 'Accept-Ranges', 'Content-Disposition', 'Last-Modified', 'X-Request-Id'];

/** The origin to echo in Access-Control-Allow-Origin, or null when this origin is not allowed. */
export function corsOriginFor(origin: string | undefined, cors: Config['cors']): string | null {
  if (!cors.enabled || !origin) return null;
  if (cors.allowedOrigins.includes('*')) return cors.allowCredentials ? origin : '*';
  return cors.allowedOrigins.includes(origin) ? origin : null;
}

/** What a browser client of IETF Resumable Uploads must read from our answers (tus-js-client in ietf mode). */
export const RUFH_EXPOSED = ['Location', 'Upload-Offset', 'Upload-Complete', 'Upload-Incomplete', 'Upload-Length', 'Upload-Limit', 'Upload-Draft-Interop-Version', 'X-Request-Id'];

/** CORS for the upload prefix, the IETF Resumable Uploads door and other non-tus routes (@tus/server answers its own). */
export function corsMiddleware(cors: Config['cors'], allowMethods: string, exposed: readonly string[] = EXPOSED) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const allowed = corsOriginFor(ctx.get('Origin') || undefined, cors);
    ctx.vary('Origin');
    if (allowed) {
      ctx.set('Access-Control-Allow-Origin', allowed);
      ctx.set('Access-Control-Expose-Headers', exposed.join(', '));
      if (cors.allowCredentials) ctx.set('Access-Control-Allow-Credentials', 'true');
    }
    if (ctx.method === 'OPTIONS' && ctx.get('Access-Control-Request-Method')) {
      // Preflight: a refused origin gets no CORS headers, which the browser treats as a refusal.
      if (allowed) {
        ctx.set('Access-Control-Allow-Methods', allowMethods);
        const requested = ctx.get('Access-Control-Request-Headers');
        if (requested) ctx.set('Access-Control-Allow-Headers', requested);
        ctx.set('Access-Control-Max-Age', String(Math.floor(cors.maxAgeMs / 1000)));
      }
      ctx.status = 204;
      return;
    }
    await next();
  };
}
