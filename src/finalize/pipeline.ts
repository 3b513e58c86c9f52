/**
 * The finalization steps of one job, each idempotent so any of them may be repeated after a
 * crash, a timeout or a retry:
 *   verify   the stored size equals the upload's size            (else dead letter)
 *   hash     sha256, off the main thread for large files; skipped when the bytes were hashed
 *            as they arrived (receivedSha256), else counted as a source re-read
 *   checksum the client's declared sha256, when there is one     (mismatch: dead letter)
 *   scan     optional malware scan (scan-step.ts)                  scan breaker; a detection
 *            moves the bytes to quarantine and ends there (notify says file.quarantined)
 *   dedup    the bytes go into the content store (ContentStore)  } storage breaker
 *   publish  PublishedStore.publish at the slot path, never       }
 *            overwriting (file: record + hard link; S3: claim + server-side copy)
 *   cleanup  the source is removed (a tus record stays)
 *   notify   optional signed webhook                              webhook breaker
 * A job that finds its own upload already published (a re-run) skips to what is left.
 * The bytes are reached through their source ref (UploadSources), a local file or an S3 object.
 * A store that is unreachable or answers 5xx (S3) opens the storage breaker and the job waits,
 * spending no attempt, as it does for a full disk or a reached quota.
 */
import type { Readable } from 'node:stream';
import type { Clock, Job, JobContext, JobError, JobOutcome, RetryReason } from '../queue/index.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { metrics } from '../observability/index.js';
import {
  isSourceGone,
  isStoreUnreachable,
  localPathOf,
  storableContentType,
  storageFullCause,
  unsendableRequestCause,
  unstorablePathCause,
  uploadSources,
  type ContentStore,
  type LinkPublishOutcome,
  type PublishRecord,
  type PublishStepHooks,
  type PublishedFile,
  type QuarantineRecord,
  type QuarantineStore,
  type StoredRecord,
  type UploadSource,
  type UploadSources,
} from '../storage/index.js';
import { sha256Stream } from './hash-file.js';
import { fromPayload, type FinalizeJobPayload } from './job-payload.js';
import type { ScanDecision, ScanStep } from './scan-step.js';
import { sendWebhook, type WebhookEvent, type WebhookResult, type WebhookTarget } from './webhook.js';

/** The part of the published store the pipeline needs (every PublishedStore satisfies it). */
export interface PublishTarget {
  stat(path: string): Promise<PublishedFile | null>;
  record(path: string): Promise<StoredRecord | null>;
  publish(path: string, source: UploadSource, record: PublishRecord, hooks?: PublishStepHooks): Promise<LinkPublishOutcome>;
}

/** The content store of dedup; the file store's `release` drops an entry no published file links any more. */
export type DedupStore = ContentStore & { init?(): Promise<void>; release?(sha256: string): Promise<boolean> };

/**
 * Named points of the pipeline, for the step hook (crash tests kill the process there; slow-
 * pipeline tests hold jobs there). Admission points are the finalizer's.
 */
export type PipelineStep = 'start' | 'verified' | 'hashed' | 'scanned' | 'quarantined' | 'content-stored' | 'record-written' | 'linked' | 'published' | 'notified';

export interface PublishedEvent {
  readonly job: Job;
  readonly payload: FinalizeJobPayload;
  readonly sha256: string;
  /** False when a re-run found it published by an earlier run of the same job. */
  readonly fresh: boolean;
  /** The content was already in the content-addressed store. */
  readonly dedupHit: boolean;
}

export interface QuarantinedEvent {
  readonly job: Job;
  readonly record: QuarantineRecord;
  /** False when a re-run found it quarantined by an earlier run of the same job. */
  readonly fresh: boolean;
}

