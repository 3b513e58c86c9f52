/**
 * Helpers for the operations tests: a webhook receiver whose answer can be switched, a throwaway
 * redis-server, uploads through PUT and tus, and readers for admin answers.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, rawRequest, type RawResponse } from './http.js';
import { TEST_SECRET, type SpawnedServer } from './server.js';

export const ADMIN_TOKEN = 'ops-admin-token-0123456789abcdef';
export const AUTH = { Authorization: `Bearer ${ADMIN_TOKEN}` };

export interface Delivery {
  readonly path: string;
  readonly id: string;
  readonly status: number;
  /** file.published, file.quarantined */
  readonly event?: string;
}

/** Records every webhook delivery; `answer` decides the status per event (default 200). */
export interface WebhookReceiver {
  readonly url: string;
  readonly deliveries: Delivery[];
  answer: (event: { path: string; id: string }) => number;
  /** Resolves once a delivery matching `pred` has been answered (already or later). */
  waitFor(pred: (d: Delivery) => boolean): Promise<Delivery>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const deliveries: Delivery[] = [];
  const waiters: Array<{ pred: (d: Delivery) => boolean; resolve: (d: Delivery) => void }> = [];
  const receiver = {
    url: '',
    deliveries,
    answer: (_e: { path: string; id: string }) => 200,
    waitFor(pred: (d: Delivery) => boolean) {
      const seen = deliveries.find(pred);
      return seen ? Promise.resolve(seen) : new Promise<Delivery>((resolve) => waiters.push({ pred, resolve }));
    },
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { path: string; id: string; event?: string };
      const status = receiver.answer(event);
      res.writeHead(status).end();
      const d = { path: event.path, id: event.id, status, event: event.event };
      deliveries.push(d);
      for (const w of [...waiters]) {
        if (w.pred(d)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(d);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return receiver;
}

export { freePort, startRedis, type RedisServer } from './redis.js';

/** PUT `body` to a fresh v-signed slot at `path`. */
export async function putFile(server: SpawnedServer, path: string, body: Buffer | string): Promise<RawResponse> {
  const size = Buffer.byteLength(body);
  const slot = signSlotUrl({ secret: TEST_SECRET, path, size, baseUrl: server.uploadUrl });
  return rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', headers: { 'Content-Length': size }, body });
}

/**
 * One tus creation-with-upload of `body` at `path`; `sent` bytes (default all) go with it.
 * `sha256` is declared in the metadata (a wrong one: 422 at the last byte, or, with
 * `[testing] skip_intake_checksum`, a dead letter at once).
 */
export async function tusCreate(server: SpawnedServer, path: string, body: Buffer, options: { sent?: number; sha256?: string } = {}): Promise<{ id: string; location: string; res: RawResponse }> {
  const slot = signSlotUrl({ secret: TEST_SECRET, path, size: body.length, baseUrl: server.uploadUrl });
  const sent = body.subarray(0, options.sent ?? body.length);
  const headers: Record<string, string | number> = { 'Tus-Resumable': '1.0.0', 'Upload-Length': body.length, 'Upload-Slot': slot.url };
  if (options.sha256 !== undefined) headers['Upload-Metadata'] = `sha256 ${Buffer.from(options.sha256).toString('base64')}`;
  if (sent.length > 0) headers['Content-Type'] = 'application/offset+octet-stream';
  const res = await rawRequest(server.baseUrl, '/files/', { method: 'POST', headers, body: sent });
  if (res.status !== 201) throw new Error(`tus creation answered ${res.status}: ${res.text}`);
  const location = pathOf(String(res.headers.location));
  return { id: location.split('/').pop()!, location, res };
}

/** Lines of an NDJSON admin answer (verify, recover). */
export function ndjson(res: RawResponse): Array<Record<string, unknown>> {
  return res.text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Prometheus text: the value of the one sample with this name and these labels (exact label set match not required). */
export function sampleValue(metricsText: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(name) || !/[ {]/.test(line[name.length] ?? '')) continue;
    const m = /^([^{ ]+)(?:\{([^}]*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}
