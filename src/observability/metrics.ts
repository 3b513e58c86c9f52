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
  help: 'Upload body bytes stored, by protocol',
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

export const admissionWait = new Histogram({
  name: 'hmac_admission_wait_seconds',
  help: 'Time upload requests waited for a streaming slot (max_concurrent_uploads)',
  buckets: [0, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300],
  registers: [registry],
});

export const admissionWaiting = new Gauge({
  name: 'hmac_admission_waiting',
  help: 'Upload requests waiting for a streaming slot',
  registers: [registry],
});

export const admissionRejected = new Counter({
  name: 'hmac_admission_rejected_total',
  help: 'Upload requests refused with 503 after waiting queue_timeout for a slot',
  registers: [registry],
});
