/**
 * The process's one metrics registry (prom-client). Labels stay bounded: methods, status
 * classes, fixed reasons; never ids or paths.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const httpRequests = new Counter({
  name: 'hmac_http_requests_total',
  help: 'Finished HTTP requests by method and status code',
  labelNames: ['method', 'status'] as const,
  registers: [registry],
});

export const httpRequestDuration = new Histogram({
  name: 'hmac_http_request_duration_seconds',
  help: 'Duration of HTTP requests by route kind',
  labelNames: ['route'] as const,
  buckets: [0.005, 0.05, 0.25, 1, 5, 30, 120, 600, 3600],
  registers: [registry],
});

export const bytesReceived = new Counter({
  name: 'hmac_bytes_received_total',
  help: 'Upload body bytes received, by protocol',
  labelNames: ['protocol'] as const,
  registers: [registry],
});

export const bytesSent = new Counter({
  name: 'hmac_bytes_sent_total',
  help: 'Download body bytes sent',
  registers: [registry],
});

export const uploadsCreated = new Counter({
  name: 'hmac_uploads_created_total',
  help: 'Uploads started, by protocol (tus creations, PUTs)',
  labelNames: ['protocol'] as const,
  registers: [registry],
});

export const uploadsFinished = new Counter({
  name: 'hmac_uploads_finished_total',
  help: 'Uploads whose last byte arrived, by protocol',
  labelNames: ['protocol'] as const,
  registers: [registry],
});

export const uploadsTerminated = new Counter({
  name: 'hmac_uploads_terminated_total',
  help: 'tus uploads terminated by the client (DELETE)',
  registers: [registry],
});

export const filesPublished = new Counter({
  name: 'hmac_files_published_total',
  help: 'Files published (downloadable), by protocol',
  labelNames: ['protocol'] as const,
  registers: [registry],
});

export const openConnections = new Gauge({
  name: 'hmac_open_connections',
  help: 'Open TCP connections to the HTTP listener',
  registers: [registry],
});

export const idleConnectionsClosed = new Counter({
  name: 'hmac_idle_connections_closed_total',
  help: 'Idle keep-alive connections closed to make room for a new one (connection_pool_size connections were open)',
  registers: [registry],
});

export const connectionsRefused = new Counter({
  name: 'hmac_connections_refused_total',
  help: 'Connections to the HTTP listener closed at once: connection_pool_size connections were open (limit="pool"), or max_connections_per_client from that client (limit="client")',
  labelNames: ['limit'] as const,
  registers: [registry],
});

export const activeUploads = new Gauge({
  name: 'hmac_active_uploads',
  help: 'Upload requests (PATCH, creation-with-upload POST, PUT) whose body is streaming',
  registers: [registry],
});

export const errorsByCode = new Counter({
  name: 'hmac_errors_total',
  help: 'Error responses by stable error code',
  labelNames: ['code'] as const,
  registers: [registry],
});

export const timeouts = new Counter({
  name: 'hmac_timeouts_total',
  help: 'Requests or jobs ended by a timeout, by type',
  labelNames: ['type'] as const,
  registers: [registry],
});

export const rufhRequests = new Counter({
  name: 'hmac_rufh_requests_total',
  help: 'IETF Resumable Uploads requests by interop version and kind (upgrade, create, head, append, delete, options, resume_redirect, completed, interim_withheld)',
  labelNames: ['interop', 'kind'] as const,
  registers: [registry],
});

// Concurrency permits (transfer/concurrency-permits.ts); the metric names predate that name and stay.
export const concurrencyWait = new Histogram({
  name: 'hmac_admission_wait_seconds',
  help: 'Time upload requests waited for a streaming slot (max_concurrent_uploads)',
  buckets: [0, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300],
  registers: [registry],
});

export const concurrencyWaiting = new Gauge({
  name: 'hmac_admission_waiting',
  help: 'Upload requests waiting for a streaming slot',
  registers: [registry],
});

export const concurrencyRejected = new Counter({
  name: 'hmac_admission_rejected_total',
  help: 'Upload requests refused with 503 after waiting queue_timeout for a slot',
  registers: [registry],
});

// --- Mobile links and per-client limits (issues 18, 9.1, 9.2).

export const takeovers = new Counter({
  name: 'hmac_takeovers_total',
  help: 'Upload bodies taken over by a newer request for the same upload or slot, by outcome (idle_ended: silent holder ended at once; drained: holder finished by itself; drain_timeout: ended after lock_drain_timeout)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const takeoverWait = new Histogram({
  name: 'hmac_takeover_wait_seconds',
  help: 'Time a newer request waited for the previous holder of its upload to let go',
  buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 3, 10, 30, 60],
  registers: [registry],
});

export const clientLimited = new Counter({
  name: 'hmac_client_limited_total',
  help: 'Upload requests refused by a per-client cap, by limit (bodies, creations)',
  labelNames: ['limit'] as const,
  registers: [registry],
});

export const unfinishedBytes = new Gauge({
  name: 'hmac_unfinished_upload_bytes',
  help: 'Bytes held by unfinished tus uploads (limits.max_unfinished_bytes caps new creations)',
  registers: [registry],
});

export const unfinishedRefused = new Counter({
  name: 'hmac_unfinished_refused_total',
  help: 'Upload creations refused with 503 because unfinished uploads hold limits.max_unfinished_bytes',
  registers: [registry],
});

// --- Finalization queue (docs/queue.md). Labels: tiers, worker ids (bounded by numworkers),
// dependencies, fixed reasons; never upload ids or paths.

export const downloadsWaiting = new Gauge({
  name: 'hmac_downloads_waiting',
  help: 'GET and HEAD requests waiting for their file to be published (its upload is being finalized)',
  registers: [registry],
});

export const queueLength = new Gauge({
  name: 'hmac_queue_length',
  help: 'Finalization jobs waiting or running, by priority tier',
  labelNames: ['priority'] as const,
  registers: [registry],
});

export const queueProcessingTime = new Histogram({
  name: 'hmac_queue_processing_time_seconds',
  help: 'Duration of one finalization attempt (verify, hash, dedup, publish, notify)',
  buckets: [0.005, 0.02, 0.1, 0.5, 1, 5, 15, 60, 300, 1800],
  registers: [registry],
});

export const queueWaitTime = new Histogram({
  name: 'hmac_queue_wait_seconds',
  help: 'Time from admission until a finalization job was done',
  buckets: [0.01, 0.1, 0.5, 1, 5, 30, 120, 600, 3600],
  registers: [registry],
});

export const spilloverItems = new Counter({
  name: 'hmac_spillover_items_total',
  help: 'Finalization jobs moved out of memory to wait on disk only (queue_size exceeded)',
  registers: [registry],
});

export const circuitBreakerState = new Gauge({
  name: 'hmac_circuit_breaker_state',
  help: 'Circuit breaker state per finalization dependency: 1 for the current state, 0 for the others',
  labelNames: ['dependency', 'state'] as const,
  registers: [registry],
});

export const workerHealthStatus = new Gauge({
  name: 'hmac_worker_health_status',
  help: 'Finalization worker health: 1 for the current status, 0 for the others',
  labelNames: ['worker_id', 'status'] as const,
  registers: [registry],
});

export const workerProcessed = new Counter({
  name: 'hmac_worker_processed_total',
  help: 'Finalization attempts finished by each worker (any outcome)',
  labelNames: ['worker_id'] as const,
  registers: [registry],
});

export const workerErrors = new Counter({
  name: 'hmac_worker_errors_total',
  help: 'Finalization attempts that failed, by worker (timeouts included)',
  labelNames: ['worker_id'] as const,
  registers: [registry],
});

export const retries = new Counter({
  name: 'hmac_retries_total',
  help: 'Finalization retries scheduled, by reason',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export const deadLetterItems = new Counter({
  name: 'hmac_dead_letter_items_total',
  help: 'Finalization jobs moved to the dead letter queue',
  registers: [registry],
});

export const deadLetterQueueLength = new Gauge({
  name: 'hmac_dead_letter_queue_length',
  help: 'Dead letters currently kept',
  registers: [registry],
});

export const dedupHits = new Counter({
  name: 'hmac_dedup_hits_total',
  help: 'Published files whose content was already stored (hard-linked instead of stored again)',
  registers: [registry],
});

export const queuePressureLevel = new Gauge({
  name: 'hmac_queue_pressure_level',
  help: 'Intake pressure: 0 normal, 1 backpressure (new uploads delayed), 2 emergency (new non-small uploads refused)',
  registers: [registry],
});

export const intakeDelayed = new Counter({
  name: 'hmac_intake_delayed_total',
  help: 'New uploads delayed by queue backpressure, by kind (create, put)',
  labelNames: ['kind'] as const,
  registers: [registry],
});

export const intakeRefused = new Counter({
  name: 'hmac_intake_refused_total',
  help: 'New uploads refused with 503 by the queue, by reason (emergency, large_tier_full)',
  labelNames: ['reason'] as const,
  registers: [registry],
});

// --- Storage space (docs/storage-space.md): the data directory's file system as the intake
// sees it, refreshed on every new upload, every few seconds, and when scraped.

let refreshStorage: (() => Promise<unknown>) | null = null;
let storageRefreshing: Promise<void> | null = null;

/** The storage gauges are re-read when scraped: `refresh` (one statfs) sets them all, once per scrape. */
export function refreshStorageGaugesWith(refresh: () => Promise<unknown>): void {
  refreshStorage = refresh;
}

