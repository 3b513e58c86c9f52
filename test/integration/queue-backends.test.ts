/** Runs the QueueBackend conformance suite against the memory backend (the spillover backend: finalize-spillover.test.ts). */
import { MemoryQueueBackend } from '../../src/queue/index.js';
import { describeQueueBackend } from '../conformance/queue-backend.suite.js';

describeQueueBackend('MemoryQueueBackend', { durable: false, batchEnqueue: true }, async () => ({
  backend: new MemoryQueueBackend(),
  cleanup: async () => {},
}));
