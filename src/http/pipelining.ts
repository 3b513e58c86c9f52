/**
 * HTTP/1.1 pipelining: Node hands a connection's next request to the app as soon as it is parsed,
 * while the one before it is still being handled (only the answers are kept in order). A GET
 * pipelined behind the PUT of its file would be looked up before that PUT's file exists and be
 * answered 404. RFC 9112 §9.3.2 allows handling pipelined requests in parallel only when they are
 * all safe; here a connection's request waits until the one before it has its answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function inOrderPerConnection(handle: Handler): Handler {
  const current = new WeakMap<object, ServerResponse>();
  return (req, res) => {
    const before = current.get(req.socket);
    current.set(req.socket, res);
    if (before === undefined || before.writableEnded || before.destroyed) return handle(req, res);
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      handle(req, res);
    };
    before.once('finish', start);
    before.once('close', start);
  };
}
