/**
 * What holds the data directory's space (GET /admin/space, `hmac-file-server space`): the file
 * system with its reserve and the bytes promised to unfinished uploads, those uploads oldest
 * first, dead letters, the queue's files and the PUT bodies streaming; and the commands that
 * free each. Reads the disk (one record per unfinished upload, one stat per file of the queue
 * and incoming directories): an operator's call, never a request's.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SizeOrPercent } from '../config/index.js';
import { headroom, reserveBytes, spaceLevel } from '../intake/index.js';
import { secondsSince, type SpaceProbe, type UploadSummary } from '../storage/index.js';
import type { SpaceFilesystemView, SpaceReport, SpaceUploadView } from './types.js';

const MAX_LISTED = 200;
const DEAD_LETTER_PAGE = 500;
const MAX_DEAD_LETTERS_SUMMED = 20_000;

export interface SpaceReportSources {
  readonly dataDir: string;
  readonly nowMs: number;
  /** The running server's view (its live account of promised bytes); offline, see offlineFilesystem. */
  readonly filesystem: (unfinished: readonly UploadSummary[]) => Promise<SpaceFilesystemView | null>;
  readonly unfinished: () => Promise<readonly UploadSummary[]>;
  readonly deadLetterCount: () => Promise<number>;
  readonly deadLetters: (page: { limit: number; offset: number }) => Promise<ReadonlyArray<{ readonly size: number }>>;
  /** null offline. */
  readonly admissionsWaitingForSpace: number | null;
}

export async function spaceReport(src: SpaceReportSources): Promise<SpaceReport> {
  const unfinished = await src.unfinished();
  const [filesystem, deadLetters, journalBytes, stagedBytes, incomingBytes] = await Promise.all([
    src.filesystem(unfinished),
    deadLetterBytes(src),
    bytesIn(join(src.dataDir, 'queue')),
    bytesIn(join(src.dataDir, 'queue', 'staging')),
    bytesIn(join(src.dataDir, 'incoming')),
  ]);
  const uploads = unfinished.map((u) => uploadView(u, src.nowMs)).sort((a, b) => (b.ageSeconds ?? 0) - (a.ageSeconds ?? 0));
  const storedBytes = sum(uploads.map((u) => u.storedBytes));
  const promisedBytes = sum(uploads.map((u) => u.promisedBytes));
  const hints: string[] = [];
  if (uploads.length > 0) hints.push('unfinished uploads: `hmac-file-server uploads expire --older-than 12h` frees their stored and promised bytes');
  if (deadLetters.count > 0) hints.push('dead letters: `hmac-file-server dlq purge --all` frees their bytes (or `dlq replay --all` once their cause is fixed)');
  if ((src.admissionsWaitingForSpace ?? 0) > 0) hints.push('completed uploads wait for room to be finalized: they are published as soon as space is freed');
  return {
    filesystem,
    unfinishedUploads: { count: uploads.length, storedBytes, promisedBytes, oldest: uploads.slice(0, MAX_LISTED) },
    deadLetters,
    queue: { journalBytes, stagedBytes, admissionsWaitingForSpace: src.admissionsWaitingForSpace },
    incomingBytes,
    hints,
  };
}

/** The file system as a stopped server's intake would see it: statfs, the configured reserve, promises from the records. */
export async function offlineFilesystem(probe: SpaceProbe, reserve: SizeOrPercent, unfinished: readonly UploadSummary[]): Promise<SpaceFilesystemView | null> {
  const capacity = probe.capacity();
  if (capacity === null) return null;
  const reading = {
    ...capacity,
    reserveBytes: reserveBytes(reserve, capacity.totalBytes),
    promisedBytes: sum(unfinished.map((u) => promisedOf(u))),
  };
  return { ...reading, headroomBytes: headroom(reading), emergency: spaceLevel(reading, 'ok') === 'low' };
}

function uploadView(u: UploadSummary, nowMs: number): SpaceUploadView {
  const seconds = (iso: string | null) => secondsSince(iso, nowMs);
  return {
    id: u.id,
    slotPath: u.slotPath,
    size: u.size,
    storedBytes: u.offset,
    promisedBytes: promisedOf(u),
    ageSeconds: seconds(u.createdAt),
    idleSeconds: seconds(u.lastActivityAt ?? u.createdAt),
  };
}

function promisedOf(u: UploadSummary): number {
  return u.size === null ? 0 : Math.max(0, u.size - u.offset);
}

async function deadLetterBytes(src: SpaceReportSources): Promise<{ count: number; bytes: number }> {
  const count = await src.deadLetterCount();
  let bytes = 0;
  for (let offset = 0; offset < Math.min(count, MAX_DEAD_LETTERS_SUMMED); offset += DEAD_LETTER_PAGE) {
    const page = await src.deadLetters({ limit: DEAD_LETTER_PAGE, offset });
    bytes += sum(page.map((d) => d.size));
    if (page.length < DEAD_LETTER_PAGE) break;
  }
  return { count, bytes };
}

/** Bytes of the regular files directly in `dir` (0 when it does not exist). */
async function bytesIn(dir: string): Promise<number> {
  let bytes = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const st = await stat(join(dir, name)).catch(() => null);
    if (st?.isFile()) bytes += st.size;
  }
  return bytes;
}

function sum(values: readonly number[]): number {
  return values.reduce((n, v) => n + v, 0);
}
