/**
 * How a connection is closed after an answer while the client may still be sending (RFC 9112
 * §9.6, "tear-down"): a refusal sent before the body was read, an upload body the server ended
 * (watchdog, takeover, shutdown), a malformed request. Closed at once, the socket would still
 * hold bytes the client sent that nobody read, and the kernel answers that with a reset: a client
 * that had not read the answer yet loses it (Node's http client reports EPIPE and never sees its
 * 4xx; a phone never learns the offset its PATCH reached). So the answer is followed by a FIN,
 * whatever still arrives is read and dropped, and the socket is destroyed once the client is done
 * or after LINGER_MS, so a client that keeps writing cannot hold its connection slot.
 */
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** How long a closing connection may go on sending after its answer. */
export const LINGER_MS = 2_000;

/** After an answer already written with end(): drop what the peer sends, destroy when it is done or after LINGER_MS. */
export function lingerThenClose(socket: Duplex): void {
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

const currentRequest = Symbol('hfs.currentRequest');
const lingering = Symbol('hfs.lingering');
type Tracked = Socket & { [currentRequest]?: IncomingMessage; [lingering]?: true };

/**
 * Whether `socket` is closing after its last answer. The parser still reads the rest of the body,
 * and a request pipelined behind it is parsed and handed on: it must never be handled (RFC 9112
 * §9.6), and could not be answered.
 */
export function isLingering(socket: Socket): boolean {
  return (socket as Tracked)[lingering] === true;
}

/**
 * Called for every request: Node closes a connection after its last answer through the socket's
 * destroySoon(); for this socket that lingers while the request's body is still arriving.
 */
export function lingerAfterLastAnswer(req: IncomingMessage): void {
  const socket = req.socket as Tracked;
  if (socket[lingering]) return; // a request pipelined behind the last answer: dropped (pipelining.ts)
  socket[currentRequest] = req;
  if (socket.destroySoon !== lingeringDestroySoon) socket.destroySoon = lingeringDestroySoon;
}

function lingeringDestroySoon(this: Tracked): void {
  const req = this[currentRequest];
  if (req === undefined || req.complete || this.destroyed) {
    Socket.prototype.destroySoon.call(this);
    return;
  }
  // Nobody reads this body any more: let the parser go on, dropping it (a listener still attached
  // would be handed bytes of a request that is over).
  this[lingering] = true;
  req.removeAllListeners('data');
  req.resume();
  // Every byte arrived: nothing left to be reset over. Closed as Node would have (after what end() queued, TLS's close_notify included).
  req.once('end', () => Socket.prototype.destroySoon.call(this));
  if (this.writable) this.end();
  lingerThenClose(this);
}
