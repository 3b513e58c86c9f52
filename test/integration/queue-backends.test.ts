/** Runs the QueueBackend conformance suite against every backend. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryQueueBackend, openSqliteQueueBackend } from '../../src/queue/index.js';
import { describeQueueBackend } from '../conformance/queue-backend.suite.js';

describeQueueBackend('MemoryQueueBackend', { durable: false, batchEnqueue: true }, async () => ({
  backend: new MemoryQueueBackend(),
  cleanup: async () => {},
}));

describeQueueBackend('SqliteQueueBackend', { durable: true, batchEnqueue: true }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'queue-sqlite-'));
  const path = join(dir, 'queue.sqlite');
  const opened = [await openSqliteQueueBackend({ path })];
  return {
    backend: opened[0]!,
    reopen: async () => {
      const next = await openSqliteQueueBackend({ path });
      opened.push(next);
      return next;
    },
    cleanup: async () => {
      for (const b of opened) await b.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
