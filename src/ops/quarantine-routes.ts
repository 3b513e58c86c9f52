/**
 * Admin API routes for quarantined files (docs/scanning.md), mounted by app.ts beside the queue
 * routes, behind the same bearer token:
 *
 *   GET    /quarantine                 every entry, oldest first
 *   GET    /quarantine/:id             one entry (404 unknown)
 *   POST   /quarantine/:id/release     publish it anyway (404 unknown, 409 slot taken)
 *   DELETE /quarantine/:id             delete it with its bytes (404 unknown)
 */
import { AppError } from '../errors.js';
import type { QuarantineAdmin } from '../finalize/index.js';
import type { AdminRoute } from '../http/index.js';
import type { QuarantineView } from './types.js';
import { quarantineView } from './views.js';

export function quarantineAdminRoutes(admin: QuarantineAdmin): AdminRoute[] {
  const unknown = (id: string) => new AppError('ERR_NOT_FOUND', { message: `No quarantined file ${id}` });
  return [
    { method: 'GET', path: '/quarantine', handle: async () => ({ quarantined: (await admin.list()).map(quarantineView) }) },
    {
      method: 'GET',
      path: '/quarantine/:id',
      handle: async ({ id }): Promise<QuarantineView> => {
        const record = await admin.get(id!);
        if (record === null) throw unknown(id!);
        return quarantineView(record);
      },
    },
    {
      method: 'POST',
      path: '/quarantine/:id/release',
      handle: async ({ id }) => {
        const result = await admin.release(id!);
        if (result.kind === 'unknown') throw unknown(id!);
        if (result.kind === 'slot_taken') throw new AppError('ERR_FILE_EXISTS', { message: 'Another file is published at its path' });
        if (result.kind === 'bytes_missing') throw new AppError('ERR_SOURCE_MISSING', { message: 'The quarantined bytes are gone; delete the entry' });
        return { released: quarantineView(result.record) };
      },
    },
    {
      method: 'DELETE',
      path: '/quarantine/:id',
      handle: async ({ id }) => {
        if (!(await admin.delete(id!))) throw unknown(id!);
        return { deleted: 1 };
      },
    },
  ];
}