export interface PipelineOptions {
  readonly published: PublishTarget;
  /** null: dedup off, the source itself is published. */
  readonly cas: DedupStore | null;
  /** Reads and removes the bytes behind a job's source ref; default: local files only. */
  readonly sources?: UploadSources;
  readonly webhook: WebhookTarget | null;
  /** null: circuit_breaker_enabled = false. */
  readonly storageBreaker: CircuitBreaker | null;
  readonly webhookBreaker: CircuitBreaker | null;
  readonly clock: Clock;
  /** Hashes a local source file (an S3 source is hashed as it streams in). */
  readonly hash: (path: string, signal: AbortSignal) => Promise<string>;
  /** Called when the file became downloadable (also on a re-run that finds it so). */
  readonly onPublished: (event: PublishedEvent) => void;
  /** Publishing failed for lack of room: the job is postponed by `postponeMs`, no attempt spent. */
  readonly onStorageFull?: (job: Job, err: unknown, postponeMs: number) => void;
  /** The store (S3) was unreachable or answered 5xx: the job is postponed by `postponeMs`, no attempt spent. */
  readonly onStoreUnreachable?: (job: Job, err: unknown, postponeMs: number) => void;
  readonly onStep?: (step: PipelineStep, job: Job, signal: AbortSignal) => void | Promise<void>;
  /** null or absent: no scanning ([scan] enabled = false). */
  readonly scan?: ScanStep | null;
  /** Where flagged files go; required when `scan` is set. */
  readonly quarantine?: QuarantineStore | null;
  /** Called when a file went to quarantine (also on a re-run that finds it there). */
  readonly onQuarantined?: (event: QuarantinedEvent) => void;
  /** Opens the job's bytes for the scanner; default the source's own stream (UploadSource.open). */
  readonly openSource?: (payload: FinalizeJobPayload) => Readable;
  /** Injectable for tests; default sendWebhook. */
  readonly send?: (target: WebhookTarget, event: WebhookEvent, nowMs: number, signal: AbortSignal) => Promise<WebhookResult>;
}

type Published = { readonly kind: 'published'; readonly sha256: string; readonly size: number };
type Quarantined = { readonly kind: 'quarantined'; readonly record: QuarantineRecord };

/** How long a job whose publish found the disk full waits before trying again. */
const STORAGE_FULL_POSTPONE_MS = 2_000;
/** How long a job that found the store unreachable waits when no open breaker says longer. */
const STORE_UNREACHABLE_POSTPONE_MS = 2_000;

export class FinalizePipeline {
  readonly #o: PipelineOptions;
  readonly #sources: UploadSources;

  constructor(options: PipelineOptions) {
    this.#o = options;
    this.#sources = options.sources ?? uploadSources();
  }

  /** The dispatcher's JobHandler. */
  readonly run = async (job: Job, { signal }: JobContext): Promise<JobOutcome> => {
    let payload: FinalizeJobPayload;
    try {
      payload = fromPayload(job.payload);
      this.#sources.resolve(payload.source, job.size); // a ref of a backend this server does not have fails here
    } catch (err) {
      return this.#dead('ERR_INTERNAL', (err as Error).message);
    }
    await this.#step('start', job, signal);
    const { clock, storageBreaker: breaker } = this.#o;
    // A remote store (S3) is behind the storage breaker from the first request on; a local one as
    // before. Only an open breaker stops it here: the half-open probe is taken before publishing.
    const remote = localPathOf(this.#source(job, payload)) === null;
    if (remote && breaker !== null && breaker.state(clock.now()) === 'open') return { kind: 'postpone', untilMs: breaker.retryAtMs(clock.now()) };
    let result: Published | Quarantined | JobOutcome;
    try {
      if (await this.#withdrawn(job, payload)) return { kind: 'done' };
      result = (await this.#alreadyPublished(job, payload)) ?? (await this.#alreadyQuarantined(job, payload)) ?? (await this.#publish(job, payload, signal));
    } catch (err) {
      if (signal.aborted || !isStoreUnreachable(err)) throw err;
      return this.#storeUnreachable(job, err); // a lookup (record, stat, cleanup) found the store unreachable
    }
    if (result.kind !== 'published' && result.kind !== 'quarantined') return result;
    if (this.#o.webhook !== null) {
      const notified = await this.#notify(job, result.kind === 'published' ? publishedEvent(job, payload, result) : quarantinedEvent(result.record), signal);
      if (notified !== null) return notified;
    }
    return { kind: 'done' };
  };

  /** A re-run whose upload went to quarantine already (finishing the move of its bytes if a crash cut it). */
  async #alreadyQuarantined(job: Job, payload: FinalizeJobPayload): Promise<Quarantined | null> {
    const record = (await this.#o.quarantine?.get(job.id)) ?? null;
    if (record === null) return null;
    const source = this.#source(job, payload);
    const how = await this.#o.quarantine!.admit(record, source).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err; // ENOENT: bytes gone (deleted by an operator); the record stays
      return 'gone' as const;
    });
    if (how !== 'moved') await this.#sources.remove(payload.source); // copied in: the source goes
    this.#o.onQuarantined?.({ job, record, fresh: false });
    return { kind: 'quarantined', record };
  }

  /** A re-run whose upload is published already: clean up what an earlier run left. */
  async #alreadyPublished(job: Job, payload: FinalizeJobPayload): Promise<Published | null> {
    const { published } = this.#o;
    const record = await published.record(job.slotPath);
    if (record?.uploadId !== payload.uploadId || record.sha256 === undefined) return null;
    const file = await published.stat(job.slotPath);
    if (file === null) return null; // record written, link not yet: publish again
    await this.#sources.remove(payload.source);
    this.#o.onPublished({ job, payload, sha256: record.sha256, fresh: false, dedupHit: false });
    return { kind: 'published', sha256: record.sha256, size: file.size };
  }

