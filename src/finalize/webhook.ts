/**
 * The optional "file published" notification: a JSON POST to [finalize] webhook_url, signed with
 * HMAC-SHA256 over "<timestamp>.<body>" using webhook_secret.
 *   X-HFS-Event: file.published
 *   X-HFS-Delivery: <job id>            the same on every redelivery: receivers dedupe on it
 *   X-HFS-Timestamp: <unix seconds>     reject old ones to stop replays
 *   X-HFS-Signature: sha256=<hex>       HMAC-SHA256(secret, `${timestamp}.${body}`)
 * Delivery is at least once: a crash after the receiver answered but before the job was marked
 * done sends it again. Any 2xx is success; anything else is a failure to retry.
 */
import { createHmac } from 'node:crypto';

export interface WebhookEvent {
  /** file.quarantined: the scanner flagged it (or it was too large to scan); it is not downloadable. */
  readonly event: 'file.published' | 'file.quarantined';
  /** The finalization job id (= X-HFS-Delivery). */
  readonly id: string;
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  readonly contentType: string;
  readonly protocol: string;
  readonly uploadId: string;
  readonly receivedAt: string;
  /** file.quarantined only: infected | oversize. */
  readonly reason?: string;
  /** file.quarantined only: the scanner's signature name, null when not scanned. */
  readonly signature?: string | null;
}

export interface WebhookTarget {
  readonly url: string;
  readonly secret: string;
  readonly timeoutMs: number;
}

export type WebhookResult =
  | { readonly ok: true; readonly status: number }
  | { readonly ok: false; readonly reason: 'network' | 'server_error' | 'timeout'; readonly status?: number; readonly message: string };

export function signWebhook(secret: string, timestampS: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestampS}.${body}`).digest('hex')}`;
}

/** Never throws for delivery failures; rejects only with `signal`'s reason when it aborts. */
export async function sendWebhook(target: WebhookTarget, event: WebhookEvent, nowMs: number, signal: AbortSignal): Promise<WebhookResult> {
  const body = JSON.stringify(event);
  const timestampS = Math.floor(nowMs / 1000);
  const timeout = AbortSignal.timeout(target.timeoutMs);
  try {
    const res = await fetch(target.url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': 'hmac-file-server',
        'X-HFS-Event': event.event,
        'X-HFS-Delivery': event.id,
        'X-HFS-Timestamp': String(timestampS),
        'X-HFS-Signature': signWebhook(target.secret, timestampS, body),
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.any([signal, timeout]),
    });
    await res.body?.cancel().catch(() => {});
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
    return { ok: false, reason: 'server_error', status: res.status, message: `webhook answered ${res.status}` };
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (timeout.aborted) return { ok: false, reason: 'timeout', message: `no answer within ${target.timeoutMs} ms` };
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, reason: 'network', message: cause?.code ?? cause?.message ?? (err as Error).message };
  }
}
