/**
 * XEP-0363 PUT: the whole file in one request, authorized by the slot URL's signature. The body
 * streams to a temp file and is published only once every declared byte arrived, so a client
 * that drops mid-PUT leaves nothing behind but a temp file that is removed at once.
 */
import { unlink } from 'node:fs/promises';
import type { Context } from 'koa';
import { authorizeSlot, decodeSlotPath, type SlotPolicy } from '../auth/index.js';
import { AppError } from '../errors.js';
import { expectedSha256FromHeaders, type IntakeControl, type UploadFinalizer } from '../finalize/index.js';
import { admitNewUpload } from './intake.js';
import { metrics } from '../observability/index.js';
import type { PublishedStore } from '../storage/index.js';
import { ByteLimit } from '../transfer/index.js';
import { receiveToFile } from './receive-file.js';
import { allowBody, requestContext } from './request-context.js';
import { endPutBody, guardUploadBody, type GuardDeps } from './upload-guard.js';

export interface PutDeps {
  guard: GuardDeps;
  policy: SlotPolicy;
  maxUploadBytes: number;
  store: PublishedStore;
  finalizer: UploadFinalizer & IntakeControl;
  now: () => number;
}

export async function handlePut(ctx: Context, rawPath: string, deps: PutDeps): Promise<void> {
  const path = decodeSlotPath(rawPath);
  const size = parseContentLength(ctx.get('Content-Length'));
  const decision = authorizeSlot(
    {
      path,
      query: new URLSearchParams(ctx.querystring),
      size,
      contentType: ctx.req.headers['content-type'], // exactly as sent: v2 signs it unnormalised
      nowMs: deps.now(),
    },
    deps.policy,
  );
  if (!decision.ok) throw new AppError(decision.code);
  const { slot } = decision;
  // Decided from Content-Length before a byte is read; without one, enforced while streaming.
  if (size !== undefined && size > deps.maxUploadBytes) throw new AppError('ERR_TOO_LARGE');
  if (await deps.store.stat(path)) throw new AppError('ERR_FILE_EXISTS');
  const expectedSha256 = expectedSha256FromHeaders((name) => ctx.get(name) || undefined);
  if (expectedSha256 === null) throw new AppError('ERR_BAD_REQUEST', { message: 'The declared checksum is malformed' });
  await admitNewUpload(ctx, deps.finalizer, 'put', path, size);

  const release = await guardUploadBody(ctx, deps.guard, {
    protocol: 'put',
    fileBytes: size,
    requestBytes: size ?? deps.maxUploadBytes,
    ender: endPutBody,
  });
  const rc = requestContext.get(ctx.req);
  const uploadId = rc?.requestId ?? 'put';
  const temp = deps.store.newIncomingFile();
  const limit = new ByteLimit(size ?? deps.maxUploadBytes);
  metrics.uploadsCreated.inc({ protocol: 'put' });
  metrics.activeUploads.inc();
  try {
    allowBody(ctx.req, ctx.res);
    await receiveToFile(ctx.req, limit, temp);
    metrics.bytesReceived.inc({ protocol: 'put' }, limit.bytes);
    if (size !== undefined && limit.bytes !== size) throw new AppError('ERR_UPLOAD_INCOMPLETE');
    metrics.uploadsFinished.inc({ protocol: 'put' });
    const outcome = await deps.finalizer.finalize({
      protocol: 'put',
      uploadId,
      slotPath: path,
      contentType: slot.contentType,
      size: limit.bytes,
      sourceFile: temp,
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
    throw err;
  } finally {
    metrics.activeUploads.dec();
    release();
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