  async #publish(job: Job, payload: FinalizeJobPayload, signal: AbortSignal): Promise<Published | Quarantined | JobOutcome> {
    const { clock, published, cas } = this.#o;
    const source = this.#source(job, payload);
    const localFile = localPathOf(source);
    const breaker = this.#o.storageBreaker;
    let size: number | null;
    try {
      size = await this.#sources.sizeOf(payload.source);
    } catch (err) {
      return this.#sourceUnavailable(job, payload, err);
    }
    if (size === null) return this.#sourceUnavailable(job, payload, gone());
    if (size !== job.size) return this.#dead('ERR_STORED_SIZE_MISMATCH', `${size} bytes stored, ${job.size} expected`);
    await this.#step('verified', job, signal);

    let sha256: string;
    if (payload.receivedSha256 !== undefined) sha256 = payload.receivedSha256; // hashed as the bytes arrived
    else {
      metrics.finalizeSourceRereads.inc({ reason: 'hash' });
      try {
        sha256 = localFile !== null ? await this.#o.hash(localFile, signal) : await sha256Stream(source.open(), signal);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        return this.#sourceUnavailable(job, payload, err);
      }
    }
    await this.#step('hashed', job, signal);

    if (payload.expectedSha256 === null) return this.#dead('ERR_CHECKSUM_MISMATCH', 'the declared checksum is not a readable sha256');
    if (payload.expectedSha256 !== undefined && payload.expectedSha256 !== sha256) {
      return this.#dead('ERR_CHECKSUM_MISMATCH', `declared sha256 ${payload.expectedSha256}, stored bytes have ${sha256}`);
    }

    if (this.#o.scan) {
      const open = (): Readable => {
        metrics.finalizeSourceRereads.inc({ reason: 'scan' });
        return this.#o.openSource?.(payload) ?? source.open();
      };
      const decision = await this.#o.scan.decide(job, open, signal);
      if (decision.kind === 'outcome') return decision.outcome;
      if (decision.kind === 'source_failed') return this.#sourceUnavailable(job, payload, decision.error);
      if (decision.kind === 'quarantine') return this.#quarantine(job, payload, { sha256, size }, decision, signal);
      await this.#step('scanned', job, signal);
    }

