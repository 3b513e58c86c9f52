/**
 * Moving a request body into a resumable upload resource: the upload's lock (the tus locker, so
 * a tus request or a newer RUFH request asks the holder to let go), intake's guard around the
 * body, and the append itself, which ends gracefully on a cut or a takeover so that every byte
 * that reached the store counts.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import type { Locker } from '@tus/utils';
import { AppError } from '../errors.js';
import type { Intake } from '../intake/index.js';
import type { TusDoorStore } from '../storage/index.js';
import { ByteLimit } from '../transfer/index.js';
import { requestContext } from './request-context.js';
import type { RufhResources } from './rufh-resources.js';
import { uploadLimitField, type InteropVersion, type UploadLimits } from './rufh-versions.js';

/** How an append ended: the whole body, the client gone, or a newer request took the upload over. */
export type AppendEnd = 'body' | 'cut' | 'takeover';
/** Registers what ends this request's body when another request asks for the upload's lock. */
export type OnTakeover = (end: () => void) => void;

export interface RufhAppendDeps {
  readonly locker: Locker;
  readonly tusStore: TusDoorStore;
  readonly intake: Intake;
  readonly resources: RufhResources;
}

export class RufhAppend {
  constructor(private readonly deps: RufhAppendDeps) {}

  /** Holds the upload's lock around `fn`; a request that asks for it meanwhile ends fn's body (onTakeover). */
  async locked(ctx: Context, id: string, fn: (onTakeover: OnTakeover) => Promise<void>): Promise<void> {
    const lock = this.deps.locker.newLock(id);
    const gone = new AbortController();
    const onClose = () => gone.abort();
    ctx.req.once('close', onClose);
    if (ctx.req.destroyed) onClose(); // closed already: 'close' will not come again
    let takeover: (() => void) | undefined;
    let asked = false;
    try {
      await lock.lock(gone.signal, async () => {
        asked = true;
        takeover?.();
      });
    } finally {
      ctx.req.off('close', onClose);
    }
    try {
      await fn((end) => {
        takeover = end;
        if (asked) end();
      });
    } finally {
      await lock.unlock();
    }
  }

  /** Admission, watchdog and byte accounting of intake; a cut body keeps its bytes here (the append ends gracefully). */
  guard(ctx: Context, fileBytes: number | undefined, requestBytes = contentLengthOf(ctx)): Promise<() => void> {
    const requestId = requestContext.get(ctx.req)?.requestId ?? ctx.path;
    return this.deps.intake.guardBody(ctx.req, {
      protocol: 'rufh',
      fileBytes,
      requestBytes: requestBytes ?? fileBytes ?? this.deps.intake.maxUploadBytes,
      // Takeovers of a resource are this door's own (its locker's onTakeover): a key per request
      // keeps the slot rule of tus and PUT out of its way.
      slotKey: `rufh:${requestId}`,
      uploadId: ctx.path,
      ender: (req) => req.destroy(),
      log: requestContext.get(ctx.req)?.log,
    });
  }

  /**
   * Streams the request body into the resource from `offset`. The body ends gracefully when the
   * client goes away or a newer request takes the upload over, so every byte that reached the
   * store counts; the new offset is read from the store afterwards.
   */
  async appendBody(ctx: Context, id: string, offset: number, size: number | undefined, limits: UploadLimits, onTakeover: OnTakeover): Promise<{ offset: number; end: AppendEnd }> {
    const req: IncomingMessage = ctx.req;
    const limit = new ByteLimit((size ?? limits.maxSizeBytes) - offset);
    let end: AppendEnd = 'body';
    const stop = (why: AppendEnd) => {
      if (end !== 'body' || req.complete) return;
      end = why;
      req.unpipe(limit);
      limit.end();
    };
    const onClose = () => stop('cut');
    req.once('close', onClose);
    // Closed before this listened (a malformed body ends the request at once): nothing more comes,
    // and a pipe from it would never end, holding the upload's permit and slot for ever.
    if (req.destroyed) onClose();
    onTakeover(() => {
      stop('takeover');
      req.socket.destroy(); // a silent earlier body: its client is gone or will resume
    });
    req.pipe(limit);
    try {
      await this.deps.tusStore.write(limit, id, offset);
    } catch (err) {
      if (limit.bytes > (size ?? limits.maxSizeBytes) - offset) throw tooLarge(limits);
      // A full store: 507 (never 500), the bytes that reached it kept.
      if (end === 'body' && !req.destroyed) throw (await this.deps.intake.storageFull(err, { protocol: 'tus', uploadId: id, log: requestContext.get(req)?.log })) ?? err;
    } finally {
      req.off('close', onClose);
    }
    const { offset: now } = await this.deps.resources.stateOf(id);
    if (end === 'body' && !req.complete) end = 'cut';
    if (end !== 'body') requestContext.get(req)?.log.info({ uploadId: id, offset: now, reason: end }, 'Resumable upload body ended early; received bytes kept');
    return { offset: now, end };
  }
}

/** 413 with the limits the client may stay under (Upload-Limit, where its interop version has it). */
export function tooLarge(limits: UploadLimits, version?: InteropVersion): AppError {
  return new AppError('ERR_TOO_LARGE', { headers: limitHeaders(limits, version) });
}

function limitHeaders(limits: UploadLimits, version?: InteropVersion): Record<string, string> {
  const limit = uploadLimitField(version, limits);
  return limit === undefined ? {} : { 'Upload-Limit': limit };
}

/** A plain decimal Content-Length, else undefined (chunked, or not a number). */
export function contentLengthOf(ctx: Context): number | undefined {
  const v = ctx.get('Content-Length');
  return /^\d{1,16}$/.test(v) ? Number(v) : undefined;
}
