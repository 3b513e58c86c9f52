/**
 * XEP-0363 PUT: the whole file in one request, authorized by the slot URL's signature. The body
 * streams to the incoming store (a temp file, or an S3 multipart upload) and is published only
 * once every declared byte arrived, so a client that drops mid-PUT leaves nothing behind. Its
 * sha256 is computed as the bytes pass, so finalization never reads them again to hash them.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from 'koa';
import { decodeSlotPath } from '../auth/index.js';
import { AppError } from '../errors.js';
import { expectedSha256FromHeaders } from '../finalize/index.js';
import { endError, type BodyEnder, type Intake } from '../intake/index.js';
import { metrics } from '../observability/index.js';
import type { IncomingStore, PublishedStore } from '../storage/index.js';
import { ByteLimit } from '../transfer/index.js';
import { allowBody, requestContext } from './request-context.js';
import type { RufhUploads } from './rufh-uploads.js';

export interface PutDeps {
  intake: Intake;
  /** Where the body streams to (a temp file, an S3 multipart upload). */
  incoming: IncomingStore;
  /** The published files: a repeated PUT of a slot's file is compared with it. */
  published: Pick<PublishedStore, 'record' | 'stat'>;
  /** IETF Resumable Uploads: a PUT asking for it becomes a resumable upload once authorized. */
  rufh?: RufhUploads | undefined;
}

export async function handlePut(ctx: Context, rawPath: string, deps: PutDeps): Promise<void> {
  const path = decodeSlotPath(rawPath);
  const size = parseContentLength(ctx.get('Content-Length'));
  const { intake } = deps;
  // A supported Upload-Draft-Interop-Version asks for an upgrade; any other request is the plain PUT.
  const upgrade = deps.rufh?.versionOf(ctx);
  const fileBytes = upgrade ? deps.rufh!.fileSizeOf(ctx, upgrade, size) : size;
  let taken: AppError | undefined;
  const slot = await intake
    .authorize({
      path,
      query: new URLSearchParams(ctx.querystring),
      sizeBytes: fileBytes,
      contentType: ctx.req.headers['content-type'], // exactly as sent: v2 signs it unnormalised
    })
    .catch((err: unknown) => {
      if (!upgrade && err instanceof AppError && err.code === 'ERR_FILE_EXISTS') {
        taken = err;
        return null;
      }
      if (upgrade && err instanceof AppError && err.code === 'ERR_LENGTH_REQUIRED') {
        throw new AppError('ERR_LENGTH_REQUIRED', { message: 'This slot binds the upload size: an upload sent in parts declares Upload-Length (or send the whole file in one request)' });
      }
      throw err;
    });
  if (slot === null) return repeatedPut(ctx, path, size, () => publishedUpload(path, deps), taken);
  const expectedSha256 = expectedSha256FromHeaders((name) => ctx.get(name) || undefined);
  if (expectedSha256 === null) throw new AppError('ERR_BAD_REQUEST', { message: 'The declared checksum is malformed' });
  if (upgrade) return deps.rufh!.upgradePut(ctx, upgrade, { path, slot, fileBytes, expectedSha256 });
  const rc = requestContext.get(ctx.req);
  try {
    await intake.gate(ctx.req, 'put', path, size, rc?.log);
  } catch (err) {
    // The slot is held by an upload on its way to publication: a retry whose first answer was lost.
    // Or published meanwhile (its job done), at this instance or another one.
    if (err instanceof AppError && err.code === 'ERR_FILE_EXISTS') return repeatedPut(ctx, path, size, () => heldUpload(path, deps), err);
    throw err;
  }

  // When the server ends the body (stall, floor, shutdown, takeover), the client gets an answer
  // it can act on (408/503/409 with Retry-After and Connection: close), not a bare reset
  // (issue 18.9). Once every byte arrived, nothing ends it: its 201 is on the way (issue 9.6).
  const serverEnd = new AbortController();
  let bodyDone = false;
  const ender: BodyEnder = (_req, reason) => {
    if (!bodyDone && !ctx.req.complete) serverEnd.abort(endError(reason));
  };
  // Hashed as the body streams in: a declared checksum's mismatch is answered (422) before anything
  // is published, and finalization gets the digest instead of reading the bytes again.
  const digest = createHash('sha256');
  // Without a Content-Length the size cap is enforced while streaming; the same stage hashes.
  const limit = new ByteLimit(size ?? intake.maxUploadBytes, [digest]);
  const release = await intake.guardBody(ctx.req, {
    protocol: 'put',
    fileBytes: size,
    requestBytes: size ?? intake.maxUploadBytes,
    slotKey: path,
    uploadId: path,
    ender,
    log: rc?.log,
    bodyBytes: () => limit.bytes,
  });
  const uploadId = rc?.requestId ?? 'put';
  const incoming = deps.incoming.begin(uploadId);
  metrics.uploadsCreated.inc({ protocol: 'put' });
  try {
    allowBody(ctx.req, ctx.res);
    await receiveBody(ctx.req, limit, incoming.sink, serverEnd.signal);
    bodyDone = true;
    if (size !== undefined && limit.bytes !== size) throw new AppError('ERR_UPLOAD_INCOMPLETE');
    const sha256 = digest.digest('hex');
    if (typeof expectedSha256 === 'string' && sha256 !== expectedSha256) throw new AppError('ERR_UPLOAD_CHECKSUM_MISMATCH');
    const source = await incoming.complete();
    const outcome = await intake.complete({
      protocol: 'put',
      uploadId,
      slotPath: path,
      contentType: slot.contentType,
      size: limit.bytes,
      source,
      sha256,
      ...(expectedSha256 !== undefined ? { expectedSha256 } : {}),
    });
    if (outcome === 'exists') {
      // A newer request for the slot (the client's retry) won while this body still arrived: the
      // same bytes are the same upload, which the retry stored; anything else keeps the 409.
      const held = await heldUpload(path, deps);
      if (held === null || held.size !== limit.bytes || held.sha256 !== sha256) throw new AppError('ERR_FILE_EXISTS');
      await incoming.abort();
      rc?.log.info({ slotPath: path, size: limit.bytes }, "PUT with the slot's file's bytes, stored meanwhile by another request: answered 201");
    }
    ctx.status = 201;
    ctx.body = ''; // koa turns a null body into 204; go-sendxmpp accepts only 200 or 201
  } catch (err) {
    // Accepted bytes belong to finalization; anything else (a failed body, a refusal) is removed.
    await incoming.abort();
    if (isClientAbort(err)) {
      rc?.log.info({ bytes: limit.bytes }, 'PUT aborted by the client; nothing published');
      return;
    }
    throw (await intake.storageFull(err, { protocol: 'put', uploadId, log: rc?.log })) ?? err;
  } finally {
    release();
  }
}

