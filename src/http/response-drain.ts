/**
 * Counts requests whose response is not finished, so shutdown can let them be answered before
 * it closes their sockets (issue 9.6: a PUT that completed during shutdown gets its 201).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export interface ResponseTracker {
  /** Resolves with 0 once every request has been answered, or with how many remain after `timeoutMs`. */
  waitAnswered(timeoutMs: number): Promise<number>;
}

export function trackResponses(server: Server): ResponseTracker {
  let open = 0;
  const waiters = new Set<() => void>();
  const onRequest = (_req: IncomingMessage, res: ServerResponse) => {
    open++;
    res.once('close', () => {
      open--;
      if (open === 0) for (const w of [...waiters]) w();
    });
  };
  server.on('request', onRequest);
  server.on('checkContinue', onRequest);
  return {
    waitAnswered(timeoutMs) {
      if (open === 0) return Promise.resolve(0);
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(done);
          resolve(open);
        };
        const timer = setTimeout(done, timeoutMs);
        waiters.add(done);
      });
    },
  };
}