function collectStorage(): Promise<void> | undefined {
  if (refreshStorage === null) return undefined;
  storageRefreshing ??= refreshStorage()
    .then(() => {}, () => {})
    .finally(() => (storageRefreshing = null));
  return storageRefreshing;
}

export const storageBackendReachable = new Gauge({
  name: 'hmac_storage_backend_reachable',
  help: 'Storage backend answers: S3 1 while the bucket answers (HeadBucket every few seconds), 0 while it does not; file always 1',
  labelNames: ['backend'] as const,
  registers: [registry],
});

export const storageTotalBytes = new Gauge({
  name: 'hmac_storage_total_bytes',
  help: 'Size of the file system holding the data directory',
  registers: [registry],
  collect: collectStorage,
});

export const storageFreeBytes = new Gauge({
  name: 'hmac_storage_free_bytes',
  help: 'Bytes the server may still write to the data directory (statfs bavail)',
  registers: [registry],
  collect: collectStorage,
});

export const storageReservedBytes = new Gauge({
  name: 'hmac_storage_reserved_bytes',
  help: 'Bytes kept free for the queue, its journal and upload records (storage.min_free_space)',
  registers: [registry],
  collect: collectStorage,
});

export const storagePromisedBytes = new Gauge({
  name: 'hmac_storage_promised_bytes',
  help: 'Bytes declared by unfinished uploads and not yet received',
  registers: [registry],
  collect: collectStorage,
});

