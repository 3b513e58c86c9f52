/**
 * The body guard: everything that stands between an upload request and its body, for every
 * front door: shutdown refusal, concurrency permits (bounded concurrent bodies, priority wait), the
 * stall/deadline watchdog, lifecycle tracking (graceful stop) and byte accounting. Received
 * bytes are always kept: a tus upload ended here resumes from its stored offset.
 */
import type { IncomingMessage } from 'node:http';
import type { Config } from '../config/index.js';
import { AppError } from '../errors.js';
import { metrics, type Logger } from '../observability/index.js';
import { ConcurrencyPermits, transferLimits, watchBody, type BodyVerdict } from '../transfer/index.js';

export type EndReason = Exclude<BodyVerdict, 'ok'> | 'shutdown';

/** How the server ends a body it gives up on. */
export type BodyEnder = (req: IncomingMessage, reason: EndReason) => void;

/** PUT bodies are all or nothing: end the connection, the handler discards the temp file. */
export const endPutBody: BodyEnder = (req) => req.destroy();

/**
 * tus: a stall means the peer is gone, so the connection is destroyed; @tus/server then aborts
 * the request, keeps what reached the store and releases the lock. For a live connection
 * (deadline, shutdown) the same abort is triggered without killing the socket, so the client
 * still gets @tus/server's answer (204 with the stored Upload-Offset, `Connection: close`) and
 * continues from there; if no answer went out within `graceMs`, the socket is destroyed.
 */
export function tusBodyEnder(graceMs: number): BodyEnder {
  return (req, reason) => {
    if (reason === 'stall' || req.listenerCount('error') === 0) {
      req.destroy();
      return;
    }
    req.emit('error', new AppError(reason === 'deadline' ? 'ERR_REQUEST_DEADLINE' : 'ERR_SERVER_SHUTDOWN'));
    // The web stream wrapping the body is now errored; another 'data' event would be enqueued
    // into it and throw ERR_INVALID_STATE out of an event handler, killing the process. Stop the
    // flow: the unread rest is dropped with the connection (`Connection: close`).
    req.pause();
    req.removeAllListeners('data');
    setTimeout(() => {
      if (!req.socket.destroyed) req.socket.destroy();
    }, graceMs).unref();
  };
}

export type LifecycleState = 'running' | 'draining' | 'stopped';

/** Tracks upload bodies in flight so shutdown can wait for them, then end them. */
export class UploadLifecycle {
  state: LifecycleState = 'running';
  private readonly active = new Set<(reason: EndReason) => void>();
  private readonly idleWaiters = new Set<() => void>();

  get activeUploads(): number {
    return this.active.size;
  }

  track(end: (reason: EndReason) => void): () => void {
    this.active.add(end);
    return () => {
      this.active.delete(end);
      if (this.active.size === 0) for (const w of this.idleWaiters) w();
    };
  }

  /** Resolves when no upload body is in flight, or after `timeoutMs` (then returns how many remain). */
  waitIdle(timeoutMs: number): Promise<number> {
    if (this.active.size === 0) return Promise.resolve(0);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve(this.active.size);
      };
      const timer = setTimeout(done, timeoutMs);
      this.idleWaiters.add(done);
    });
  }

  endAll(reason: EndReason): void {
    for (const end of [...this.active]) end(reason);
  }
}

export interface GuardDeps {
  config: Config;
  permits: ConcurrencyPermits;
  lifecycle: UploadLifecycle;
  log: Logger;
}

export interface GuardRequest {
  protocol: 'tus' | 'put' | 'rufh';
  /** Size of the whole file, for its size class (undefined: unknown). */
  fileBytes: number | undefined;
  /** Bytes this request will send, for the order of waiters for a concurrency permit. */
  requestBytes: number;
  ender: BodyEnder;
  /** The request's logger (with its request id); default the guard's. */
  log?: Logger | undefined;
  /**
   * Body bytes received, read once the request is over (hmac_bytes_received_total). Default:
   * the bytes read off the socket during the body, for front doors that do not own the body
   * stream (@tus/server); what the parser buffered before the guard started counts too.
   */
  bodyBytes?: (() => number) | undefined;
}

/** Refuses new upload requests (503 + Retry-After) once the server is shutting down. */
export function refuseWhenStopping(lifecycle: UploadLifecycle): void {
  if (lifecycle.state !== 'running') throw new AppError('ERR_SERVER_SHUTDOWN', { headers: { 'Retry-After': '10' } });
}

/**
 * Admits an upload body and watches it. Throws ERR_SERVER_SHUTDOWN / ERR_SERVER_BUSY (503 with
 * Retry-After) when it may not start. Returns the function to call once the request is over
 * (idempotent): it stops the watchdog, frees the slot and counts the body's bytes.
 */
export async function guardUploadBody(req: IncomingMessage, deps: GuardDeps, request: GuardRequest): Promise<() => void> {
  refuseWhenStopping(deps.lifecycle);
  const socket = req.socket;
  const bodyStartsAt = socket.bytesRead - req.readableLength;
  const bodyBytes = request.bodyBytes ?? (() => Math.max(0, socket.bytesRead - bodyStartsAt));
  const gone = new AbortController();
  const onClose = () => gone.abort();
  req.once('close', onClose);
  const permit = await deps.permits.acquire(request.requestBytes, gone.signal);
  req.off('close', onClose);
  if (!permit.ok) {
    if (permit.reason === 'timeout') metrics.concurrencyRejected.inc();
    throw new AppError('ERR_SERVER_BUSY', { headers: { 'Retry-After': '5' } });
  }
  metrics.concurrencyWait.observe(permit.waitedMs / 1000);
  if (deps.lifecycle.state !== 'running') {
    permit.release();
    throw new AppError('ERR_SERVER_SHUTDOWN', { headers: { 'Retry-After': '10' } });
  }

  const limits = transferLimits(request.fileBytes, deps.config.server, deps.config.timeouts);
  const log = request.log ?? deps.log;
  const end = (reason: EndReason) => {
    if (reason !== 'shutdown') metrics.timeouts.inc({ type: 'upload' });
    log.info({ reason, protocol: request.protocol, sizeClass: limits.sizeClass, stallMs: limits.stallMs, deadlineMs: limits.deadlineMs }, 'Upload request ended by the server; received bytes kept');
    request.ender(req, reason);
  };
  const stopWatch = watchBody(socket, { stallMs: limits.stallMs, deadlineMs: limits.deadlineMs, onEnd: end });
  const untrack = deps.lifecycle.track(end);
  metrics.activeUploads.inc();
  let done = false;
  return () => {
    if (done) return;
    done = true;
    stopWatch();
    untrack();
    permit.release();
    metrics.activeUploads.dec();
    metrics.bytesReceived.inc({ protocol: request.protocol }, bodyBytes());
  };
}
