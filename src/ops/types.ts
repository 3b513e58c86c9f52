/**
 * What the operator commands work against: `OpsApi`, implemented once over the admin API of a
 * running server (admin-client.ts) and once over the data directory of a stopped one
 * (offline.ts). The JSON views here are also the admin API's response bodies.
 */
import type { JobError, JobState, PriorityTier, QueueCounts, WorkerView } from '../queue/index.js';
import type { BreakerStatus, DeadLetter, InstanceStatus } from '../finalize/index.js';
import type { QuarantineRecord } from '../storage/index.js';

/** Exit codes of every command: 3 lets scripts tell "found something" from "could not look". */
export const EXIT = { ok: 0, failed: 1, usage: 2, problems: 3 } as const;

/** A command that could not do its job; the CLI prints the message and exits with `exitCode`. */
export class OpsFailure extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.failed) {
    super(message);
    this.name = 'OpsFailure';
  }
}

export interface UploadView {
  readonly id: string;
  readonly slotPath: string | null;
  readonly offset: number;
  /** null while the length is deferred. */
  readonly size: number | null;
  readonly finished: boolean;
  readonly createdAt: string | null;
  readonly lastActivityAt: string | null;
  readonly ageSeconds: number | null;
}

export interface JobView {
  readonly id: string;
  readonly slotPath: string;
  readonly size: number;
  readonly priority: PriorityTier;
  readonly state: JobState;
  readonly attempts: number;
  readonly enqueuedAtMs: number;
  readonly availableAtMs: number;
  readonly finishedAtMs: number | null;
  readonly lastError: JobError | null;
}

/** The finalization service's dead letter, as the admin API and CLI show it. */
export type DeadLetterView = DeadLetter;

export type WorkerHealthView = WorkerView;

/** A dependency's circuit breaker; `retryAtMs`: when an attempt may pass again, null while closed. */
export type BreakerView = BreakerStatus;

/** One instance of a cluster as its heartbeat shows it (src/cluster/instance-registry.ts). */
export type InstanceStatusView = InstanceStatus;

/** Cluster mode: every live instance. */
export interface ClusterStatusView {
  /** False: Redis is unreachable from the instance that answered; `instances` is only itself. */
  readonly reachable: boolean;
  readonly instances: readonly InstanceStatusView[];
}

export interface QueueStatusView {
  /** Cluster mode: counts are the whole cluster's (Redis + this instance's journal). */
  readonly counts: QueueCounts;
  /** Jobs waiting or running, by tier (what hmac_queue_length shows). */
  readonly pending: Record<PriorityTier, number>;
  readonly deadLetters: number;
  /** Only a running server knows these; null offline. */
  readonly pressure: { readonly level: 'normal' | 'backpressure' | 'emergency'; readonly fill: number } | null;
  readonly workers: readonly WorkerHealthView[] | null;
  readonly breakers: readonly BreakerView[] | null;
  /** Cluster mode only: every instance with its workers and breakers (those above are this instance's). */
  readonly cluster?: ClusterStatusView;
}

export interface ListJobsQuery {
  /** Default: queued and leased. */
  readonly states?: readonly JobState[];
  readonly priority?: PriorityTier;
  readonly limit?: number;
  readonly offset?: number;
}

/** What `retry` did: a dead letter is replayed, a job waiting for its backoff runs now. */
export interface RetryView {
  readonly id: string;
  readonly action: 'replayed' | 'made_available' | 'none';
  readonly state: JobState;
}

export type DeadLetterSelector = { readonly id: string } | 'all';

/** One thing `recover` found, and what it does (or, with --dry-run, would do) about it. */
export interface RecoveryItem {
  readonly kind:
    | 'unqueued_upload' // finished tus upload that never reached the queue
    | 'slot_taken_upload' // finished tus upload whose slot another upload holds
    | 'published_leftover' // data file of an upload that is published already
    | 'orphan_file' // a file nothing refers to (staging, incoming, tus data without record, cas)
    | 'stale_metadata' // a record whose file is gone (tus record, published-file record, temp record)
    | 'lost_file' // a published file gone from files/ whose bytes the content store still holds
    | 'corrupt_record'; // a tus record that is no JSON record: the upload can be neither resumed nor published
  readonly action: 'readmit' | 'discard' | 'remove' | 'restore';
  /** Relative to the data directory, or a tus upload id / slot path. */
  readonly target: string;
  readonly detail: string;
  readonly bytes: number;
  /** After applying: 'done', or why it failed. Absent in a dry run. */
  readonly result?: string;
}

export interface RecoveryReport {
  readonly dryRun: boolean;
  readonly items: readonly RecoveryItem[];
  /** Items whose action failed (0 in a dry run). */
  readonly failed: number;
}

