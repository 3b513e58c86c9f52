import { AppError } from '../../errors.js';

/**
 * The queue's one thrown error: a programming or shutdown-order mistake, never an expected
 * outcome. Fold into the shared AppError catalogue once `src/errors.ts` exists.
 */
export class QueueClosedError extends Error {
  readonly code = 'ERR_QUEUE_CLOSED';

  constructor() {
    super('queue backend is closed');
    this.name = 'QueueClosedError';
  }
}

/**
 * A backend shared through a network store (Redis) cannot answer now: the store is unreachable
 * or too slow. Callers that can do without the answer (a readiness probe, a download waiting
 * for a publish) catch it; a cluster's local journal takes admissions meanwhile. An AppError, so
 * an admin request that needed the answer gets 503 ERR_QUEUE_UNAVAILABLE.
 */
export class QueueUnavailableError extends AppError {
  constructor(options?: { cause?: unknown }) {
    super('ERR_QUEUE_UNAVAILABLE', options);
    this.name = 'QueueUnavailableError';
  }
}
