/**
 * `verify`: re-hashes every published file and compares it with the record written when it was
 * published (size and sha256). Only reads, so it runs the same way inside a running server (admin
 * API) and offline. Files published without a recorded hash are counted as unverifiable.
 */
import { join } from 'node:path';
import { sha256File } from '../finalize/index.js';
import type { StoredRecord } from '../storage/index.js';
import type { ProgressSink, VerifyProblem, VerifyReport } from './types.js';
import { walkFiles, type WalkedFile } from './walk.js';

export interface VerifyOptions {
  readonly dataDir: string;
  /** The published-file record of a slot path, or null (FilePublishedStore.record). */
  readonly record: (slotPath: string) => Promise<StoredRecord | null>;
  readonly progress?: ProgressSink;
  readonly signal?: AbortSignal;
}

export async function verifyPublished(options: VerifyOptions): Promise<VerifyReport> {
  const filesDir = join(options.dataDir, 'files');
  // First pass: what is there, so the progress bar knows the total (bytes, for an honest ETA).
  const files: WalkedFile[] = [];
  for await (const f of walkFiles(filesDir)) files.push(f);
  const total = files.reduce((n, f) => n + f.size, 0);
  const problems: VerifyProblem[] = [];
  let done = 0;
  let unverifiable = 0;
  options.progress?.({ done, total, unit: 'bytes' });
  for (const f of files) {
    options.signal?.throwIfAborted();
    const problem = await checkOne(f, options);
    if (problem === 'unverifiable') unverifiable += 1;
    else if (problem !== null) problems.push(problem);
    done += f.size;
    options.progress?.({ done, total, unit: 'bytes' });
  }
  return { checked: files.length, bytes: total, unverifiable, problems };
}

async function checkOne(f: WalkedFile, options: VerifyOptions): Promise<VerifyProblem | 'unverifiable' | null> {
  const slotPath = f.rel;
  const record = await options.record(slotPath);
  if (record === null) return { slotPath, kind: 'no_record', detail: 'no metadata record beside the published file' };
  if (typeof record.size === 'number' && record.size !== f.size) {
    return { slotPath, kind: 'size_mismatch', detail: `recorded ${record.size} bytes, file has ${f.size}` };
  }
  if (typeof record.sha256 !== 'string') return 'unverifiable';
  let actual: string;
  try {
    actual = await sha256File(f.path, options.signal ? { signal: options.signal } : {});
  } catch (err) {
    if (options.signal?.aborted) throw err;
    return { slotPath, kind: 'unreadable', detail: (err as NodeJS.ErrnoException).code ?? 'read failed' };
  }
  if (actual !== record.sha256) return { slotPath, kind: 'corrupt', detail: `recorded sha256 ${record.sha256}, file hashes to ${actual}` };
  return null;
}
