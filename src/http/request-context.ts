import type { IncomingMessage } from 'node:http';
import type { Logger } from '../observability/index.js';

/** Per-request facts shared by koa handlers and @tus/server hooks (which only see the Node request). */
export interface RequestContext {
  requestId: string;
  log: Logger;
  /** The client's address (X-Forwarded-For's last hop when trust_proxy is on). */
  clientAddress: string;
  /** The client sent `Expect: 100-continue`: answer it only once the request is authorized. */
  expectsContinue: boolean;
  /** The error code the request was answered with, for its log line (set where errors become responses). */
  errorCode?: string;
  /** The HTTP parser refused the request's body and answered for it (client-errors.ts). */
  refused?: { status: number; code: string };
}

const contexts = new WeakMap<IncomingMessage, RequestContext>();

export const requestContext = {
  set(req: IncomingMessage, ctx: RequestContext): void {
    contexts.set(req, ctx);
  },
  get(req: IncomingMessage): RequestContext | undefined {
    return contexts.get(req);
  },
};

/**
 * For an answer given before the request's body has all arrived: the rest would be parsed as the
 * next request, so the connection closes after it (lingering-close.ts). A request without a body,
 * or whose body arrived whole, keeps its connection and whatever is pipelined behind it.
 */
export function closeWhileBodyArrives(req: IncomingMessage, res: { setHeader(name: string, value: string): unknown }): void {
  if (!req.complete) res.setHeader('Connection', 'close');
}

/** Sends the interim 100 Continue now that the request may send its body. */
export function allowBody(req: IncomingMessage, res: { writeContinue(): void }): void {
  const ctx = contexts.get(req);
  if (ctx?.expectsContinue) {
    ctx.expectsContinue = false;
    res.writeContinue();
  }
}
