/**
 * The body guard: everything that stands between an upload request and its body, for every
 * front door: shutdown refusal, per-client caps, one body per slot (taking over a silent holder,
 * issue 18), concurrency permits (bounded concurrent bodies, priority wait), the stall/rate-floor
 * watchdog, lifecycle tracking (graceful stop) and byte accounting. Received bytes are always
 * kept for tus: an upload ended here resumes from its stored offset.
 */
import type { IncomingMessage } from 'node:http';
import type { Config } from '../config/index.js';
import { AppError, type ErrorCode } from '../errors.js';
import { metrics, type Logger } from '../observability/index.js';
import { BodyHolder, BodySlots, ConcurrencyPermits, clientKeyOf, type ClientCaps, transferLimits, watchBody, type BodyWatch, type FloorJudgement, type TakeoverReport } from '../transfer/index.js';

/** Why the server ends a body: its watchdog (stall, floor), shutdown, or a newer request (takeover). */
export type EndReason = 'stall' | 'floor' | 'shutdown' | 'takeover';

/** How the server ends a body it gives up on. */
export type BodyEnder = (req: IncomingMessage, reason: EndReason) => void;

/** The answer a client gets when the server ends its body, where the socket still carries one (issue 18.9). */
export function endError(reason: EndReason): AppError {
  const [code, retryAfter]: [ErrorCode, string] =
    reason === 'stall' ? ['ERR_UPLOAD_STALLED', '1'] : reason === 'floor' ? ['ERR_UPLOAD_TOO_SLOW', '5'] : reason === 'takeover' ? ['ERR_UPLOAD_TAKEN_OVER', '1'] : ['ERR_SERVER_SHUTDOWN', '10'];
  return new AppError(code, { headers: { 'Retry-After': retryAfter, Connection: 'close' } });
}

/**
 * tus: a stall means the peer is gone, so the connection is destroyed; @tus/server then aborts
 * the request, keeps what reached the store and releases the lock. For a live connection
 * (floor, shutdown, takeover) the same abort is triggered without killing the socket, so the
 * client still gets @tus/server's answer (204 with the stored Upload-Offset, `Connection: close`)
 * and continues from there; if no answer went out within `graceMs`, the socket is destroyed.
 */
