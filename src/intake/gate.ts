import type { IncomingMessage } from 'node:http';
import { AppError } from '../errors.js';
import type { IntakeControl } from '../finalize/index.js';
import { metrics, type Logger } from '../observability/index.js';
import type { ClientCaps } from '../transfer/index.js';

/** Per-client and global bounds on starting uploads (issue 9.1, 9.2). */
export interface NewUploadLimits {
  clients: ClientCaps;
  /**
   * tus creations only: what unfinished uploads hold or were declared to reach (with creations
   * admitted but not yet recorded), the reservation a new creation makes, and the cap (0 = none).
   */
  unfinished?: { committedBytes: () => number; reserve: (bytes: number) => () => void; maxBytes: number };
  now: () => number;
}

/**
 * Before a new upload (PUT or tus creation) may start: refuse a slot that a queued upload already
 * holds (it would end in 409 after the whole body), apply the per-client start rate and the cap
 * on bytes held by unfinished uploads, and pass the finalization queue's intake gate
 * (backpressure delays; emergency mode answers 503 with Retry-After).
 */
export async function gateNewUpload(
  req: IncomingMessage,
  control: IntakeControl,
  kind: 'create' | 'put',
  slotPath: string,
  sizeBytes: number | undefined,
  limits?: NewUploadLimits & { client: string; log: Logger },
  options: { newBytes?: boolean } = {},
): Promise<void> {
  if (await control.slotTaken(slotPath)) throw new AppError('ERR_FILE_EXISTS');
  // A concatenation's final brings no new bytes (its parts were counted when they were created).
  const release = kind === 'create' && limits?.unfinished && options.newBytes !== false ? holdUnfinishedRoom(req, sizeBytes, limits.unfinished, limits.log) : () => {};
  const gone = new AbortController();
  const onClose = () => gone.abort(new AppError('ERR_BAD_REQUEST', { message: 'client went away' }));
  req.once('close', onClose);
  try {
    if (limits) await checkClientStarts(limits);
    const decision = await control.pass({ kind, sizeBytes, signal: gone.signal });
    if (!decision.ok) throw new AppError('ERR_QUEUE_FULL', { headers: { 'Retry-After': String(decision.retryAfterS) } });
  } catch (err) {
    release();
    throw err;
  } finally {
    req.off('close', onClose);
  }
}

/**
 * limits.max_unfinished_bytes for new bytes of a tus creation: refused (ERR_UNFINISHED_FULL) when
 * its declared length would take the unfinished uploads past the cap (a deferred length: when
 * they are at it already); otherwise the length is reserved in the same step, so creations at
 * once cannot each fit the same room, until the request is over (its upload is in the index by
 * then, or it was not created). Returns the early release for a refusal that follows.
 */
export function holdUnfinishedRoom(req: IncomingMessage, sizeBytes: number | undefined, unfinished: NonNullable<NewUploadLimits['unfinished']>, log: Logger): () => void {
  if (unfinished.maxBytes === 0) return () => {};
  const committed = unfinished.committedBytes();
  if (sizeBytes === undefined ? committed >= unfinished.maxBytes : committed + sizeBytes > unfinished.maxBytes) {
    metrics.unfinishedRefused.inc();
    log.warn({ committedBytes: committed, sizeBytes, maxBytes: unfinished.maxBytes }, 'Upload creation refused: unfinished uploads would hold more than limits.max_unfinished_bytes');
    throw new AppError('ERR_UNFINISHED_FULL', { headers: { 'Retry-After': '60' } });
  }
  if (sizeBytes === undefined) return () => {};
  const release = unfinished.reserve(sizeBytes);
  if (req.closed) release();
  else req.once('close', release);
  return release;
}

async function checkClientStarts(limits: NewUploadLimits & { client: string; log: Logger }): Promise<void> {
  const { client, log } = limits;
  const verdict = await limits.clients.allowCreation(client, limits.now());
  if (!verdict.ok) {
    metrics.clientLimited.inc({ limit: 'creations' });
    log.info({ client, retryAfterS: verdict.retryAfterS }, 'Upload refused: client started too many uploads this minute');
    throw new AppError('ERR_RATE_LIMITED', { headers: { 'Retry-After': String(verdict.retryAfterS) } });
  }
}
