/**
 * XEP-0363 PUT: the whole file in one request, authorized by the slot URL's signature. The body
 * streams to a temp file and is published only once every declared byte arrived, so a client
 * that drops mid-PUT leaves nothing behind but a temp file that is removed at once.
 */
import { createHash } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from 'koa';
import { decodeSlotPath } from '../auth/index.js';
import { AppError } from '../errors.js';
import { expectedSha256FromHeaders } from '../finalize/index.js';
import { endError, type BodyEnder, type Intake } from '../intake/index.js';
import { metrics } from '../observability/index.js';
import { fileSource, HashingTap, type LocalIncoming, type PublishedStore } from '../storage/index.js';
import { ByteLimit } from '../transfer/index.js';
import { receiveToFile } from './receive-file.js';
import { allowBody, requestContext } from './request-context.js';
import type { RufhUploads } from './rufh-uploads.js';

export interface PutDeps {
  intake: Intake;
  /** Where the body streams to (its temp files). */
  store: PublishedStore & LocalIncoming;
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
  const slot = await intake.authorize({
    path,
    query: new URLSearchParams(ctx.querystring),
    sizeBytes: fileBytes,
    contentType: ctx.req.headers['content-type'], // exactly as sent: v2 signs it unnormalised
  });
  const expectedSha256 = expectedSha256FromHeaders((name) => ctx.get(name) || undefined);
  if (expectedSha256 === null) throw new AppError('ERR_BAD_REQUEST', { message: 'The declared checksum is malformed' });
  if (upgrade) return deps.rufh!.upgradePut(ctx, upgrade, { path, slot, fileBytes, expectedSha256 });
  const rc = requestContext.get(ctx.req);
  await intake.gate(ctx.req, 'put', path, size, rc?.log);

  // Without a Content-Length the size cap is enforced while streaming.
  const limit = new ByteLimit(size ?? intake.maxUploadBytes);
  // When the server ends the body (stall, floor, shutdown, takeover), the client gets an answer
  // it can act on (408/503/409 with Retry-After and Connection: close), not a bare reset
  // (issue 18.9). Once every byte arrived, nothing ends it: its 201 is on the way (issue 9.6).
  const serverEnd = new AbortController();
  let bodyDone = false;
  const ender: BodyEnder = (_req, reason) => {
    if (!bodyDone && !ctx.req.complete) serverEnd.abort(endError(reason));
  };
  // A declared checksum is checked as the body streams in, so a mismatch is answered (422) before anything is published.
  const digest = typeof expectedSha256 === 'string' ? createHash('sha256') : null;
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
  const temp = deps.store.newIncomingFile();
  metrics.uploadsCreated.inc({ protocol: 'put' });
  try {
    allowBody(ctx.req, ctx.res);
    await receiveToFile(temp, (file) => receiveBody(ctx.req, limit, [new HashingTap(digest ? [digest] : []), file], serverEnd.signal));
    bodyDone = true;
    if (size !== undefined && limit.bytes !== size) throw new AppError('ERR_UPLOAD_INCOMPLETE');
    if (digest && digest.digest('hex') !== expectedSha256) throw new AppError('ERR_UPLOAD_CHECKSUM_MISMATCH');
    const outcome = await intake.complete({
      protocol: 'put',
      uploadId,
      slotPath: path,
      contentType: slot.contentType,
      size: limit.bytes,
      source: fileSource(temp, limit.bytes),
      ...(expectedSha256 !== undefined ? { expectedSha256 } : {}),
    });
    if (outcome === 'exists') throw new AppError('ERR_FILE_EXISTS');
    ctx.status = 201;
    ctx.body = ''; // koa turns a null body into 204; go-sendxmpp accepts only 200 or 201
  } catch (err) {
    await unlink(temp).catch(() => {}); // a body that failed is gone already (receiveToFile); a later failure leaves the file
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
 * Streams the request body through `limit` and `rest`. Unlike pipeline(req, …), a server-side
 * end (`signal`) stops reading without destroying the request, so the socket can still carry
 * the error answer.
 */
async function receiveBody(req: IncomingMessage, limit: ByteLimit, rest: [Transform, Writable], signal: AbortSignal): Promise<void> {
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
    await pipeline(limit, ...rest);
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
