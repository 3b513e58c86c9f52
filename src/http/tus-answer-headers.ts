/** What the tus endpoint's error answers carry beyond @tus/server's, and the 507 of a full store. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'koa';
import type { AppError } from '../errors.js';
import type { Intake } from '../intake/index.js';
import type { TusDoorStore } from '../storage/index.js';
import { requestContext } from './request-context.js';

/**
 * @tus/server writes its answers as web Responses: a string body brings `Content-Type:
 * text/plain`, and onResponseError cannot set headers. The headers the error mapping chose
 * (JSON, Retry-After) replace those of the same name when the answer's head is written.
 */
export function answerHeadersAtWriteHead(res: ServerResponse, chosen: () => Record<string, string> | undefined): void {
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  (res as unknown as { writeHead: (...args: unknown[]) => ServerResponse }).writeHead = (...args: unknown[]) => {
    const headers = chosen();
    if (headers === undefined) return writeHead(...args);
    const replaced = new Set(Object.keys(headers).map((n) => n.toLowerCase()));
    const without = (given: unknown): unknown => {
      if (Array.isArray(given)) {
        const pairs: unknown[] = [];
        for (let i = 0; i + 1 < given.length; i += 2) if (!replaced.has(String(given[i]).toLowerCase())) pairs.push(given[i], given[i + 1]);
        return pairs;
      }
      if (given !== null && typeof given === 'object') {
        return Object.fromEntries(Object.entries(given).filter(([name]) => !replaced.has(name.toLowerCase())));
      }
      return given;
    };
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    return writeHead(...args.map(without));
  };
}

/**
 * The store ran out of room mid-body: the 507 to answer (never 500; docs/storage-space.md), or
 * null for any other failure. A PATCH keeps what reached the disk and resumes once space is
 * back; a creation-with-upload (`created`) that did not fit is removed: its client got no
 * Location, so nobody could resume it.
 */
export async function storageFullAnswer(
  deps: { readonly intake: Pick<Intake, 'storageFull'>; readonly tusStore: Pick<TusDoorStore, 'remove'> },
  req: IncomingMessage,
  created: string | undefined,
  thrown: unknown,
): Promise<AppError | null> {
  const uploadId = created ?? req.url?.split('?')[0]?.split('/').pop() ?? 'unknown';
  const err = await deps.intake.storageFull(thrown, { protocol: 'tus', uploadId, log: requestContext.get(req)?.log });
  if (err !== null && created !== undefined && req.method === 'POST') await deps.tusStore.remove(created).catch(() => {});
  return err;
}

/** A header holding a whole number, else undefined. */
export function wholeHeader(ctx: Context, name: string): number | undefined {
  return /^\d{1,16}$/.test(ctx.get(name)) ? Number(ctx.get(name)) : undefined;
}
