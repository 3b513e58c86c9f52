/** Runs the QueueBackend conformance suite against the BullMQ backend on a real redis-server. */
import { BullmqQueueBackend } from '../../src/queue/backends/bullmq-backend.js';
import { describeQueueBackend } from '../conformance/queue-backend.suite.js';
import { uniquePrefix, useRedis } from '../helpers/redis.js';

const redis = useRedis();

/** Short, so the dead-instance case waits about a second for BullMQ's stalled-job checker. */
const STALLED_CHECK_MS = 200;

describeQueueBackend('BullmqQueueBackend', { durable: false, batchEnqueue: false, clock: 'wall', sharedByInstances: true }, async () => {
  const keyPrefix = uniquePrefix('{queue}');
  const opened: BullmqQueueBackend[] = [];
  // Each backend has its own connection: one instance each.
  const open = async (onLeasesReleased?: () => void) => {
    const backend = new BullmqQueueBackend({ connection: redis.clients.open(), keyPrefix, stalledCheckIntervalMs: STALLED_CHECK_MS, events: { onLeasesReleased } });
    await backend.start();
    opened.push(backend);
    return backend;
  };
  return {
    backend: await open(),
    peer: async () => {
      let released!: () => void;
      const leasesReleased = new Promise<void>((resolve) => (released = resolve));
      return { backend: await open(() => released()), leasesReleased: () => leasesReleased };
    },
    cleanup: async () => {
      for (const b of opened) await b.close();
    },
  };
});
