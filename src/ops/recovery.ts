/**
 * `recover`: finds what a crash, a full disk or a bug can leave in the data directory and
 * re-admits or cleans it up (with dryRun, only reports the plan):
 *
 *   tus/<id> + <id>.json, finished, no job      never reached the queue: re-admitted, or discarded
 *                                               when another upload holds its slot; if it is
 *                                               published already, only its leftover bytes go
 *   tus/<id> without <id>.json                  orphaned bytes: removed
 *   tus/<id>.json, unfinished, no data file     stale record: removed
 *   tus/<id>.json that is no JSON record        corrupt record (answers 404, never expires on its
 *                                               own terms): removed with its bytes
 *   queue/staging/<job> without a live job      orphaned PUT body: removed
 *   meta/<path>.json without files/<path>       the content store holds its bytes (cas/, same sha256
 *                                               and size): the file is restored (linked back);
 *                                               otherwise a stale record (unless a live job is
 *                                               publishing it): removed
 *   meta/**.tmp                                  interrupted record write: removed
 *   incoming/*, cas entries with no link        offline only (a running server may be using them)
 * With storage.backend = "s3" the tus uploads are judged through the TusUploadStore (finished
 * uploads without a job: re-admitted, released when published, discarded when the slot is
 * taken); staged PUT bodies as above; completed PUT bodies below the bucket's incoming/ that no
 * live job reads (a crash between the body's last part and its admission): removed, since the
 * client got no 201 and sends it again (unfinished multipart uploads there are aborted at every
 * start); published files and content live in the bucket, where a claim (`claims/<path>`) whose
 * file was deleted by hand would keep its slot taken for ever: it is released (stale_metadata).
 *
 * Runs inside a running server (admin API: `minAgeMs` keeps it off files that may be in flight)
 * and offline. The start-up reconciliation of the finalization service does the first and fourth
 * kind automatically; this finds them without a restart and shows them first.
 */
