/**
 * The S3 tus store's metadata cache in cluster mode (issue 13.8): entries live only as long as
 * the request that read them.
 *
 * @tus/s3-store caches what it read from an upload's `<id>.info` object (size, metadata, the
 * server's state, the multipart upload id); the offset is never cached (ListParts plus the
 * trailing `.part` on every call). Its default cache is per process and never expires, which is
 * wrong once another instance changes `.info` or ends the upload: a length declared later (defer
 * length) stays unknown at B, and an upload terminated at A still has its multipart id in B's
 * cache, so B's ListParts gets NoSuchUpload, which @tus/s3-store reads as "complete".
 *
 * A shared Redis cache was the alternative. It is not used: every HEAD and PATCH would then need
 * Redis (uploads must keep working while it is down, 13.5), @tus/s3-store changes cached entries
 * in place (declareUploadLength) which a serialized cache would lose, and it would save one small
 * GET per request against the ListParts and HEAD of `.part` each request costs anyway. One
 * request holds the upload's lock, so within it the entry cannot change under it.
 */
import type { KvStore } from '@tus/utils';

export class RequestScopedKvStore<V> implements KvStore<V> {
  /** Keyed by the request's scope object: entries go with the request. */
  readonly #byRequest = new WeakMap<object, Map<string, V>>();

  /** `current`: the running request's scope object, undefined outside a request (nothing is kept). */
  constructor(private readonly current: () => object | undefined) {}

  async get(key: string): Promise<V | undefined> {
    const scope = this.current();
    return scope === undefined ? undefined : this.#byRequest.get(scope)?.get(key);
  }

  async set(key: string, value: V): Promise<void> {
    const scope = this.current();
    if (scope === undefined) return;
    let entries = this.#byRequest.get(scope);
    if (entries === undefined) this.#byRequest.set(scope, (entries = new Map()));
    entries.set(key, value);
  }

  async delete(key: string): Promise<void> {
    const scope = this.current();
    if (scope !== undefined) this.#byRequest.get(scope)?.delete(key);
  }
}
