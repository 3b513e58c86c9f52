import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../observability/index.js';
import { metrics } from '../observability/index.js';
import { requestContext, type RequestContext } from './request-context.js';
import { logPathOf } from './request-target.js';

/**
 * @tus/server answers a few protocol errors itself (412 without Tus-Resumable, 400 for an invalid
 * tus header) without passing them through our error mapping; name those by their status.
 */
function codeOfUnmappedStatus(status: number): string {
  if (status === 412) return 'ERR_TUS_RESUMABLE_REQUIRED';
  if (status === 400) return 'ERR_TUS_INVALID_HEADER';
  return `HTTP_${status}`;
}

/** Per connection: bytes read off it when its last request ended. */
const readMarks = new WeakMap<object, number>();

/**
 * Gives each request an id and a child logger, and writes one line when it ends: method, path
 * (never the query string: it carries signatures), status, bytes each way, duration.
 * Bytes are read off the socket, so a body streamed straight into @tus/server is counted too
 * (request headers included; a pipelined request's bytes count for the one before it). Reads nothing that can throw:
 * a malformed target is logged as sent, then refused by requestTarget.
 */
export function requestLog(log: Logger, routeOf: (path: string) => string) {
  return async (ctx: Context, next: Next): Promise<void> => {
    const requestId = randomUUID();
    const child = log.child({ requestId });
    const expectsContinue = (ctx.req as { expectsContinue?: boolean }).expectsContinue === true;
    const rc: RequestContext = { requestId, log: child, expectsContinue, clientAddress: ctx.ip };
    requestContext.set(ctx.req, rc);
    ctx.set('X-Request-Id', requestId);

    const started = process.hrtime.bigint();
    const socket = ctx.req.socket;
    // From where the connection's previous request ended: the bytes that arrived with this one's
    // headers (a small body in the same packet) were read off the socket before it started.
    const readAtStart = readMarks.get(socket) ?? 0;
    const writtenAtStart = socket.bytesWritten;
    const path = logPathOf(ctx.req.url ?? '');
    const method = ctx.method;
    // Marked when the answer is complete: a pipelined next request starts then (pipelining.ts).
    let readAtEnd: number | undefined;
    const mark = () => {
      readAtEnd ??= socket.bytesRead;
      readMarks.set(socket, readAtEnd);
    };
    ctx.res.once('finish', mark);
    ctx.res.once('close', () => {
      mark();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // 0: the client left before any answer; a body the parser refused was answered on the socket.
      const status = rc.refused?.status ?? (ctx.res.headersSent ? ctx.res.statusCode : 0);
      const fields = {
        method,
        path,
        status,
        bytesIn: (readAtEnd ?? socket.bytesRead) - readAtStart,
        bytesOut: socket.bytesWritten - writtenAtStart,
        durationMs: Math.round(seconds * 1000),
        ...(ctx.res.writableFinished ? {} : { aborted: true }),
        // Why a request was refused, server-side too (e.g. ERR_SIGNATURE_INVALID for a wrong secret).
        ...(status >= 400 ? { code: rc.refused?.code ?? rc.errorCode ?? codeOfUnmappedStatus(status) } : {}),
      };
      child.info(fields, 'Request finished');
      metrics.httpRequests.inc({ method, status: String(status) });
      metrics.httpRequestDuration.observe({ route: routeOf(path) }, seconds);
    });
    await next();
  };
}
