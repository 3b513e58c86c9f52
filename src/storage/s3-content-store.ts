/**
 * ContentStore on S3: each distinct content once, at <prefix>cas/<2 hex>/<sha256>, copied in
 * server-side from an S3 source (streamed from any other). Two adoptions of the same content at
 * once both write identical bytes, so no claim is needed. The entry's `origin` metadata names the
 * source that brought it in, so a re-run of that adoption (after a crash) still counts as fresh.
 *
 * S3 has no hard links: a file published from an entry is a copy of it, so dedup here saves the
 * upload's own bytes being kept twice, not the published copies.
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { AdoptedSource, ContentStore } from './published-store.js';
import { S3_LAYOUT, isS3NotFound } from './s3-client.js';
import { copyObject, objectSource, uploadSource, type CopyOptions } from './s3-objects.js';
import { s3ObjectOf, type UploadSource } from './upload-source.js';

export interface S3ContentStoreOptions extends CopyOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** '' or ending in '/'. */
  readonly keyPrefix: string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const ORIGIN = 'origin';

export class S3ContentStore implements ContentStore {
  readonly #o: S3ContentStoreOptions;

  constructor(options: S3ContentStoreOptions) {
    this.#o = options;
  }

  async adoptSource(source: UploadSource, sha256: string, size: number): Promise<AdoptedSource> {
    if (!SHA256_HEX.test(sha256)) throw new TypeError(`not a lowercase sha256 hex digest: ${sha256}`);
    const key = `${this.#o.keyPrefix}${S3_LAYOUT.cas}${sha256.slice(0, 2)}/${sha256}`;
    const entry = objectSource(this.#o.client, this.#o.bucket, key, size);
    let head;
    try {
      head = await this.#o.client.send(new HeadObjectCommand({ Bucket: this.#o.bucket, Key: key }));
    } catch (err) {
      if (!isS3NotFound(err)) throw err;
    }
    if (head !== undefined) {
      if (head.ContentLength !== size) throw new Error(`content store entry ${sha256} holds ${head.ContentLength} bytes, expected ${size}`);
      return { source: entry, fresh: head.Metadata?.[ORIGIN] === encodeURIComponent(source.ref) };
    }
    // Metadata values are US-ASCII: a ref may hold any path.
    const write = { bucket: this.#o.bucket, key, contentType: 'application/octet-stream', metadata: { [ORIGIN]: encodeURIComponent(source.ref) } };
    const from = s3ObjectOf(source);
    if (from !== null) await copyObject(this.#o.client, from, size, write, this.#o);
    else await uploadSource(this.#o.client, source, write, this.#o.partBytes);
    return { source: entry, fresh: true };
  }
}
