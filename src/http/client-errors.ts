/**
 * Requests the HTTP parser refuses (a malformed request line or header, bad framing, headers
 * too large or too slow) never reach koa. Node's default answer is a bare `400 Bad Request` with
 * no body and no log line; here it is our JSON error, counted by code, logged once: when the
 * parser fails inside the body of a request already handed to koa (broken chunked framing), that
 * request's own log line carries the refusal instead of a second line.
 */
import { ServerResponse, STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ERRORS, type ErrorCode } from '../errors.js';
import type { Logger } from '../observability/index.js';
import { metrics } from '../observability/index.js';
import { requestContext } from './request-context.js';
import { lingerThenClose } from './lingering-close.js';

/** Pure: the error code for a parser error code (llhttp `HPE_*`, Node `ERR_HTTP_*`). */
export function clientErrorCode(parserCode: string | undefined): ErrorCode {
  if (parserCode === 'HPE_HEADER_OVERFLOW') return 'ERR_HEADERS_TOO_LARGE';
  if (parserCode === 'ERR_HTTP_REQUEST_TIMEOUT') return 'ERR_HEADERS_TIMEOUT';
  return 'ERR_BAD_REQUEST';
}

export function answerClientErrors(server: Server, log: Logger): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const inFlight = (socket as { _httpMessage?: ServerResponse | null })._httpMessage ?? null;
    // As Node does: never answer over a response already under way (it would corrupt the stream),
    // nor a peer that is gone: reset, or closed its side mid-request (HPE_INVALID_EOF_STATE: an
    // app killed mid-upload sends a FIN). Either is the client leaving, not a malformed request:
    // its request, if it had one, is logged as aborted without an answer.
    if (err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const code = clientErrorCode(err.code);
    const { status, message } = ERRORS[code];
    metrics.errorsByCode.inc({ code });
    if (inFlight?.req.complete) {
      // The bad bytes came after a whole request (garbage pipelined behind a PUT's body): that
      // request's answer is still due and is delivered; the connection then closes unanswered.
      inFlight.shouldKeepAlive = false;
      inFlight.once('close', () => socket.destroy());
      log.info({ code, reason: err.code ?? 'unknown' }, 'Malformed HTTP request refused after a complete request; its answer is delivered first');
      return;
    }
    const rc = inFlight ? requestContext.get(inFlight.req) : undefined;
    if (rc) rc.refused = { status, code };
    else log.info({ code, reason: err.code ?? 'unknown' }, 'Malformed HTTP request refused');
    const body = JSON.stringify({ code, message, ...(rc ? { requestId: rc.requestId } : {}) });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    lingerThenClose(socket);
  });
}

/**
 * CONNECT (a proxy tunnel request) never reaches the 'request' handler: without a listener Node
 * closes the connection unanswered and unlogged. This server is no proxy: the request goes
 * through the app like any other (its JSON refusal, its one log line), then the connection closes.
 */
export function answerConnect(server: Server, handler: (req: IncomingMessage, res: ServerResponse) => void): void {
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    // Node took its own error listener off this socket: a reset now would be an uncaught error.
    socket.on('error', () => socket.destroy());
    // Pipelined behind requests still being answered: their answers own the socket until they
    // are written; the refusal follows the last of them (destroying the socket lost them). Node
    // took its idle timeout off the socket with the CONNECT: the wait is bounded here instead,
    // or a client that never reads an answer before it would hold the connection for ever.
    const giveUp = setTimeout(() => socket.destroy(), server.timeout > 0 ? server.timeout : CONNECT_WAIT_MS);
    giveUp.unref();
    socket.once('close', () => clearTimeout(giveUp));
    const answerWhenFree = () => {
      if (socket.destroyed || !socket.writable) return void socket.destroy();
      const owner = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
      if (!owner) {
        clearTimeout(giveUp);
        return refuseConnect(req, socket, handler);
      }
      let next = false;
      const onDone = () => {
        if (next) return;
        next = true;
        setImmediate(answerWhenFree); // once Node detached the socket (or gave it to the next answer)
      };
      if (owner.writableFinished) return onDone();
      owner.once('finish', onDone);
      owner.once('close', onDone);
    };
    answerWhenFree();
  });
}

/** How long a CONNECT waits for the answers before it when the server has no idle timeout. */
const CONNECT_WAIT_MS = 60_000;

function refuseConnect(req: IncomingMessage, socket: Duplex, handler: (req: IncomingMessage, res: ServerResponse) => void): void {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  // The socket stays assigned: its close is the response's 'close', which writes the log line.
  res.once('finish', () => {
    socket.end();
    lingerThenClose(socket);
  });
  handler(req, res);
}