export const storageEmergency = new Gauge({
  name: 'hmac_storage_emergency',
  help: '1 while free space minus promised bytes is below the reserve: new uploads are refused with 507',
  registers: [registry],
  collect: collectStorage,
});

export const storageRefused = new Counter({
  name: 'hmac_storage_refused_total',
  help: 'Uploads and appends refused with 507 before their body, by reason (no_room, below_reserve)',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export const storageFull = new Counter({
  name: 'hmac_storage_full_total',
  help: 'Writes that failed because the store was full (ENOSPC, quota), by where (put, tus, admission, publish)',
  labelNames: ['where'] as const,
  registers: [registry],
});

export const admissionsWaiting = new Gauge({
  name: 'hmac_admissions_waiting_for_space',
  help: 'Completed tus uploads whose finalization job could not be written for lack of space, retried until it is',
  registers: [registry],
});

export const clusterDegraded = new Gauge({
  name: 'hmac_cluster_degraded',
  help: 'Cluster mode: 1 while Redis is unreachable from this instance (uploads go on, completed ones wait in the local journal), else 0',
  registers: [registry],
});

export const clusterJournalMoved = new Counter({
  name: 'hmac_cluster_journal_moved_total',
  help: 'Cluster mode: jobs admitted into the local journal while Redis was unreachable, moved into Redis since',
  registers: [registry],
});

export const clusterJournalWaiting = new Gauge({
  name: 'hmac_cluster_journal_waiting',
  help: 'Cluster mode: jobs waiting in this instance\'s local journal (admitted while Redis was unreachable)',
  registers: [registry],
});

/**
 * Creates every series of the bounded label sets at 0, so dashboards and alerts see a series
 * (and rate() a starting point) before the first event. Call once at start.
 */
export function exposeLabelSets(options: { workers: number }): void {
  for (const reason of ['timeout', 'network', 'server_error']) retries.inc({ reason }, 0);
  for (const type of ['upload', 'download', 'queue']) timeouts.inc({ type }, 0);
  for (const reason of ['emergency', 'large_tier_full']) intakeRefused.inc({ reason }, 0);
  for (const kind of ['create', 'put']) intakeDelayed.inc({ kind }, 0);
  for (const outcome of ['idle_ended', 'drained', 'drain_timeout']) takeovers.inc({ outcome }, 0);
  for (const limit of ['bodies', 'creations']) clientLimited.inc({ limit }, 0);
  for (const reason of ['no_room', 'below_reserve']) storageRefused.inc({ reason }, 0);
  for (const where of ['put', 'tus', 'admission', 'publish']) storageFull.inc({ where }, 0);
  for (const protocol of ['tus', 'put', 'rufh']) {
    uploadsCreated.inc({ protocol }, 0);
    uploadsFinished.inc({ protocol }, 0);
    bytesReceived.inc({ protocol }, 0);
    filesPublished.inc({ protocol }, 0);
  }
  for (let id = 1; id <= options.workers; id++) {
    workerProcessed.inc({ worker_id: String(id) }, 0);
    workerErrors.inc({ worker_id: String(id) }, 0);
  }
  exposeScanLabelSets();
}

// --- Malware scanning and quarantine (docs/scanning.md).

export const scans = new Counter({
  name: 'hmac_scans_total',
  help: 'Scans by clamd, by result (clean, infected, too_large: refused by StreamMaxLength, failed: no verdict)',
  labelNames: ['result'] as const,
  registers: [registry],
});

export const scanDuration = new Histogram({
  name: 'hmac_scan_duration_seconds',
  help: 'Duration of one scan (connect, stream, verdict), failed ones included',
  buckets: [0.005, 0.02, 0.1, 0.5, 1, 5, 15, 60, 300],
  registers: [registry],
});

export const scanErrors = new Counter({
  name: 'hmac_scan_errors_total',
  help: 'Scans without a verdict, by reason (unavailable, timeout, error)',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export const scanDetections = new Counter({
  name: 'hmac_scan_detections_total',
  help: 'Uploads the scanner flagged (moved to quarantine)',
  registers: [registry],
});

export const filesUnscanned = new Counter({
  name: 'hmac_files_unscanned_total',
  help: 'Files published without a scan while scanning is on, by reason (extension, oversize, unavailable)',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export const quarantined = new Counter({
  name: 'hmac_quarantined_total',
  help: 'Uploads moved to quarantine, by reason (infected, oversize)',
  labelNames: ['reason'] as const,
  registers: [registry],
});

let countQuarantine: (() => Promise<number>) | null = null;

/** A quarantine other instances change too (S3) is counted when scraped; the file one is kept by inc/dec. */
export function countQuarantineWith(count: () => Promise<number>): void {
  countQuarantine = count;
}

export const quarantineFiles = new Gauge({
  name: 'hmac_quarantine_files',
  help: 'Files in quarantine now (not served until released)',
  registers: [registry],
  async collect() {
    if (countQuarantine === null) return;
    try {
      this.set(await countQuarantine());
    } catch {
      // S3 unreachable: the last value stands (the storage breaker and /ready report the outage)
    }
  },
});

function exposeScanLabelSets(): void {
  for (const result of ['clean', 'infected', 'too_large', 'failed']) scans.inc({ result }, 0);
  for (const reason of ['unavailable', 'timeout', 'error']) scanErrors.inc({ reason }, 0);
  for (const reason of ['extension', 'oversize', 'unavailable']) filesUnscanned.inc({ reason }, 0);
  for (const reason of ['infected', 'oversize']) quarantined.inc({ reason }, 0);
}

// --- Finalization on the storage interfaces (docs/s3.md).

/**
 * Reads of an upload's bytes by finalization beyond receiving them: `hash` when no digest was
 * taken while the bytes arrived (a resume after a restart, a chunk taken back, a recovered or
 * older job), `scan` for the malware scan. On S3 each one downloads the object once.
 */
export const finalizeSourceRereads = new Counter({
  name: 'hmac_finalize_source_rereads_total',
  help: 'Reads of an upload source by finalization after it was received, by reason (hash, scan)',
  labelNames: ['reason'] as const,
  registers: [registry],
});

/** Finalization steps that found the store unreachable or answering 5xx (the job waits, no attempt spent). */
export const finalizeStoreUnreachable = new Counter({
  name: 'hmac_finalize_store_unreachable_total',
  help: 'Finalization steps postponed because the store was unreachable or answered 5xx',
  registers: [registry],
});

for (const reason of ['hash', 'scan']) finalizeSourceRereads.inc({ reason }, 0);
