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
