/**
 * The one place errors become responses. Client errors keep their stable code and safe message;
 * anything unexpected is a 500 ERR_INTERNAL carrying only the request id, details go to the log.
 */
import type { Context, Next } from 'koa';
import { AppError, toClientError } from '../errors.js';
import { metrics } from '../observability/index.js';
import { insufficientStorageError, storageUnavailableError } from '../storage/index.js';
import { closeWhileBodyArrives, requestContext } from './request-context.js';

export interface ErrorBody {
  code: string;
  message: string;
  requestId?: string;
}

export function errorBody(err: AppError, requestId: string | undefined): ErrorBody {
  return { code: err.code, message: err.message, ...(requestId ? { requestId } : {}) };
}

export async function errorMiddleware(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (thrown) {
    // A store that ran out of room (docs/storage-space.md) or does not answer (S3 down) is never a
    // 500. A client that went away raises the same network codes: that is not the store's fault.
    const unavailable = storageUnavailableError(thrown, ctx.req.destroyed);
    const err = thrown instanceof AppError ? thrown : (insufficientStorageError(thrown) ?? unavailable ?? toClientError(thrown));
    const rc = requestContext.get(ctx.req);
    if (err.code === 'ERR_INTERNAL') rc?.log.error({ err: thrown }, 'Request failed');
    else if (err.code === 'ERR_STORAGE_UNAVAILABLE') rc?.log.warn({ err: String(thrown) }, 'Request failed: storage unavailable');
    if (rc) rc.errorCode = err.code;
    metrics.errorsByCode.inc({ code: err.code });
    if (rc) rc.errorCode = err.code;
    if (ctx.headerSent || !ctx.writable) {
      ctx.req.socket.destroy();
      return;
    }
    ctx.status = err.status;
    ctx.set(err.headers);
    closeWhileBodyArrives(ctx.req, ctx.res);
    ctx.set('X-Content-Type-Options', 'nosniff'); // JSON stays JSON, whatever a browser guesses
    ctx.body = errorBody(err, rc?.requestId); // koa sends no body for HEAD, only its length
  }
}