export interface VerifyProblem {
  readonly slotPath: string;
  /** missing: a published record (not a deletion's tombstone) whose file is gone; on S3, a claim whose object is gone. */
  readonly kind: 'corrupt' | 'size_mismatch' | 'no_record' | 'unreadable' | 'missing';
  readonly detail: string;
}

export interface VerifyReport {
  readonly checked: number;
  readonly bytes: number;
  /** Files published without a recorded sha256 (older versions): existence checked only. */
  readonly unverifiable: number;
  readonly problems: readonly VerifyProblem[];
}

/** The data directory's file system as the intake sees it (GET /admin/space, `space`). */
export interface SpaceFilesystemView {
  readonly totalBytes: number;
  readonly freeBytes: number;
  /** storage.min_free_space in bytes. */
  readonly reserveBytes: number;
  /** Declared by unfinished uploads and not received yet. */
  readonly promisedBytes: number;
  /** What a new upload may still declare: free - reserve - promised. */
  readonly headroomBytes: number;
  /** Below the reserve: new uploads are refused (507) and /ready answers 503. */
  readonly emergency: boolean;
}

export interface SpaceUploadView {
  readonly id: string;
  readonly slotPath: string | null;
  /** null while deferred. */
  readonly size: number | null;
  readonly storedBytes: number;
  readonly promisedBytes: number;
  readonly ageSeconds: number | null;
  readonly idleSeconds: number | null;
}

/** What holds the space, and how to free it. Sizes in bytes. */
export interface SpaceReport {
  /** null when the store cannot tell its capacity. */
  readonly filesystem: SpaceFilesystemView | null;
  readonly unfinishedUploads: {
    readonly count: number;
    readonly storedBytes: number;
    readonly promisedBytes: number;
    /** Oldest first; at most 200 (see count). */
    readonly oldest: readonly SpaceUploadView[];
  };
  readonly deadLetters: { readonly count: number; readonly bytes: number };
  readonly queue: {
    /** The queue journal and spill files (SQLite, WAL included). */
    readonly journalBytes: number;
    /** PUT bodies admitted and waiting for finalization (or dead letters). */
    readonly stagedBytes: number;
    /** Completed tus uploads whose job waits for room (only a running server knows; null offline). */
    readonly admissionsWaitingForSpace: number | null;
  };
  /** PUT bodies streaming right now. */
  readonly incomingBytes: number;
  /** Commands that free space, for what holds some. */
  readonly hints: readonly string[];
}

/** A quarantined file (docs/scanning.md): why, the signature, the upload it came from. */
export type QuarantineView = QuarantineRecord;

/** Progress of a long run, for the bar on stderr. */
export interface Progress {
  readonly done: number;
  readonly total: number;
  readonly unit: 'files' | 'bytes' | 'items';
}

export type ProgressSink = (p: Progress) => void;

export interface OpsApi {
  /** 'online': through a running server's admin API; 'offline': on the data directory. */
  readonly mode: 'online' | 'offline';
  /** Unfinished uploads. */
  listUploads(): Promise<UploadView[]>;
  /** Rejects with OpsFailure for an unknown id. */
  showUpload(id: string): Promise<UploadView>;
  /** Terminates an unfinished upload. Rejects with OpsFailure for an unknown or finished one. */
  terminateUpload(id: string): Promise<void>;
  queueStatus(): Promise<QueueStatusView>;
  listJobs(query: ListJobsQuery): Promise<JobView[]>;
  /** Rejects with OpsFailure for an unknown id, a running or done job. */
  retryJob(id: string): Promise<RetryView>;
  listDeadLetters(query: { limit?: number; offset?: number }): Promise<DeadLetterView[]>;
  /** Resolves how many moved; 0 for an unknown id. */
  replayDeadLetters(target: DeadLetterSelector): Promise<number>;
  /** Resolves how many were deleted (with their bytes); 0 for an unknown id. */
  purgeDeadLetters(target: DeadLetterSelector): Promise<number>;
  recover(options: { dryRun: boolean }, progress?: ProgressSink): Promise<RecoveryReport>;
  verify(progress?: ProgressSink): Promise<VerifyReport>;
  /** What holds the data directory's space. */
  space(): Promise<SpaceReport>;
  /** Quarantined files, oldest first. */
  listQuarantine(): Promise<QuarantineView[]>;
  /** Publishes a quarantined file anyway. Rejects with OpsFailure for an unknown id or a taken slot. */
  releaseQuarantined(id: string): Promise<QuarantineView>;
  /** Deletes a quarantined file with its bytes. Rejects with OpsFailure for an unknown id. */
  deleteQuarantined(id: string): Promise<void>;
  close(): Promise<void>;
}
