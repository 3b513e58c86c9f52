/**
 * The admin HTTP API (JSON, bearer token). Off when `[admin] token` is empty. Routes are
 * registered by the parts that own the data: uploads here, queue and dead letters by the
 * finalization service through `AdminRoute`s handed in by the composition root.
 */
import type { Context } from 'koa';
import type { Locker } from '@tus/utils';
import { AppError } from '../errors.js';
import { secondsSince, type TusUploadStore, type UploadSummary } from '../storage/index.js';
import { requireAdminToken } from './admin-auth.js';

export interface AdminRoute {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path below the admin prefix, with `:name` parameters, e.g. "/dead-letters/:id/replay". */
  path: string;
  handle(params: Record<string, string>, ctx: Context): Promise<unknown>;
}

export interface AdminApiDeps {
  token: string;
  /** "/admin" on the main listener, "" on a dedicated admin listener. */
  prefix: string;
  tusStore: TusUploadStore;
  locker: Locker;
  /** After an upload was removed: the one-upload-per-slot index, the byte caps and the space account let go of it. */
  onTerminated: (id: string) => void;
  routes?: AdminRoute[];
  /**
   * Pages served without the token (the status page's static shell, which holds no data):
   * answers and resolves true for its own paths, false for the rest.
   */
  publicPages?: (ctx: Context, sub: string) => Promise<boolean>;
}

export function uploadRoutes(tusStore: TusUploadStore, locker: Locker, onTerminated: (id: string) => void): AdminRoute[] {
  const find = async (id: string) => {
    const summary = await tusStore.summarize(id);
    if (!summary) throw new AppError('ERR_NOT_FOUND', { message: `No upload ${id}` });
    return summary;
  };
  return [
    {
      method: 'GET',
      path: '/uploads',
      handle: async () => {
        const now = Date.now();
        return { uploads: (await tusStore.listUnfinished()).map((u) => withAge(u, now)) };
      },
    },
    { method: 'GET', path: '/uploads/:id', handle: async ({ id }) => withAge(await find(id!), Date.now()) },
    {
      method: 'DELETE',
      path: '/uploads/:id',
      handle: async ({ id }) => {
        const summary = await find(id!);
        if (summary.finished) throw new AppError('ERR_UPLOAD_FINISHED');
        // Take the upload's lock first: a PATCH still writing is asked to stop (bytes kept) before removal.
        const lock = locker.newLock(id!);
        await lock.lock(AbortSignal.timeout(30_000), () => {});
        try {
          await tusStore.remove(id!);
        } finally {
          await lock.unlock();
        }
        onTerminated(id!);
        return { terminated: id };
      },
    },
  ];
}

/** An upload as the admin API shows it: with its age, as `uploads list` and `uploads show` print it. */
function withAge(u: UploadSummary, nowMs: number): UploadSummary & { ageSeconds: number | null } {
  return { ...u, ageSeconds: secondsSince(u.createdAt, nowMs) };
}

interface CompiledRoute extends AdminRoute {
  pattern: RegExp;
  names: string[];
}

function compile(route: AdminRoute): CompiledRoute {
  const names: string[] = [];
  const source = route.path.replace(/:([a-zA-Z]+)/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { ...route, pattern: new RegExp(`^${source}/?$`), names };
}

/** koa handler for requests under the admin prefix; returns false when the path is not admin's. */
export function adminApi(deps: AdminApiDeps) {
  const routes = [...uploadRoutes(deps.tusStore, deps.locker, deps.onTerminated), ...(deps.routes ?? [])].map(compile);
  const auth = requireAdminToken(deps.token);
  return async (ctx: Context): Promise<void> => {
    const sub = ctx.path.slice(deps.prefix.length) || '/';
    if (deps.publicPages && (await deps.publicPages(ctx, sub))) return;
    await auth(ctx, async () => {
      const matching = routes.filter((r) => r.pattern.test(sub));
      if (matching.length === 0) throw new AppError('ERR_NOT_FOUND');
      const route = matching.find((r) => r.method === ctx.method);
      if (!route) {
        throw new AppError('ERR_METHOD_NOT_ALLOWED', { headers: { Allow: [...new Set(matching.map((r) => r.method))].join(', ') } });
      }
      const values = route.pattern.exec(sub)!.slice(1);
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => {
        try {
          params[name] = decodeURIComponent(values[i]!);
        } catch {
          throw new AppError('ERR_BAD_REQUEST', { message: `Malformed ${name}` });
        }
      });
      // verify, recover and the listings may work for minutes between bytes: the listener's idle
      // timeout (upload_stall_timeout, meant for silent clients) must not cut an authorized
      // admin's request off. Restored once the answer is over, for the next request.
      const socket = ctx.req.socket;
      const idleMs = socket.timeout ?? 0;
      socket.setTimeout(0);
      let restored = false;
      const restore = () => {
        if (restored) return;
        restored = true;
        if (!socket.destroyed && idleMs > 0) socket.setTimeout(idleMs);
      };
      // On 'finish', before a request pipelined behind it starts (it takes the socket then).
      ctx.res.once('finish', restore);
      ctx.res.once('close', restore);
      const body = await route.handle(params, ctx);
      ctx.status = 200;
      ctx.body = body ?? {};
    });
  };
}
