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
): Promise<void> {
  if (await control.slotTaken(slotPath)) throw new AppError('ERR_FILE_EXISTS');
  if (limits) await checkNewUploadLimits(kind, sizeBytes, limits);
  const gone = new AbortController();
  const onClose = () => gone.abort(new AppError('ERR_BAD_REQUEST', { message: 'client went away' }));
  req.once('close', onClose);
  try {
    const decision = await control.pass({ kind, sizeBytes, signal: gone.signal });
    if (!decision.ok) throw new AppError('ERR_QUEUE_FULL', { headers: { 'Retry-After': String(decision.retryAfterS) } });
  } finally {
    req.off('close', onClose);
  }
  // Its declared length counts from here: creations running at once cannot each fit the same
  // room. The upload is in the index by the time its request is over (or it was not created).
  const unfinished = limits?.unfinished;
  if (kind === 'create' && unfinished && unfinished.maxBytes > 0 && sizeBytes !== undefined) req.once('close', unfinished.reserve(sizeBytes));
}

async function checkNewUploadLimits(kind: 'create' | 'put', sizeBytes: number | undefined, limits: NewUploadLimits & { client: string; log: Logger }): Promise<void> {
  const { client, log, unfinished } = limits;
  if (kind === 'create' && unfinished && unfinished.maxBytes > 0) {
    // A declared length must fit whole; a deferred one while the total is below the cap.
    const committed = unfinished.committedBytes();
    if (sizeBytes === undefined ? committed >= unfinished.maxBytes : committed + sizeBytes > unfinished.maxBytes) {
      metrics.unfinishedRefused.inc();
      log.warn({ committedBytes: committed, sizeBytes, maxBytes: unfinished.maxBytes }, 'Upload creation refused: unfinished uploads would hold more than limits.max_unfinished_bytes');
      throw new AppError('ERR_UNFINISHED_FULL', { headers: { 'Retry-After': '60' } });
    }
  }
  const verdict = await limits.clients.allowCreation(client, limits.now());
  if (!verdict.ok) {
    metrics.clientLimited.inc({ limit: 'creations' });
    log.info({ client, retryAfterS: verdict.retryAfterS }, 'Upload refused: client started too many uploads this minute');
    throw new AppError('ERR_RATE_LIMITED', { headers: { 'Retry-After': String(verdict.retryAfterS) } });
  }
}
