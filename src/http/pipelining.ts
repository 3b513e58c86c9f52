/**
 * HTTP/1.1 pipelining: Node hands a connection's next request to the app as soon as it is parsed,
 * while the one before it is still being handled (only the answers are kept in order). A GET
 * pipelined behind the PUT of its file would be looked up before that PUT's file exists and be
 * answered 404. RFC 9112 §9.3.2 allows handling pipelined requests in parallel only when they are
 * all safe; here a connection's request waits until the one before it has its answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isLingering } from './lingering-close.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Requests one connection may have waiting for their answers. Browsers and upload clients send
 * one at a time; a client that writes thousands at once (each parsed, each waiting for the one
 * before) held the event loop for seconds and memory for all of them: its connection is closed
 * and what it queued is dropped unhandled.
 */
export const MAX_PIPELINED = 32;

export function inOrderPerConnection(handle: Handler, onTooDeep: (req: IncomingMessage) => void = () => {}): Handler {
  const waiting = new WeakMap<object, number>();
  return (req, res) => {
    const socket = req.socket;
    const depth = (waiting.get(socket) ?? 0) + 1;
    waiting.set(socket, depth);
    res.once('close', () => waiting.set(socket, (waiting.get(socket) ?? 1) - 1));
    if (depth > MAX_PIPELINED || socket.destroyed) {
      if (!socket.destroyed) {
        onTooDeep(req);
        socket.destroy();
      }
      res.destroy();
      res.emit('close');
      return;
    }
    // Node gives the socket to a response once the one before it is done: until then the socket
    // still names that earlier answer.
    const before = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    // Parsed while the connection closes after its last answer (lingering-close.ts): never handled.
    if (isLingering(socket)) {
      res.destroy();
      res.emit('close');
      return;
    }
    if (!before || before === res || before.writableEnded || before.destroyed) return handle(req, res);
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      // The answer before closed the connection (Connection: close, or the peer left): Node never
      // gives this one the socket, so it could never be answered. Handled, it would hold what it
      // claims (a slot's creation) with no end: it is dropped instead.
      if (!(before as { _last?: boolean })._last && socket.writable && !socket.destroyed) return handle(req, res);
      res.destroy();
      res.emit('close');
    };
    before.once('finish', start);
    before.once('close', start);
  };
}
