/**
 * Every error @tus/server answers becomes our JSON `{code, message, requestId}` with a JSON
 * Content-Type (issue 10.6). Errors its handlers throw pass through onResponseError (mapped in
 * tus-endpoint.ts); a few are written as plain text without it (an invalid header: "Invalid
 * upload-offset"; an unknown route), and even the mapped ones were sent as text/plain. All of
 * them leave through Server.write, which this subclass completes.
 */
import { Server } from '@tus/server';
import { ERRORS as TUS_ERRORS } from '@tus/utils';
import { metrics } from '../observability/index.js';
import type { RequestContext } from './request-context.js';

/** Where a tus error means what one of our codes says: over max_upload_size is ERR_TOO_LARGE on every door. */
const SAME_AS_OURS: Record<string, string> = { ERR_MAX_SIZE_EXCEEDED: 'ERR_TOO_LARGE' };

/** tus error bodies become codes: `ERR_TUS_<name>` unless one of ours says the same; each tus error keeps its status. */
export const TUS_CODES = new Map<string, string>(Object.entries(TUS_ERRORS).map(([name, e]) => [(e as { body: string }).body, SAME_AS_OURS[name] ?? `ERR_TUS_${name}`]));

const codeForStatus = (status: number) =>
  status === 404 ? 'ERR_NOT_FOUND' : status === 412 ? 'ERR_TUS_RESUMABLE_REQUIRED' : status === 413 ? 'ERR_TOO_LARGE' : status === 400 ? 'ERR_TUS_INVALID_HEADER' : status < 500 ? 'ERR_BAD_REQUEST' : 'ERR_INTERNAL';

function isErrorJson(body: string): boolean {
  if (!body.startsWith('{')) return false;
  try {
    return typeof (JSON.parse(body) as { code?: unknown }).code === 'string';
  } catch {
    return false;
  }
}

export class JsonErrorTusServer extends Server {
  /**
   * The request a response is being written for (write() itself does not see it). The endpoint
   * answers from its request scope (TusWriteScope.request): one AsyncLocalStorage per tus
   * request instead of two, each of which costs a property on every promise and async resource.
   */
  currentRequest: () => RequestContext | undefined = () => undefined;

  override async write(...[context, headers, status, body = '']: Parameters<Server['write']>): ReturnType<Server['write']> {
    if (status < 400) return super.write(context, headers, status, body);
    headers.set('Content-Type', 'application/json; charset=utf-8');
    if (isErrorJson(body)) return super.write(context, headers, status, body);
    const rc = this.currentRequest();
    const code = TUS_CODES.get(body) ?? codeForStatus(status);
    metrics.errorsByCode.inc({ code });
    if (rc) rc.errorCode = code;
    // tus's own texts ("Invalid upload-offset", "Not found") name the header at fault and nothing internal.
    const message = status >= 500 ? 'Internal server error' : body.trim() || 'The request is malformed';
    return super.write(context, headers, status, JSON.stringify({ code, message, ...(rc ? { requestId: rc.requestId } : {}) }));
  }
}
