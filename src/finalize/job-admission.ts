/**
 * Job admission: a completed upload becomes a durable finalization job (the UploadFinalizer
 * half of finalization). Only this step is called "admission"; compare the intake gate (before
 * an upload starts) and the concurrency permits (bodies streaming at once).
 * Order, for crash safety: the bytes are fsynced (a local source), a PUT body is moved out of the HTTP layer's
 * temp dir into staging, then the job is inserted (the slot claim and the admission are one
 * atomic insert). A crash before the insert leaves a staged file without a job (removed at
 * start: the client never got its answer) or a finished tus upload without a job (admitted at
 * start, recovery.ts); a crash after it leaves a job that recovery runs.
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { fileSourceRef, fsyncDir, fsyncPath, localPathOf } from '../storage/index.js';
import { tierForSize, type PriorityLevels, type PriorityTier, type QueueBackend } from '../queue/index.js';
import type { FinalizeStep } from './finalization-options.js';
import { jobIdOf, toPayload, type FinalizeJobPayload } from './job-payload.js';
import type { PublishTarget } from './pipeline.js';
import type { CompletedUpload, FinalizeOutcome } from './types.js';

export interface JobAdmissionDeps {
  readonly backend: QueueBackend;
  readonly published: PublishTarget;
  readonly stagingDir: string;
  readonly priorityLevels: PriorityLevels;
  readonly now: () => number;
  readonly expectedSha256: (upload: CompletedUpload) => Promise<string | null | undefined>;
  readonly onStep?: (step: FinalizeStep, jobId: string) => void | Promise<void>;
}

/** `admitted`: the tier of a newly inserted job, null when nothing new was inserted. */
export interface JobAdmissionResult {
  readonly outcome: FinalizeOutcome;
  readonly admitted: PriorityTier | null;
}

export async function admitJob(upload: CompletedUpload, deps: JobAdmissionDeps): Promise<JobAdmissionResult> {
  const { backend, published, stagingDir } = deps;
  const id = jobIdOf(upload);
  await deps.onStep?.('admit-before-insert', id);
  if ((await published.stat(upload.slotPath)) !== null) {
    const mine = (await published.record(upload.slotPath))?.uploadId === upload.uploadId;
    return { outcome: mine ? 'accepted' : 'exists', admitted: null };
  }
  const expectedSha256 = await deps.expectedSha256(upload);
  // A local source is fsynced (and a PUT body staged); an object source is durable once stored.
  const sourceFile = localPathOf(upload.source);
  if (sourceFile !== null) await fsyncPath(sourceFile); // the bytes are on disk before the job says they are complete
  const staged = upload.protocol === 'put' && sourceFile !== null ? join(stagingDir, id) : null;
  if (staged !== null) {
    await rename(sourceFile!, staged);
    await fsyncDir(stagingDir);
  }
  const payload: FinalizeJobPayload = {
    protocol: upload.protocol,
    uploadId: upload.uploadId,
    contentType: upload.contentType,
    source: staged !== null ? fileSourceRef(staged) : upload.source.ref,
    receivedAtMs: deps.now(),
    ...(expectedSha256 !== undefined && { expectedSha256 }),
    ...(upload.sha256 !== undefined && { receivedSha256: upload.sha256 }),
  };
  const priority = tierForSize(upload.size, deps.priorityLevels);
  let added: boolean;
  try {
    added = await backend.enqueue({ id, slotPath: upload.slotPath, size: upload.size, priority, payload: toPayload(payload), enqueuedAtMs: deps.now() });
  } catch (err) {
    if (staged !== null) await rename(staged, sourceFile!).catch(() => {});
    throw err;
  }
  if (!added) {
    const existing = await backend.get(id);
    if (existing !== null && existing.slotPath === upload.slotPath) return { outcome: 'accepted', admitted: null }; // admitted before
    if (staged !== null) await rename(staged, sourceFile!); // the contract: on 'exists' the source stays with the caller
    return { outcome: 'exists', admitted: null };
  }
  await deps.onStep?.('admit-after-insert', id);
  return { outcome: 'accepted', admitted: priority };
}