import { link, mkdir, readFile, readdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { completedTusUpload, expectedSha256FromMetadata, jobIdOf, type CompletedUpload, type FinalizeOutcome } from '../finalize/index.js';
import type { Job } from '../queue/index.js';
import { ContentAddressedStore, fileSource, parseStoredUpload, serverStateOf, type ClaimedPaths, type IncomingObject, type StoredRecord, type StoredUpload, type TusUploadStore } from '../storage/index.js';
import type { ProgressSink, RecoveryItem, RecoveryReport } from './types.js';
import { walkFiles } from './walk.js';

export interface RecoveryContext {
  readonly dataDir: string;
  /** Files touched more recently than this are left alone (0 offline). */
  readonly minAgeMs: number;
  readonly nowMs: number;
  /** True when no server runs: incoming/ and cas/ may be swept too. */
  readonly offline: boolean;
  /**
   * Staged PUT bodies this run may judge; default `<dataDir>/queue/staging`. In cluster mode only
   * this instance's own folder: another instance's bodies may belong to jobs in its local journal.
   */
  readonly stagingDir?: string;
  readonly jobById: (id: string) => Promise<Job | null>;
  readonly jobBySlot: (slotPath: string) => Promise<Job | null>;
  readonly publishedRecord: (slotPath: string) => Promise<StoredRecord | null>;
  readonly publishedExists: (slotPath: string) => Promise<boolean>;
  /** Admits a finished upload to the queue (the finalizer's own admission). */
  readonly readmit: (upload: CompletedUpload) => Promise<FinalizeOutcome>;
  /** Removes a tus upload's record and data; tolerates either being gone. */
  readonly discardUpload: (uploadId: string) => Promise<void>;
  /**
   * storage.backend = "s3": the tus store's finished uploads whose bytes are still held (instead
   * of walking <dataDir>/tus), and how to release one's bytes once published.
   */
  readonly tusStore?: Pick<TusUploadStore, 'finished' | 'releaseData'>;
  /** storage.backend = "s3": the completed PUT bodies below incoming/ and their removal. */
  readonly incomingObjects?: { list(): AsyncIterable<IncomingObject>; remove(target: string): Promise<void> };
  /** storage.backend = "s3": the published store's claims (a claim whose file is gone is released). */
  readonly claims?: ClaimedPaths;
}

interface PlannedItem extends RecoveryItem {
  readonly apply: () => Promise<void>;
  /** A restore's content-store entry: the same run must not remove it as unused. */
  readonly restoreFrom?: string;
}


export async function recover(ctx: RecoveryContext, options: { dryRun: boolean }, progress?: ProgressSink): Promise<RecoveryReport> {
  const planned = await plan(ctx);
  if (options.dryRun) return { dryRun: true, items: planned.map(({ apply: _, restoreFrom: _from, ...item }) => item), failed: 0 };
  const items: RecoveryItem[] = [];
  let failed = 0;
  progress?.({ done: 0, total: planned.length, unit: 'items' });
  for (const { apply, restoreFrom: _from, ...item } of planned) {
    let result = 'done';
    try {
      await apply();
    } catch (err) {
      result = (err as Error).message || 'failed';
      failed += 1;
    }
    items.push({ ...item, result });
    progress?.({ done: items.length, total: planned.length, unit: 'items' });
  }
  return { dryRun: false, items, failed };
}

async function plan(ctx: RecoveryContext): Promise<PlannedItem[]> {
  if (ctx.tusStore !== undefined) {
    // S3: nothing else is local.
    const incoming = ctx.incomingObjects ? await planIncomingObjects(ctx, ctx.incomingObjects) : [];
    const claims = ctx.claims ? await planClaims(ctx, ctx.claims) : [];
    return [...(await planFinished(ctx, ctx.tusStore)), ...(await planStaging(ctx)), ...incoming, ...claims];
  }
  const meta = await planMeta(ctx);
  const restoring = new Set(meta.flatMap((i) => (i.restoreFrom !== undefined ? [i.restoreFrom] : [])));
  return [...(await planTus(ctx)), ...(await planStaging(ctx)), ...meta, ...(ctx.offline ? await planOfflineOnly(ctx, restoring) : [])];
}

/** The finished uploads of a tus store (S3): the same judgement as planTus, through the interface. */
async function planFinished(ctx: RecoveryContext, store: Pick<TusUploadStore, 'finished' | 'releaseData'>): Promise<PlannedItem[]> {
  const out: PlannedItem[] = [];
  for await (const u of store.finished()) {
    const state = u.state;
    if (state === null || state.concat?.kind === 'partial') continue; // not created through a slot, or joined into its final upload
    const { slotPath } = state;
    const jobId = jobIdOf({ protocol: 'tus', uploadId: u.id });
    if ((await ctx.jobById(jobId)) !== null) continue;
    if ((await ctx.publishedRecord(slotPath))?.uploadId === u.id && (await ctx.publishedExists(slotPath))) {
      out.push(item('published_leftover', 'remove', `uploads/${u.id}`, `bytes of ${slotPath}, published already`, u.size, () => store.releaseData(u.id)));
      continue;
    }
    const holder = await ctx.jobBySlot(slotPath);
    if ((holder !== null && holder.id !== jobId) || (await ctx.publishedExists(slotPath))) {
      out.push(item('slot_taken_upload', 'discard', `uploads/${u.id}`, `${slotPath} is held by another upload`, u.size, () => ctx.discardUpload(u.id)));
      continue;
    }
    const upload = completedTusUpload(u, state);
    out.push(
      item('unqueued_upload', 'readmit', `uploads/${u.id}`, `finished upload of ${slotPath} never reached the queue`, u.size, async () => {
        if ((await ctx.readmit(upload)) === 'exists') {
          await ctx.discardUpload(u.id);
          throw new Error('slot taken meanwhile: discarded');
        }
      }),
    );
  }
  return out;
}

const old = (ctx: RecoveryContext, mtimeMs: number) => ctx.nowMs - mtimeMs >= ctx.minAgeMs;

async function planTus(ctx: RecoveryContext): Promise<PlannedItem[]> {
  const dir = join(ctx.dataDir, 'tus');
  // Index files beside the records (a slot's partials `concat.<hash>.json`, an IETF resource
  // `rufh.<hash>.json`) and temp files have a '.' in their key, which no upload id has: not uploads.
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => !n.startsWith('.') && !n.replace(/\.json$/, '').includes('.'));
  const records = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length)));
  const data = new Set(names.filter((n) => !n.endsWith('.json')));
  const out: PlannedItem[] = [];
  for (const id of [...new Set([...records, ...data])].sort()) {
    const dataFile = join(dir, id);
    const recordFile = join(dir, `${id}.json`);
    const dataStat = data.has(id) ? await stat(dataFile).catch(() => null) : null;
    if (!records.has(id)) {
      if (dataStat?.isFile() && old(ctx, dataStat.mtimeMs)) {
        out.push(item('orphan_file', 'remove', `tus/${id}`, 'upload bytes without a tus record', dataStat.size, () => removeFile(dataFile)));
      }
      continue;
    }
    const recordStat = await stat(recordFile).catch(() => null);
    if (recordStat === null || !old(ctx, Math.max(recordStat.mtimeMs, dataStat?.mtimeMs ?? 0))) continue;
    const record = await readRecord(recordFile);
    if (record === 'unreadable') {
      // Answers 404 and is skipped by every pass: nothing can resume or publish it.
      const detail = `tus record is not readable (not JSON): the upload can be neither resumed nor published${dataStat ? '; its bytes go with it' : ''}`;
      out.push(item('corrupt_record', 'remove', `tus/${id}.json`, detail, dataStat?.size ?? 0, () => ctx.discardUpload(id)));
      continue;
    }
    if (record === null) continue;
    const finished = typeof record.size === 'number' && record.offset === record.size;
    if (!finished) {
      if (dataStat === null) out.push(item('stale_metadata', 'remove', `tus/${id}.json`, 'unfinished upload whose bytes are gone', 0, () => removeFile(recordFile)));
      continue; // unfinished with bytes: a client may still resume it (expiry removes it later)
    }
    if (dataStat === null) continue; // finished and published: the record answers HEAD for resuming clients
    const state = serverStateOf(record); // the server's state in the record (older records: in the metadata)
    if (state === null) continue; // not created through a slot: nothing to publish
    if (state.concat?.kind === 'partial') continue; // joined into its final upload, never published alone
    const { slotPath, contentType } = state;
    if ((await ctx.jobById(jobIdOf({ protocol: 'tus', uploadId: id }))) !== null) continue;
    const size = record.size!;
    if ((await ctx.publishedRecord(slotPath))?.uploadId === id && (await ctx.publishedExists(slotPath))) {
      out.push(item('published_leftover', 'remove', `tus/${id}`, `bytes of ${slotPath}, published already`, size, () => removeFile(dataFile)));
      continue;
    }
    const holder = await ctx.jobBySlot(slotPath);
    if ((holder !== null && holder.id !== jobIdOf({ protocol: 'tus', uploadId: id })) || (await ctx.publishedExists(slotPath))) {
      out.push(item('slot_taken_upload', 'discard', `tus/${id}`, `${slotPath} is held by another upload`, size, () => ctx.discardUpload(id)));
      continue;
    }
    const upload: CompletedUpload = {
      protocol: 'tus',
      uploadId: id,
      slotPath,
      contentType,
      size,
      source: fileSource(dataFile, size),
      ...(state.expectedSha256 !== undefined ? { expectedSha256: state.expectedSha256 } : expectedChecksum(record.metadata ?? {})),
    };
    out.push(
      item('unqueued_upload', 'readmit', `tus/${id}`, `finished upload of ${slotPath} never reached the queue`, size, async () => {
        if ((await ctx.readmit(upload)) === 'exists') {
          await ctx.discardUpload(id);
          throw new Error('slot taken meanwhile: discarded');
        }
      }),
    );
  }
  return out;
}

