/** OpsApi over a running server's admin API (bearer token). */
import { readRun } from '../ndjson.js';
import {
  EXIT,
  OpsFailure,
  type DeadLetterSelector,
  type DeadLetterView,
  type JobView,
  type ListJobsQuery,
  type OpsApi,
  type ProgressSink,
  type QuarantineView,
  type QueueStatusView,
  type RecoveryReport,
  type RetryView,
  type SpaceReport,
  type UploadView,
  type VerifyReport,
} from '../types.js';

type Query = Record<string, string | number | boolean | undefined>;

export class AdminClient implements OpsApi {
  readonly mode = 'online' as const;
  readonly #base: string;
  readonly #token: string;
  readonly #timeoutMs: number;

  /** `baseUrl`: the admin API's base, e.g. http://127.0.0.1:8080/admin or http://127.0.0.1:9090. */
  constructor(baseUrl: string, token: string, timeoutMs = 30_000) {
    this.#base = baseUrl.replace(/\/+$/, '');
    this.#token = token;
    this.#timeoutMs = timeoutMs;
  }

  async listUploads(): Promise<UploadView[]> {
    return (await this.#json<{ uploads: UploadView[] }>('GET', '/uploads')).uploads;
  }

  showUpload(id: string): Promise<UploadView> {
    return this.#json('GET', `/uploads/${segment(id)}`);
  }

  async terminateUpload(id: string): Promise<void> {
    await this.#json('DELETE', `/uploads/${segment(id)}`);
  }

  queueStatus(): Promise<QueueStatusView> {
    return this.#json('GET', '/queue');
  }

  async listJobs(q: ListJobsQuery): Promise<JobView[]> {
    const query: Query = { state: q.states?.join(','), priority: q.priority, limit: q.limit, offset: q.offset };
    return (await this.#json<{ jobs: JobView[] }>('GET', '/queue/jobs', query)).jobs;
  }

  retryJob(id: string): Promise<RetryView> {
    return this.#json('POST', `/queue/jobs/${segment(id)}/retry`);
  }

  async listDeadLetters(q: { limit?: number; offset?: number }): Promise<DeadLetterView[]> {
    return (await this.#json<{ deadLetters: DeadLetterView[] }>('GET', '/dead-letters', q)).deadLetters;
  }

  async replayDeadLetters(target: DeadLetterSelector): Promise<number> {
    const path = target === 'all' ? '/dead-letters/replay' : `/dead-letters/${segment(target.id)}/replay`;
    return (await this.#jsonOrNull<{ replayed: number }>('POST', path))?.replayed ?? 0;
  }

  async purgeDeadLetters(target: DeadLetterSelector): Promise<number> {
    const [method, path] = target === 'all' ? (['POST', '/dead-letters/purge'] as const) : (['DELETE', `/dead-letters/${segment(target.id)}`] as const);
    return (await this.#jsonOrNull<{ purged: number }>(method, path))?.purged ?? 0;
  }

  async recover(options: { dryRun: boolean }, progress?: ProgressSink): Promise<RecoveryReport> {
    const res = await this.#fetch('POST', '/recover', { dry_run: options.dryRun }, false);
    return this.#run<RecoveryReport>(res, progress);
  }

  async verify(progress?: ProgressSink): Promise<VerifyReport> {
    const res = await this.#fetch('POST', '/verify', {}, false);
    return this.#run<VerifyReport>(res, progress);
  }

  space(): Promise<SpaceReport> {
    return this.#json('GET', '/space');
  }

  async listQuarantine(): Promise<QuarantineView[]> {
    return (await this.#json<{ quarantined: QuarantineView[] }>('GET', '/quarantine')).quarantined;
  }

  async releaseQuarantined(id: string): Promise<QuarantineView> {
    const answer = await this.#jsonOrNull<{ released: QuarantineView }>('POST', `/quarantine/${segment(id)}/release`);
    if (answer === null) throw new OpsFailure(`no quarantined file ${id}`);
    return answer.released;
  }

  async deleteQuarantined(id: string): Promise<void> {
    if ((await this.#jsonOrNull('DELETE', `/quarantine/${segment(id)}`)) === null) throw new OpsFailure(`no quarantined file ${id}`);
  }

  async close(): Promise<void> {}

  async #run<T>(res: Response, progress?: ProgressSink): Promise<T> {
    if (res.body === null) throw new OpsFailure('the admin API sent no body');
    try {
      // Node's web streams are async iterable (the DOM lib typing does not say so).
      return await readRun<T>(res.body as unknown as AsyncIterable<Uint8Array>, progress);
    } catch (err) {
      throw new OpsFailure(`the server's run failed: ${(err as Error).message}`);
    }
  }

  async #json<T>(method: string, path: string, query: Query = {}): Promise<T> {
    const res = await this.#fetch(method, path, query, true);
    try {
      return (await res.json()) as T;
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') throw this.#timedOut();
      throw err;
    }
  }

  #timedOut(): OpsFailure {
    return new OpsFailure(`the admin API at ${this.#base} did not answer within ${this.#timeoutMs / 1000} s`);
  }

  /** null when the server answers 404 ERR_NOT_FOUND (an unknown id). */
  async #jsonOrNull<T>(method: string, path: string): Promise<T | null> {
    const res = await this.#fetch(method, path, {}, true, true);
    return res.status === 404 ? null : ((await res.json()) as T);
  }

  /**
   * Every request waits at most the timeout for the answer's headers (undici's own wait is 300 s);
   * `wholeAnswer` requests for their body too. The server answers verify and recover at once and
   * then streams their NDJSON for as long as the run takes: their timer stops at the headers.
   */
  async #fetch(method: string, path: string, query: Query, wholeAnswer: boolean, tolerate404 = false): Promise<Response> {
    const url = new URL(`${this.#base}${path}`);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    const headersWait = new AbortController();
    const timer = wholeAnswer ? undefined : setTimeout(() => headersWait.abort(), this.#timeoutMs);
    const signal = wholeAnswer ? AbortSignal.timeout(this.#timeoutMs) : headersWait.signal;
    let res: Response;
    try {
      res = await fetch(url, { method, headers: { Authorization: `Bearer ${this.#token}`, Accept: 'application/json' }, signal });
    } catch (err) {
      if (signal.aborted) throw this.#timedOut();
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new OpsFailure(`cannot reach the admin API at ${this.#base} (${cause})`);
    } finally {
      clearTimeout(timer);
    }
    if (res.ok || (res.status === 404 && tolerate404 && (await isUnknownId(res.clone())))) return res;
    if (res.status === 401) throw new OpsFailure(`the admin API at ${this.#base} refused the token (401): check --token or HFS_ADMIN_TOKEN`);
    const body = (await res.json().catch(() => null)) as { code?: string; message?: string } | null;
    throw new OpsFailure(body?.message ? `${body.message} (${res.status} ${body.code ?? ''})`.replace(/ \)$/, ')') : `the admin API answered ${res.status}`);
  }
}

/**
 * An id as one path segment. Encoding keeps "/" and "?" in it; "", "." and ".." it cannot keep:
 * URL normalisation drops them (and "%2e"), and the request goes to another route (the CLI
 * refuses such ids first; this keeps any other caller from replaying every dead letter).
 */
function segment(id: string): string {
  if (id === '' || id === '.' || id === '..') throw new OpsFailure(`${JSON.stringify(id)} is not an id`, EXIT.usage);
  return encodeURIComponent(id);
}

async function isUnknownId(res: Response): Promise<boolean> {
  const body = (await res.json().catch(() => null)) as { code?: string } | null;
  return body?.code === 'ERR_NOT_FOUND';
}
