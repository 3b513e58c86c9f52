/**
 * What operators do with quarantined files, online (admin API, through the running server) and
 * offline (CLI on the data directory) alike:
 *   list     every entry, oldest first
 *   release  publish it anyway, at its slot path (dedup and record as the pipeline does); the
 *            entry is removed once the file is published. No webhook is sent.
 *   delete   remove the bytes and the entry (and a tus upload's record, so a resuming client
 *            sees 404); the slot is free again once its finished job is pruned.
 */
import type { Logger } from '../observability/index.js';
import { metrics } from '../observability/index.js';
import { isSourceGone, type PublishRecord, type QuarantineRecord, type QuarantineStore } from '../storage/index.js';
import type { DedupStore, PublishTarget } from './pipeline.js';
import type { QuarantinedEvent } from './pipeline.js';

export interface QuarantineAdminOptions {
  readonly quarantine: QuarantineStore;
  readonly published: PublishTarget;
  /** null: [finalize] dedup = false. */
  readonly cas: DedupStore | null;
  /** Removes a tus upload's record and data; tolerates either being gone. */
  readonly discardTusUpload: (uploadId: string) => Promise<void>;
  readonly log: Logger;
}

export type ReleaseResult =
  | { readonly kind: 'released'; readonly record: QuarantineRecord }
  | { readonly kind: 'unknown' }
  /** Another file is published at the slot path: nothing changed. */
  | { readonly kind: 'slot_taken' }
  /** The entry has no bytes any more (removed by hand): nothing changed. */
  | { readonly kind: 'bytes_missing' };

export class QuarantineAdmin {
  readonly #o: QuarantineAdminOptions;

  constructor(options: QuarantineAdminOptions) {
    this.#o = options;
  }

  list(): Promise<QuarantineRecord[]> {
    return this.#o.quarantine.list();
  }

  get(id: string): Promise<QuarantineRecord | null> {
    return this.#o.quarantine.get(id);
  }

  /** Publishes the entry's bytes at its slot path, then removes the entry. Idempotent after a crash. */
  async release(id: string): Promise<ReleaseResult> {
    const { quarantine, published, cas, log } = this.#o;
    const record = await quarantine.get(id);
    if (record === null) return { kind: 'unknown' };
    let content = quarantine.content(record);
    const publishRecord: PublishRecord = {
      contentType: record.contentType,
      uploadId: record.uploadId,
      sha256: record.sha256,
      size: record.size,
      protocol: record.protocol,
      receivedAtMs: record.receivedAtMs,
    };
    try {
      if (cas !== null) content = (await cas.adoptSource(content, record.sha256, record.size)).source;
    } catch (err) {
      if (isSourceGone(err)) return { kind: 'bytes_missing' };
      throw err;
    }
    let outcome;
    try {
      outcome = await published.publish(record.slotPath, content, publishRecord);
    } catch (err) {
      if (isSourceGone(err)) return { kind: 'bytes_missing' };
      throw err;
    }
    if (outcome === 'taken') return { kind: 'slot_taken' };
    await quarantine.remove(id);
    metrics.quarantineFiles.dec();
    log.info({ quarantineId: id, slotPath: record.slotPath, reason: record.reason, signature: record.signature }, 'Quarantined file released');
    return { kind: 'released', record };
  }

  /** Removes the entry and its bytes (and a tus upload's record); false for an unknown id. */
  async delete(id: string): Promise<boolean> {
    const { quarantine, log } = this.#o;
    const record = await quarantine.get(id);
    if (record === null) return false;
    await quarantine.remove(id);
    if (record.protocol === 'tus') await this.#o.discardTusUpload(record.uploadId);
    metrics.quarantineFiles.dec();
    log.info({ quarantineId: id, slotPath: record.slotPath, reason: record.reason }, 'Quarantined file deleted');
    return true;
  }
}

/** hmac_quarantined_total, hmac_scan_detections_total and the log line of a file moved to quarantine. */
export function reportQuarantined(log: Logger, e: QuarantinedEvent): void {
  if (!e.fresh) return;
  const { record } = e;
  metrics.quarantined.inc({ reason: record.reason });
  metrics.quarantineFiles.inc();
  const fields = { jobId: e.job.id, slotPath: record.slotPath, protocol: record.protocol, size: record.size, sha256: record.sha256, signature: record.signature };
  if (record.reason === 'infected') {
    metrics.scanDetections.inc();
    log.warn(fields, 'File quarantined: malware detected');
  } else log.warn(fields, 'File quarantined: too large to scan');
}