function expectedChecksum(metadata: Record<string, string | null>): Pick<CompletedUpload, 'expectedSha256'> {
  const declared = expectedSha256FromMetadata(metadata);
  return declared === undefined ? {} : { expectedSha256: declared };
}

async function planStaging(ctx: RecoveryContext): Promise<PlannedItem[]> {
  const out: PlannedItem[] = [];
  const stagingDir = ctx.stagingDir ?? join(ctx.dataDir, 'queue', 'staging');
  const shown = relative(ctx.dataDir, stagingDir);
  for await (const f of walkFiles(stagingDir)) {
    if (!old(ctx, f.mtimeMs)) continue;
    const job = await ctx.jobById(f.rel);
    if (job !== null && job.state !== 'done') continue;
    const why = job === null ? 'staged PUT body without a job' : 'staged PUT body of a job that is done';
    out.push(item('orphan_file', 'remove', `${shown}/${f.rel}`, why, f.size, () => removeFile(f.path)));
  }
  return out;
}

/** S3: a completed PUT body is its job's source until the job is done; a dead letter keeps it for replay. */
async function planIncomingObjects(ctx: RecoveryContext, objects: NonNullable<RecoveryContext['incomingObjects']>): Promise<PlannedItem[]> {
  const out: PlannedItem[] = [];
  for await (const o of objects.list()) {
    if (!old(ctx, o.lastModifiedMs)) continue;
    const job = await ctx.jobById(jobIdOf({ protocol: 'put', uploadId: o.uploadId }));
    if (job !== null && job.state !== 'done') continue;
    const why = job === null ? 'PUT body that never reached the queue (the client got no 201)' : 'PUT body of a job that is done';
    out.push(item('orphan_file', 'remove', o.target, why, o.size, () => objects.remove(o.target)));
  }
  return out;
}