export function tusBodyEnder(graceMs: number): BodyEnder {
  return (req, reason) => {
    if (reason === 'stall' || req.listenerCount('error') === 0) {
      req.destroy();
      return;
    }
    req.emit('error', endError(reason));
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
  /** One streaming body per slot (key), with takeover of silent holders. */
  slots: BodySlots;
  clients: ClientCaps;
  /** The body holder of each streaming request, for lock release requests (tus-endpoint.ts). */
  holders: WeakMap<IncomingMessage, BodyHolder>;
  /** The client address of a request (X-Forwarded-For's last hop with trust_proxy). */
  clientOf: (req: IncomingMessage) => string;
}

export interface GuardRequest {
  protocol: 'tus' | 'put' | 'rufh';
  /** Size of the whole file, for its size class (undefined: unknown). */
  fileBytes: number | undefined;
  /** Bytes this request will send, for the order of waiters for a concurrency permit. */
  requestBytes: number;
  /** The slot (or part of one) the body writes to: one body per key at a time. */
  slotKey: string;
  /** For logs: the tus upload id, or the PUT's slot path. */
  uploadId: string;
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

/** Idle sockets (no request owner) are cut at this value; see http/listener.ts. */
export const socketIdleMsOf = (config: Config) => config.server.uploadStallMs;

/** Refuses new upload requests (503 + Retry-After) once the server is shutting down. */
export function refuseWhenStopping(lifecycle: UploadLifecycle): void {
  if (lifecycle.state !== 'running') throw new AppError('ERR_SERVER_SHUTDOWN', { headers: { 'Retry-After': '10' } });
}

/**
 * The abort reason of a guard's waits. Its readers only ask whether it aborted; a shared reason
 * spares the DOMException abort() makes otherwise (with its stack), once per request: most
 * requests close while the listener is still on.
 */
const STOP_WAITING = Object.freeze({ reason: 'request over' });

/**
 * Admits an upload body and watches it. Throws (with Retry-After where a retry can succeed):
 * ERR_SERVER_SHUTDOWN, ERR_RATE_LIMITED (per-client body cap), ERR_UPLOAD_IN_PROGRESS (PUT on
 * a slot whose body is still moving), ERR_UPLOAD_LOCKED (tus holder did not let go),
 * ERR_SERVER_BUSY (no permit within queue_timeout). Returns the function to call once the
 * request is over (idempotent): it stops the watchdog, frees slot and permit, counts the bytes.
 */
export async function guardUploadBody(req: IncomingMessage, deps: GuardDeps, request: GuardRequest): Promise<() => void> {
  const { config } = deps;
  refuseWhenStopping(deps.lifecycle);
  const log = request.log ?? deps.log;
  const client = deps.clientOf(req);
  // A retry of this slot at another instance took this body over (cluster caps): let go as for a
  // local takeover (silent: ended now; receiving: drained). Set once the holder exists.
  let takenOver = () => {};
  // Single-node caps answer synchronously (nothing changes there); cluster caps ask Redis.
  const enterClient = async () => {
    const entered = deps.clients.enterBody(client, request.slotKey, () => takenOver());
    return entered instanceof Promise ? await entered : entered;
  };
  const refuseClient = () => {
    metrics.clientLimited.inc({ limit: 'bodies' });
    log.info({ client, limit: config.limits.maxBodiesPerClient }, 'Upload refused: client streams its maximum of bodies');
    return new AppError('ERR_RATE_LIMITED', { headers: { 'Retry-After': '5' } });
  };
  let leaveClient = await enterClient();
  if (leaveClient && req.socket.destroyed) {
    leaveClient();
    throw new AppError('ERR_BAD_REQUEST', { message: 'client went away' });
  }
  // At its cap, a client retrying its own body on the slot (the old connection silent after a
  // network switch, same address) is not refused: the newest body takes over, and the old one's
  // place is what it asks for once the takeover freed it (below).
  const holderNow = deps.slots.holderOf(request.slotKey);
  const clientKey = clientKeyOf(client, config.limits.ipv6ClientPrefix);
  const sameClient = (a: string) => clientKeyOf(a, config.limits.ipv6ClientPrefix) === clientKey;
  if (!leaveClient && !(holderNow && sameClient(holderNow.clientAddress))) throw refuseClient();
  const socket = req.socket;
  const bodyStartsAt = socket.bytesRead - req.readableLength;
  const bodyBytes = request.bodyBytes ?? (() => Math.max(0, socket.bytesRead - bodyStartsAt));
  // From here until release, this request's own timers own the socket: the permit wait
  // (queue_timeout), the slot wait (bounded) and the body watchdog (stall, floor). The socket
  // idle timeout must never cut it first (issue 9.5).
  socket.setTimeout(0);

  const limits = transferLimits(request.fileBytes, config.server, config.timeouts);
  let watch: BodyWatch | undefined;
  const createdAt = Date.now();
  // Ended before the body streams (takeover while waiting) or client gone: stop waiting.
  const stopWaiting = new AbortController();
  const onClose = () => stopWaiting.abort(STOP_WAITING);
  req.once('close', onClose);

  const end = (reason: EndReason, judged?: FloorJudgement) => {
    if (!watch) {
      stopWaiting.abort(STOP_WAITING);
      return;
    }
    if (reason === 'stall' || reason === 'floor') metrics.timeouts.inc({ type: 'upload' });
    const rate = judged ?? watch.meter.judgeFloor(Date.now(), limits.floor);
    log.info(
      {
        reason,
        protocol: request.protocol,
        uploadId: request.uploadId,
        sizeClass: limits.sizeClass,
        stallMs: limits.stallMs,
        deadlineMs: limits.deadlineMs,
        minRateBytesPerSec: limits.floor.bytesPerSec,
        rateBytesPerSec: rate.rateBytesPerSec,
        windowMs: rate.windowMs,
        bytes: watch.meter.bytes,
      },
      request.protocol === 'put' ? 'Upload request ended by the server; nothing published' : 'Upload request ended by the server; received bytes kept',
    );
    request.ender(req, reason);
  };
  const holder = new BodyHolder({
    clientAddress: client,
    takeoverIdleMs: config.tus.takeoverIdleMs,
    drainMs: config.tus.lockDrainMs,
    idleMs: () => (watch ? watch.idleMs() : Date.now() - createdAt),
    end: () => end('takeover'),
    onTakeover: (report) => reportTakeover(log, request, report),
  });
  takenOver = () => void holder.requestRelease({ clientAddress: client });

  const cleanups: Array<() => void> = [() => leaveClient?.(), () => holder.finished(), () => req.off('close', onClose)];
  const releaseAll = () => {
    for (const c of cleanups.splice(0).reverse()) c();
    if (!socket.destroyed) socket.setTimeout(socketIdleMsOf(config));
  };
  try {
    const claim = await deps.slots.claim(
      request.slotKey,
      holder,
      { clientAddress: client },
      request.protocol === 'put' ? 'refuse_moving' : 'drain',
      config.tus.lockDrainMs * 2 + 2_000,
      stopWaiting.signal,
    );
    if (!claim.ok) {
      if (claim.reason === 'busy') throw new AppError('ERR_UPLOAD_IN_PROGRESS');
      if (claim.reason === 'timeout') throw new AppError(request.protocol === 'put' ? 'ERR_UPLOAD_IN_PROGRESS' : 'ERR_UPLOAD_LOCKED');
      throw new AppError('ERR_UPLOAD_TAKEN_OVER');
    }
    cleanups.push(claim.release);
    // The taken-over body of this client has let go of its place by now (its release runs at once).
    if (!leaveClient && !(leaveClient = await enterClient())) throw refuseClient();
    deps.holders.set(req, holder);

    const permit = await deps.permits.acquire(request.requestBytes, stopWaiting.signal, clientKey);
    if (!permit.ok) {
      if (permit.reason === 'timeout') {
        metrics.concurrencyRejected.inc();
        log.info({ queueTimeoutMs: config.workers.queueTimeoutMs }, 'Upload refused: no streaming slot within queue_timeout');
        throw new AppError('ERR_SERVER_BUSY', { headers: { 'Retry-After': '5' } });
      }
      throw new AppError('ERR_UPLOAD_TAKEN_OVER');
    }
    cleanups.push(permit.release);
    metrics.concurrencyWait.observe(permit.waitedMs / 1000);
    refuseWhenStopping(deps.lifecycle);

    const sampleMs = Math.max(10, Math.min(250, Math.floor(config.tus.takeoverIdleMs / 4)));
    watch = watchBody(socket, { stallMs: limits.stallMs, floor: limits.floor, sampleMs, onEnd: end });
    const watching = watch;
    // While other bodies wait for a permit, a silent one gives its own up (ended as a stall).
    permit.hold({
      // Not silent when the server is the one not reading: the body arrived whole (its answer is
      // being made), or the store holds it back (backpressure: the request is paused or has
      // bytes buffered that nobody read yet).
      idleMs: () => (req.complete || req.readableFlowing === false || req.readableLength > 0 ? 0 : watching.idleMs()),
      yieldPermit: () => {
        log.info({ protocol: request.protocol, uploadId: request.uploadId, idleMs: watching.idleMs() }, 'Silent upload body ended: other bodies wait for a streaming slot');
        end('stall');
      },
    });
    metrics.activeUploads.inc();
    cleanups.push(watch.stop, deps.lifecycle.track(end), () => {
      metrics.activeUploads.dec();
      metrics.bytesReceived.inc({ protocol: request.protocol }, bodyBytes());
    });
  } catch (err) {
    releaseAll();
    throw err;
  }
  return releaseAll;
}

function reportTakeover(log: Logger, request: GuardRequest, report: TakeoverReport): void {
  metrics.takeovers.inc({ outcome: report.outcome });
  metrics.takeoverWait.observe(report.waitedMs / 1000);
  log.info({ protocol: request.protocol, uploadId: request.uploadId, ...report }, 'Upload taken over by a newer request');
}
