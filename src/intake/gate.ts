import type { IncomingMessage } from 'node:http';
import { AppError } from '../errors.js';
import type { IntakeControl } from '../finalize/index.js';

/**
 * Before a new upload (PUT or tus creation) may start: refuse a slot that a queued upload already
 * holds (it would end in 409 after the whole body), and pass the finalization queue's intake gate
 * (backpressure delays; emergency mode answers 503 with Retry-After).
 */
export async function gateNewUpload(req: IncomingMessage, control: IntakeControl, kind: 'create' | 'put', slotPath: string, sizeBytes: number | undefined): Promise<void> {
  if (await control.slotTaken(slotPath)) throw new AppError('ERR_FILE_EXISTS');
  const gone = new AbortController();
  const onClose = () => gone.abort(new AppError('ERR_BAD_REQUEST', { message: 'client went away' }));
  req.once('close', onClose);
  try {
    const decision = await control.pass({ kind, sizeBytes, signal: gone.signal });
    if (!decision.ok) throw new AppError('ERR_QUEUE_FULL', { headers: { 'Retry-After': String(decision.retryAfterS) } });
  } finally {
    req.off('close', onClose);
  }
}
