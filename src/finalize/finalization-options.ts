/** What the FinalizationService is built from (finalizationFromConfig fills it from the config). */
import type { Logger } from '../observability/index.js';
import type {
  Clock,
  HealthThresholds,
  LoadBalancingStrategy,
  PriorityLevels,
  QueueBackend,
  RandomSource,
  RetryPolicy,
} from '../queue/index.js';
import type { ScanPolicy, Scanner } from '../scan/index.js';
import type { CircuitBreakerOptions } from './circuit-breaker.js';
import type { IntakeDelayOptions } from './pressure.js';
import type { QuarantineStore, UploadSources } from '../storage/index.js';
import type { DedupStore, PipelineStep, PublishTarget } from './pipeline.js';
import type { CompletedUpload } from './types.js';
import type { WebhookTarget } from './webhook.js';

export type JobAdmissionStep = 'admit-before-insert' | 'admit-after-insert';
export type FinalizeStep = JobAdmissionStep | PipelineStep;

/** The upload side of tus that finalization needs (app.ts builds it from the TusFileStore). */
export interface TusUploads {
  /** The upload's tus metadata, or null when it is gone. */
  metadata(uploadId: string): Promise<Readonly<Record<string, string | null>> | null>;
  /** Finished uploads whose data file is still in place. */
  finished(): AsyncIterable<CompletedUpload>;
  /** Removes the upload's record and data; tolerates either being gone. */
  discard(uploadId: string): Promise<void>;
  /** Records that every byte arrived (idempotent); done again before each admission, so a record a full disk refused is written on a retry. */
  markFinished?(uploadId: string): Promise<void>;
}

/**
 * Cluster mode: publish notifications between instances, so a download waiting at one instance
 * for a file finalized at another wakes (src/cluster/publish-feed.ts).
 */
export interface PublishAnnouncer {
  /** This instance published `slotPath`. Never throws. */
  announce(slotPath: string): void;
  /** Calls `listener` for every publish announced by any instance (this one included). */
  onAnnounce(listener: (slotPath: string) => void): void;
}

export interface FinalizationOptions {
  /** Opens (and, if durable, recovers) the queue backend; called by start(). */
  readonly openBackend: () => Promise<QueueBackend>;
  /** persistent_queue: the backend survives restarts, so start() reports what it restored. */
  readonly persistent: boolean;
  readonly recoveryEnabled: boolean;
  readonly deadLetterEnabled: boolean;
  readonly published: PublishTarget;
  /** null: [finalize] dedup = false. */
  readonly cas: DedupStore | null;
  /** The bytes behind job source refs (file, and S3 when storage.backend = "s3"); default: local files only. */
  readonly sources?: UploadSources;
  /** Where admitted PUT bodies wait (same filesystem as the published files). */
  readonly stagingDir: string;
  /** Mode of the staging directory when made ([storage] file_mode with x bits; default 0750). */
  readonly dirMode?: number;
  readonly webhook: WebhookTarget | null;
  /** null: circuit_breaker_enabled = false. */
  readonly circuitBreaker: CircuitBreakerOptions | null;
  readonly workers: number;
  readonly jobTimeoutMs: number;
  readonly retry: RetryPolicy;
  readonly strategy: LoadBalancingStrategy;
  readonly healthCheckIntervalMs: number;
  readonly health?: Partial<HealthThresholds>;
  readonly pollIntervalMs?: number;
  /** queue_size: the capacity backpressure and emergency fill refer to. */
  readonly capacity: number;
  readonly backpressureThreshold: number;
  readonly emergencyThreshold: number;
  readonly largeTierLimit: number;
  /** Backpressure delay bounds; defaults DEFAULT_INTAKE_DELAY. */
  readonly intakeDelay?: Partial<Pick<IntakeDelayOptions, 'minDelayMs' | 'maxDelayMs' | 'rampMs'>>;
  readonly priorityLevels: PriorityLevels;
  /** How long a GET of a file still being finalized waits before answering 503. */
  readonly downloadWaitMs: number;
  /** Done jobs are kept this long (their slot stays claimed in the queue too), then pruned. */
  readonly doneRetentionMs?: number;
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly log: Logger;
  readonly tus?: TusUploads;
  /** Cluster mode: publish notifications across instances. */
  readonly announcer?: PublishAnnouncer;
  /**
   * Re-read the queue counts this often, for backpressure and emergency mode on numbers other
   * instances change too (cluster mode). Default: never (this process makes every change).
   */
  readonly countsRefreshMs?: number;
  /** Test hook at named steps (crash tests kill the process there; slow-pipeline tests hold jobs). */
  readonly onStep?: (step: FinalizeStep, jobId: string, signal?: AbortSignal) => void | Promise<void>;
  readonly hash?: (path: string, signal: AbortSignal) => Promise<string>;
  /** Malware scanning ([scan], docs/scanning.md); null or absent: off. */
  readonly scan?: ScanSettings | null;
  /** Where flagged files go; required with `scan`. */
  readonly quarantine?: QuarantineStore | null;
}

export interface ScanSettings {
  readonly scanner: Scanner;
  readonly policy: ScanPolicy;
  /** scan.concurrency: scans at once. */
  readonly concurrency: number;
}

/** What a GET of a path that is not published yet should do. */
export type PendingDownload =
  | { readonly kind: 'published' }
  /** Not queued or being finalized (unknown, or a dead letter): 404. */
  | { readonly kind: 'absent' }
  /** Still being finalized after the bounded wait: 503 with Retry-After. */
  | { readonly kind: 'not_ready'; readonly retryAfterS: number };
