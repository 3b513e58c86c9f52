/** Wire pieces of the IETF Resumable Uploads front door: the 104 on the socket, problem answers. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'koa';
import type { AppError, ErrorCode } from '../errors.js';
import { metrics } from '../observability/index.js';
import { completeField, PROBLEM_BASE, PROBLEM_STATUS, PROBLEM_TITLE, type InteropVersion, type ProblemKind } from './rufh-versions.js';
import { closeWhileBodyArrives } from './request-context.js';

/**
 * Writes an interim response on the socket. Node has no API for a 1xx other than 100 and 103 on
 * HTTP/1.1 (field-notes.md), so it is written raw, which is safe only before the final response
 * started and while this response owns the socket (a pipelined request's response may not yet).
 * Returns whether it was written; a client that never sees it still gets a correct final answer.
 */
export function writeInterim(res: ServerResponse, head: string): boolean {
  const socket = res.socket as (ServerResponse['socket'] & { _httpMessage?: unknown }) | null;
  if (res.headersSent || !socket || socket.destroyed || !socket.writable || socket._httpMessage !== res) return false;
  socket.write(head, 'latin1');
  return true;
}

const PROBLEMS: Partial<Record<ErrorCode, ProblemKind>> = {
  ERR_UPLOAD_OFFSET_MISMATCH: 'mismatching-upload-offset',
  ERR_UPLOAD_COMPLETED: 'completed-upload',
  ERR_UPLOAD_LENGTH_INCONSISTENT: 'inconsistent-upload-length',
};

/**
 * Answers one of the draft's problem types as application/problem+json (with our stable `code`
 * and the request id beside the draft's members). False for any other error: the error
 * middleware answers it as everywhere else.
 */
export function answerProblem(ctx: Context, err: AppError, requestId: string | undefined, version?: InteropVersion): boolean {
  const kind = PROBLEMS[err.code];
  if (kind === undefined || ctx.headerSent) return false;
  metrics.errorsByCode.inc({ code: err.code });
  const body: Record<string, unknown> = { type: `${PROBLEM_BASE}${kind}`, title: PROBLEM_TITLE[kind], status: PROBLEM_STATUS[kind], code: err.code, detail: err.message };
  const expected = err.headers['Upload-Offset'];
  if (kind === 'mismatching-upload-offset' && expected !== undefined) {
    body['expected-offset'] = Number(expected);
    const provided = ctx.get('Upload-Offset');
    if (/^\d+$/.test(provided)) body['provided-offset'] = Number(provided);
  }
  if (requestId) body.requestId = requestId;
  ctx.status = PROBLEM_STATUS[kind];
  ctx.set(err.headers);
  // The resource's state beside the problem (the current draft: MUST with the offset mismatch).
  if (version !== undefined) ctx.set(...completeField(version, kind === 'completed-upload'));
  ctx.set('Cache-Control', 'no-store');
  closeWhileBodyArrives(ctx.req, ctx.res);
  ctx.type = 'application/problem+json';
  ctx.body = JSON.stringify(body);
  return true;
}

/**
 * The first `length` bytes of a request body, or fewer when it ends, fails or sends nothing for
 * `idleMs`. What it read is consumed: a caller that goes on with the body puts it back (unshift).
 */
export function readBodyPrefix(req: IncomingMessage, length: number, idleMs: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(done, idleMs);
    };
    function done() {
      clearTimeout(timer);
      req.off('readable', onReadable);
      req.off('end', done);
      req.off('error', done);
      req.off('close', done);
      resolve(Buffer.concat(chunks, got));
    }
    function onReadable() {
      for (let chunk = req.read() as Buffer | null; chunk !== null; chunk = req.read() as Buffer | null) {
        const wanted = length - got;
        if (chunk.length > wanted) {
          req.unshift(chunk.subarray(wanted)); // the rest stays in the stream
          chunk = chunk.subarray(0, wanted);
        }
        chunks.push(chunk);
        got += chunk.length;
        if (got >= length) return done();
      }
      arm();
    }
    req.on('readable', onReadable);
    req.once('end', done);
    req.once('error', done);
    req.once('close', done);
    arm();
  });
}