/**
 * A signed PUT for a slot that holds a file already: published, or accepted and still on its way
 * through finalization. HTTP stacks retry a PUT whose answer was lost (a network switch after the
 * last byte; PUT is idempotent, RFC 9110 §9.2.2), and an XMPP client told 409 then reports a
 * failed upload of a file that is there. So a repeat with the same bytes (same size, same sha256
 * as the slot's file) gets the 201 the first request earned; any other body keeps the 409. The
 * body is read (at most the held size) and hashed, never stored.
 */
async function repeatedPut(ctx: Context, path: string, size: number | undefined, held: () => Promise<HeldFile | null>, refusal = new AppError('ERR_FILE_EXISTS')): Promise<void> {
  const file = await held();
  if (file === null || size !== file.size || file.sha256 === undefined) throw refusal;
  const digest = createHash('sha256');
  const limit = new ByteLimit(size, [digest]);
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  const never = new AbortController();
  allowBody(ctx.req, ctx.res);
  try {
    await receiveBody(ctx.req, limit, discard, never.signal);
  } catch (err) {
    if (isClientAbort(err)) return;
    throw err;
  }
  if (limit.bytes !== size || digest.digest('hex') !== file.sha256) throw refusal;
  requestContext.get(ctx.req)?.log.info({ slotPath: path, size }, "Repeated PUT with the slot's file's bytes: answered 201 again");
  ctx.status = 201;
  ctx.body = '';
}

/** What a repeated PUT is compared with: the slot's file's size and sha256 (absent: not known, so never equal). */
interface HeldFile {
  readonly size: number;
  readonly sha256: string | undefined;
}

/** The slot's file on its way through finalization, else published. */
async function heldUpload(path: string, deps: PutDeps): Promise<HeldFile | null> {
  return (await deps.intake.pendingUpload(path)) ?? publishedUpload(path, deps);
}

async function publishedUpload(path: string, deps: PutDeps): Promise<HeldFile | null> {
  const [file, record] = await Promise.all([deps.published.stat(path), deps.published.record(path)]);
  return file === null ? null : { size: file.size, sha256: typeof record?.sha256 === 'string' ? record.sha256 : undefined };
}

/**
 * Streams the request body through `limit` (count, cap, hash) into `sink`. Unlike pipeline(req, …), a server-side
 * end (`signal`) stops reading without destroying the request, so the socket can still carry
 * the error answer.
 */
async function receiveBody(req: IncomingMessage, limit: ByteLimit, sink: Writable, signal: AbortSignal): Promise<void> {
  const fail = (err: unknown) => {
    req.unpipe(limit);
    req.pause();
    limit.destroy(err as Error);
  };
  const onAbort = () => fail(signal.reason);
  const onError = (err: Error) => fail(err);
  const onClose = () => {
    if (!req.complete) fail(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  req.on('error', onError);
  req.on('close', onClose);
  try {
    req.pipe(limit);
    await pipeline(limit, sink);
  } finally {
    signal.removeEventListener('abort', onAbort);
    req.off('error', onError);
    req.off('close', onClose);
  }
}

function parseContentLength(header: string): number | undefined {
  if (header === '') return undefined;
  if (!/^\d{1,16}$/.test(header)) throw new AppError('ERR_BAD_REQUEST', { message: 'Content-Length is not a whole number' });
  return Number(header);
}

/** The client went away mid-body (as opposed to a storage failure, which also ends the pipeline). */
function isClientAbort(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as Error).message === 'aborted';
}
