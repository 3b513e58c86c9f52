/**
 * QuarantineStore in the S3 bucket, below the configured key prefix, so that every instance (a
 * cluster shares the bucket, not a disk) and the offline CLI see the same entries:
 *   quarantine/entries/<id>.json   the record (JSON)
 *   quarantine/bytes/<id>          the bytes, with the reason, signature and sha256 as x-amz-meta-*
 *   quarantine/slots/<slot path>   the id of the entry holding that slot path (lookup by slot)
 * Nothing serves this area: downloads read only files/ (s3-published-store.ts). Bytes come in by
 * a server-side copy of an object in the bucket (no bytes through this process) or are streamed
 * from elsewhere; the caller removes the source afterwards. There is no local index: every lookup
 * asks the bucket, so an entry made or removed by another instance is seen at once.
 */
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { QuarantineRecord, QuarantineStore } from './quarantine-store.js';
import { isS3NotFound } from './s3-client.js';
import { copyObject, objectSource, uploadSource, type CopyOptions } from './s3-objects.js';
import { s3ObjectOf, type UploadSource } from './upload-source.js';

export interface S3QuarantineStoreOptions extends CopyOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** '' or ending in '/'. */
  readonly keyPrefix: string;
}

/** The area below the key prefix. */
export const S3_QUARANTINE_AREA = 'quarantine/';

const ID = /^[A-Za-z0-9_-]{1,200}$/;
/** Records read at once by list(). */
const LIST_CONCURRENCY = 8;

export class S3QuarantineStore implements QuarantineStore {
  readonly #o: S3QuarantineStoreOptions;
  readonly #area: string;

  constructor(options: S3QuarantineStoreOptions) {
    this.#o = options;
    this.#area = `${options.keyPrefix}${S3_QUARANTINE_AREA}`;
  }

  async admit(record: QuarantineRecord, source: UploadSource): Promise<'moved' | 'copied'> {
    const id = checkedId(record.id);
    // Record first: from here on the slot answers 451, even if the copy below is cut by a crash.
    await this.#put(this.#entryKey(id), JSON.stringify(record), 'application/json');
    await this.#put(this.#slotKey(record.slotPath), id, 'text/plain');
    const key = this.#bytesKey(id);
    if (await this.#exists(key)) return 'copied'; // an earlier run copied them; the caller removes the source
    const write = {
      bucket: this.#o.bucket,
      key,
      contentType: 'application/octet-stream', // never the upload's type: these bytes are not for browsers
      metadata: {
        'quarantine-id': id,
        reason: record.reason,
        signature: encodeURIComponent(record.signature ?? ''),
        sha256: record.sha256,
        'quarantined-at-ms': String(record.quarantinedAtMs),
      },
    };
    try {
      const from = s3ObjectOf(source);
      if (from !== null) await copyObject(this.#o.client, from, source.size, write, this.#o);
      else await uploadSource(this.#o.client, source, write, this.#o.partBytes);
    } catch (err) {
      if (isS3NotFound(err) || (err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw Object.assign(new Error('the quarantined upload source is gone'), { code: 'ENOENT', cause: err });
      }
      throw err;
    }
    return 'copied';
  }

  async get(id: string): Promise<QuarantineRecord | null> {
    if (!ID.test(id)) return null;
    const text = await this.#text(this.#entryKey(id));
    if (text === null) return null;
    try {
      return JSON.parse(text) as QuarantineRecord;
    } catch {
      return null;
    }
  }

  async bySlot(slotPath: string): Promise<QuarantineRecord | null> {
    const id = await this.#text(this.#slotKey(slotPath));
    if (id === null) return null;
    const record = await this.get(id);
    return record?.slotPath === slotPath ? record : null; // a slot key a crashed remove() left names nothing
  }

  async list(): Promise<QuarantineRecord[]> {
    const ids = await this.#ids();
    const records: QuarantineRecord[] = [];
    for (let i = 0; i < ids.length; i += LIST_CONCURRENCY) {
      for (const r of await Promise.all(ids.slice(i, i + LIST_CONCURRENCY).map((id) => this.get(id)))) if (r !== null) records.push(r);
    }
    return records.sort((a, b) => a.quarantinedAtMs - b.quarantinedAtMs || a.id.localeCompare(b.id));
  }

  /** How many entries there are (listing only: for the hmac_quarantine_files gauge, read when scraped). */
  async count(): Promise<number> {
    return (await this.#ids()).length;
  }

  async #ids(): Promise<string[]> {
    const prefix = `${this.#area}entries/`;
    const ids: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.#o.client.send(new ListObjectsV2Command({ Bucket: this.#o.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const name = o.Key?.slice(prefix.length) ?? '';
        if (name.endsWith('.json')) ids.push(name.slice(0, -'.json'.length));
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return ids;
  }

  content(record: QuarantineRecord): UploadSource {
    return objectSource(this.#o.client, this.#o.bucket, this.#bytesKey(checkedId(record.id)), record.size);
  }

  async remove(id: string): Promise<boolean> {
    const record = await this.get(id);
    if (record === null) return false;
    await this.#delete(this.#bytesKey(id));
    if ((await this.#text(this.#slotKey(record.slotPath))) === id) await this.#delete(this.#slotKey(record.slotPath));
    await this.#delete(this.#entryKey(id)); // last: a remove cut by a crash can be repeated
    return true;
  }

  async #put(Key: string, Body: string, ContentType: string): Promise<void> {
    await this.#o.client.send(new PutObjectCommand({ Bucket: this.#o.bucket, Key, Body, ContentType }));
  }

  async #delete(Key: string): Promise<void> {
    await this.#o.client.send(new DeleteObjectCommand({ Bucket: this.#o.bucket, Key })); // 204 for a missing key too
  }

  async #text(Key: string): Promise<string | null> {
    try {
      const got = await this.#o.client.send(new GetObjectCommand({ Bucket: this.#o.bucket, Key }));
      return (await got.Body?.transformToString()) ?? '';
    } catch (err) {
      if (isS3NotFound(err)) return null;
      throw err;
    }
  }

  async #exists(Key: string): Promise<boolean> {
    try {
      await this.#o.client.send(new HeadObjectCommand({ Bucket: this.#o.bucket, Key }));
      return true;
    } catch (err) {
      if (isS3NotFound(err)) return false;
      throw err;
    }
  }

  #entryKey(id: string): string {
    return `${this.#area}entries/${id}.json`;
  }

  #bytesKey(id: string): string {
    return `${this.#area}bytes/${id}`;
  }

  #slotKey(slotPath: string): string {
    return `${this.#area}slots/${slotPath}`;
  }
}

function checkedId(id: string): string {
  if (!ID.test(id)) throw new TypeError(`not a quarantine id: ${JSON.stringify(id)}`);
  return id;
}