    if (breaker !== null && !breaker.canAttempt(clock.now())) return { kind: 'postpone', untilMs: breaker.retryAtMs(clock.now()) };
    let outcome: LinkPublishOutcome;
    let dedupHit = false;
    try {
      let content = source;
      if (cas !== null) {
        const adopted = await cas.adoptSource(source, sha256, size);
        content = adopted.source;
        dedupHit = !adopted.fresh;
        await this.#step('content-stored', job, signal);
      }
      const record: PublishRecord = {
        contentType: storableContentType(payload.contentType), // as intake keeps it; a job queued before that may hold any
        uploadId: payload.uploadId,
        sha256,
        size,
        protocol: payload.protocol,
        receivedAtMs: payload.receivedAtMs,
      };
      outcome = await published.publish(job.slotPath, content, record, {
        afterRecord: () => void this.#o.onStep?.('record-written', job, signal),
        afterLink: () => void this.#o.onStep?.('linked', job, signal),
      });
      breaker?.onSuccess(clock.now());
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (isStoreUnreachable(err)) return this.#storeUnreachable(job, err);
      // This path cannot be stored, now or ever: a dead letter at once, and no count against the
      // store's breaker (a client could otherwise stop publishing for everyone with such names).
      const unstorable = unstorablePathCause(err);
      if (unstorable !== null) return this.#dead('ERR_BAD_PATH', `the store cannot hold a file at this slot path (${unstorable})`);
      // Likewise a request that could not be sent for what it carries: the store never saw it.
      const unsendable = unsendableRequestCause(err);
      if (unsendable !== null) return this.#dead('ERR_INTERNAL', `the store request could not be sent (${describe(err)})`);
      breaker?.onFailure(clock.now());
      // A full disk or a reached quota is not the upload's fault and passes by itself: wait,
      // spending no attempt, so no upload becomes a dead letter for lack of space (docs/storage-space.md).
      if (storageFullCause(err) !== null) {
        this.#o.onStorageFull?.(job, err, STORAGE_FULL_POSTPONE_MS);
        return { kind: 'postpone', untilMs: clock.now() + STORAGE_FULL_POSTPONE_MS };
      }
      return this.#retry('ERR_STORAGE_UNAVAILABLE', describe(err), 'server_error');
    }
    if (outcome === 'taken') return this.#dead('ERR_FILE_EXISTS', 'another file holds the slot path');
    if (outcome === 'withdrawn') {
      // Deleted while it waited or ran: cancelled, nothing published or notified, no content kept.
      await this.#sources.remove(payload.source);
      await cas?.release?.(sha256).catch(() => false);
      return { kind: 'done' };
    }
    try {
      await this.#sources.remove(payload.source);
    } catch (err) {
      if (!isStoreUnreachable(err)) throw err;
      return this.#storeUnreachable(job, err); // published already: the re-run finds it so and removes the source
    }
    await this.#step('published', job, signal);
    this.#o.onPublished({ job, payload, sha256, fresh: outcome === 'published', dedupHit });
    return { kind: 'published', sha256, size };
  }

  /**
   * The upload was deleted (DELETE of its finished tus upload) before its file was published:
   * the job is cancelled, its source removed. The tombstone at the slot path names the upload.
   */
  async #withdrawn(job: Job, payload: FinalizeJobPayload): Promise<boolean> {
    const record = await this.#o.published.record(job.slotPath);
    if (record?.deletedAtMs === undefined || record.uploadId !== payload.uploadId) return false;
    await this.#sources.remove(payload.source);
    return true;
  }

  /** Moves the bytes to quarantine (storage: the storage breaker applies); they are never published. */
  async #quarantine(
    job: Job,
    payload: FinalizeJobPayload,
    content: { sha256: string; size: number },
    decision: Extract<ScanDecision, { kind: 'quarantine' }>,
    signal: AbortSignal,
  ): Promise<Quarantined | JobOutcome> {
    const { clock, quarantine } = this.#o;
    if (!quarantine) return this.#dead('ERR_INTERNAL', 'scanning is on without a quarantine store');
    const breaker = this.#o.storageBreaker;
    if (breaker !== null && !breaker.canAttempt(clock.now())) return { kind: 'postpone', untilMs: breaker.retryAtMs(clock.now()) };
    const record: QuarantineRecord = {
      id: job.id,
      slotPath: job.slotPath,
      size: content.size,
      sha256: content.sha256,
      contentType: payload.contentType,
      protocol: payload.protocol,
      uploadId: payload.uploadId,
      receivedAtMs: payload.receivedAtMs,
      quarantinedAtMs: clock.now(),
      reason: decision.reason,
      signature: decision.signature,
    };
    try {
      const source = this.#source(job, payload);
      if ((await quarantine.admit(record, source)) === 'copied') await this.#sources.remove(payload.source); // copied in: the source goes
      breaker?.onSuccess(clock.now());
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.#dead('ERR_SOURCE_MISSING', 'the uploaded file is gone');
      if (isStoreUnreachable(err)) return this.#storeUnreachable(job, err);
      breaker?.onFailure(clock.now());
      return this.#retry('ERR_STORAGE_UNAVAILABLE', describe(err), 'server_error');
    }
    this.#o.onQuarantined?.({ job, record, fresh: true }); // before the step hook: a detection is reported even if a crash follows
    await this.#step('quarantined', job, signal);
    return { kind: 'quarantined', record };
  }

  /** The source is gone or unreadable. Gone and published (or quarantined) by this upload meanwhile (a stuck earlier run) is fine. */
  async #sourceUnavailable(job: Job, payload: FinalizeJobPayload, err: unknown): Promise<Published | Quarantined | JobOutcome> {
    if (isStoreUnreachable(err)) return this.#storeUnreachable(job, err);
    if (!isSourceGone(err)) return this.#retry('ERR_STORAGE_UNAVAILABLE', describe(err), 'server_error');
    if (await this.#withdrawn(job, payload)) return { kind: 'done' };
    return (await this.#alreadyPublished(job, payload)) ?? (await this.#alreadyQuarantined(job, payload)) ?? this.#dead('ERR_SOURCE_MISSING', 'the uploaded file is gone');
  }

  /** The source's bytes, wherever they are (checked readable by run()). */
  #source(job: Job, payload: FinalizeJobPayload): UploadSource {
    return this.#sources.resolve(payload.source, job.size);
  }

  /**
   * The store (S3) is unreachable or answered 5xx: the breaker counts a failure and the job waits,
   * spending no attempt, until the breaker lets a request through again (or briefly, without one).
   */
  #storeUnreachable(job: Job, err: unknown): JobOutcome {
    const { clock } = this.#o;
    const breaker = this.#o.storageBreaker;
    breaker?.onFailure(clock.now());
    metrics.finalizeStoreUnreachable.inc();
    const now = clock.now();
    const untilMs = breaker !== null && !breaker.canAttempt(now) ? breaker.retryAtMs(now) : now + STORE_UNREACHABLE_POSTPONE_MS;
    this.#o.onStoreUnreachable?.(job, err, untilMs - now);
    return { kind: 'postpone', untilMs };
  }

  async #notify(job: Job, event: WebhookEvent, signal: AbortSignal): Promise<JobOutcome | null> {
    const { clock, webhook } = this.#o;
    const breaker = this.#o.webhookBreaker;
    if (breaker !== null && !breaker.canAttempt(clock.now())) return { kind: 'postpone', untilMs: breaker.retryAtMs(clock.now()) };
    const result = await (this.#o.send ?? sendWebhook)(webhook!, event, clock.now(), signal);
    if (!result.ok) {
      breaker?.onFailure(clock.now());
      const reason: RetryReason = result.reason === 'timeout' ? 'timeout' : result.reason;
      return this.#retry('ERR_WEBHOOK_FAILED', result.message, reason);
    }
    breaker?.onSuccess(clock.now());
    await this.#step('notified', job, signal);
    return null;
  }

  async #step(step: PipelineStep, job: Job, signal: AbortSignal): Promise<void> {
    await this.#o.onStep?.(step, job, signal);
    signal.throwIfAborted();
  }

  #error(code: string, message: string): JobError {
    return { atMs: this.#o.clock.now(), code, message };
  }

  #dead(code: string, message: string): JobOutcome {
    return { kind: 'dead', error: this.#error(code, message) };
  }

  #retry(code: string, message: string, reason: RetryReason): JobOutcome {
    return { kind: 'retry', error: this.#error(code, message), reason };
  }
}

function publishedEvent(job: Job, payload: FinalizeJobPayload, published: Published): WebhookEvent {
  return {
    event: 'file.published',
    id: job.id,
    path: job.slotPath,
    size: published.size,
    sha256: published.sha256,
    contentType: payload.contentType,
    protocol: payload.protocol,
    uploadId: payload.uploadId,
    receivedAt: new Date(payload.receivedAtMs).toISOString(),
  };
}

/** The same fields as file.published, plus why; the file is not downloadable. */
function quarantinedEvent(r: QuarantineRecord): WebhookEvent {
  return {
    event: 'file.quarantined',
    id: r.id,
    path: r.slotPath,
    size: r.size,
    sha256: r.sha256,
    contentType: r.contentType,
    protocol: r.protocol,
    uploadId: r.uploadId,
    receivedAt: new Date(r.receivedAtMs).toISOString(),
    reason: r.reason,
    signature: r.signature,
  };
}

function gone(): Error {
  return Object.assign(new Error('the uploaded bytes are gone'), { code: 'ENOENT' });
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}: ${e.message}` : String(e?.message ?? err);
}
