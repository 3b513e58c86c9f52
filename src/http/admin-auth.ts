import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { AppError } from '../errors.js';

/**
 * Bearer-token check for the admin API. Both sides are hashed first so the comparison is
 * constant-time whatever the lengths; a wrong or missing token reveals nothing else (401).
 */
export function requireAdminToken(token: string) {
  const expected = createHash('sha256').update(token).digest();
  return async (ctx: Context, next: Next): Promise<void> => {
    const header = ctx.get('Authorization');
    const given = /^Bearer\s+(\S+)$/i.exec(header)?.[1] ?? '';
    const ok = timingSafeEqual(createHash('sha256').update(given).digest(), expected) && given !== '';
    if (!ok) throw new AppError('ERR_UNAUTHORIZED', { headers: { 'WWW-Authenticate': 'Bearer realm="hmac-file-server admin"' } });
    ctx.set('Cache-Control', 'no-store');
    await next();
  };
}
