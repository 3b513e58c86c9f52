/**
 * Long admin runs (verify, recover) answer with newline-delimited JSON, so the CLI can draw a
 * progress bar for work done inside the server:
 *   {"progress":{"done":…,"total":…,"unit":"bytes"}}   at most every 200 ms
 *   {"result":…}                                        last line on success
 *   {"error":{"code":"ERR_…","message":"…"}}            last line on failure (status is already 200)
 */
import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import { toClientError } from '../errors.js';
import type { Progress, ProgressSink } from './types.js';

export const NDJSON = 'application/x-ndjson';
const EVERY_MS = 200;

/** Starts `run`; returns the response body that streams its progress and outcome. */
export function streamRun<T>(ctx: Context, run: (progress: ProgressSink, signal: AbortSignal) => Promise<T>, onError?: (err: unknown) => void): PassThrough {
  const out = new PassThrough();
  const aborted = new AbortController();
  ctx.req.once('close', () => {
    if (!ctx.res.writableFinished) aborted.abort();
  });
  let last = 0;
  const progress: ProgressSink = (p) => {
    const now = Date.now();
    if (now - last < EVERY_MS && p.done < p.total) return;
    last = now;
    out.write(`${JSON.stringify({ progress: p })}\n`);
  };
  ctx.type = NDJSON;
  void run(progress, aborted.signal).then(
    (result) => out.end(`${JSON.stringify({ result })}\n`),
    (err: unknown) => {
      // The client hung up (a cancelled CLI): not a failure of the run, nothing to log as one.
      if (aborted.signal.aborted) return void out.end();
      onError?.(err);
      const e = toClientError(err);
      out.end(`${JSON.stringify({ error: { code: e.code, message: e.message } })}\n`);
    },
  );
  return out;
}

/** Reads such a body: calls `progress` per progress line, resolves the result, rejects on an error line. */
export async function readRun<T>(body: AsyncIterable<Uint8Array>, progress?: (p: Progress) => void): Promise<T> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line === '') continue;
      const msg = JSON.parse(line) as { progress?: Progress; result?: T; error?: { code: string; message: string } };
      if (msg.progress) progress?.(msg.progress);
      else if (msg.error) throw Object.assign(new Error(msg.error.message), { code: msg.error.code });
      else if ('result' in msg) return msg.result as T;
    }
  }
  throw new Error('the server ended the response before the result');
}