/** S3: claims without their file, as planMeta judges records without theirs (no content-store restore: a claim names no sha256). */
async function planClaims(ctx: RecoveryContext, claims: ClaimedPaths): Promise<PlannedItem[]> {
  const out: PlannedItem[] = [];
  for await (const c of claims.unpublishedClaims()) {
    if (!old(ctx, c.mtimeMs) || (await ctx.publishedExists(c.path))) continue;
    const job = await ctx.jobBySlot(c.path);
    // Its publish runs or waits (claim first, then copy; a dead letter's replay finishes it; its purge leaves the claim to the next run).
    if (job !== null && job.state !== 'done') continue;
    const detail = 'claim of a file that is not published (deleted from the bucket?): released, the slot can be uploaded again';
    out.push(item('stale_metadata', 'remove', `claims/${c.path}`, detail, 0, async () => void (await claims.releaseClaim(c.path))));
  }
  return out;
}

async function planMeta(ctx: RecoveryContext): Promise<PlannedItem[]> {
  const out: PlannedItem[] = [];
  for await (const f of walkFiles(join(ctx.dataDir, 'meta'))) {
    if (!old(ctx, f.mtimeMs)) continue;
    if (f.rel.endsWith('.tmp')) {
      out.push(item('orphan_file', 'remove', `meta/${f.rel}`, 'interrupted record write', f.size, () => removeFile(f.path)));
      continue;
    }
    if (!f.rel.endsWith('.json')) continue;
    const slotPath = f.rel.slice(0, -'.json'.length);
    if (await ctx.publishedExists(slotPath)) continue;
    if ((await ctx.publishedRecord(slotPath))?.deletedAtMs !== undefined) continue; // a deleted file's tombstone: its slot stays used
    const job = await ctx.jobBySlot(slotPath);
    if (job !== null && (job.state === 'queued' || job.state === 'leased')) continue; // publish in progress: record first, then link
    const record = await ctx.publishedRecord(slotPath);
    const content = await keptContent(ctx, record);
    if (content !== null) {
      const target = join(ctx.dataDir, 'files', slotPath);
      const size = typeof record?.size === 'number' ? record.size : (await stat(content)).size;
      out.push({ ...item('lost_file', 'restore', `files/${slotPath}`, `published file gone; restored from cas/${relative(join(ctx.dataDir, 'cas'), content)}`, size, () => linkInto(content, target)), restoreFrom: content });
      continue;
    }
    out.push(item('stale_metadata', 'remove', `meta/${f.rel}`, 'record of a file that is not published', f.size, () => removeFile(f.path)));
  }
  return out;
}

/** The content-store entry holding a lost published file's bytes (its record's sha256, and size when recorded), or null. */
async function keptContent(ctx: RecoveryContext, record: StoredRecord | null): Promise<string | null> {
  if (typeof record?.sha256 !== 'string') return null;
  return new ContentAddressedStore(join(ctx.dataDir, 'cas')).find(record.sha256, typeof record.size === 'number' ? record.size : undefined);
}

async function linkInto(content: string, target: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true, mode: 0o750 });
  await link(content, target);
}

async function planOfflineOnly(ctx: RecoveryContext, restoring: ReadonlySet<string> = new Set()): Promise<PlannedItem[]> {
  const out: PlannedItem[] = [];
  for await (const f of walkFiles(join(ctx.dataDir, 'incoming'))) {
    out.push(item('orphan_file', 'remove', `incoming/${f.rel}`, 'temp file of an interrupted PUT', f.size, () => removeFile(f.path)));
  }
  for await (const f of walkFiles(join(ctx.dataDir, 'cas'))) {
    // A content entry is linked from every published file with its bytes: one link is its own.
    if (f.nlink === 1 && !restoring.has(f.path)) out.push(item('orphan_file', 'remove', `cas/${f.rel}`, 'stored content no published file uses', f.size, () => removeFile(f.path)));
  }
  return out;
}

function item(kind: RecoveryItem['kind'], action: RecoveryItem['action'], target: string, detail: string, bytes: number, apply: () => Promise<void>): PlannedItem {
  return { kind, action, target, detail, bytes, apply };
}

async function removeFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** A tus record; null when the file cannot be read (gone meanwhile); 'unreadable' when it is no record. */
async function readRecord(path: string): Promise<StoredUpload | 'unreadable' | null> {
  const text = await readFile(path, 'utf8').catch(() => null);
  return text === null ? null : (parseStoredUpload(text) ?? 'unreadable');
}
