/**
 * The in-memory part of the spillover queue (spillover-backend.ts): for each tier, a prefix of
 * that tier's line (availableAtMs, then seq) held in memory, at most `limit` jobs in all, and a
 * count of the tier's queued jobs that wait on disk only. A job joins the window only if it sorts
 * before every disk-only job of its tier; when the window overflows, the last job of the lowest
 * tier leaves it. So a tier's head is in the window, or, when its window is empty, it is the first
 * disk-only row. Jobs leave memory ("spilled") and come back in line order (refill); each move out
 * and the end of an episode are reported as SpillEvents.
 */
import { PRIORITY_TIERS, type PriorityTier } from '../../contract/priority.js';
import type { Job } from '../../contract/types.js';
import { insertInLine, lineOrder, removeFromLine } from '../tier-line.js';
import { rowToJob, type JobRow } from './sqlite-db.js';
import type { SqliteJournal } from './sqlite-journal.js';

export type SpillEvent =
  /** `moved` jobs now wait on disk only; `episodeStart` when none did before. */
  | { readonly kind: 'spilled'; readonly moved: number; readonly diskOnly: number; readonly episodeStart: boolean }
  /** Every waiting job is back in memory; `moved` jobs spilled during the episode. */
  | { readonly kind: 'drained'; readonly moved: number };

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
/** A queued or leased job in memory with its place in the journal's line. */
export interface Entry {
  job: Mutable<Job>;
  readonly seq: number;
}

export interface SpillWindowOptions {
  /** queue_size: queued jobs held in memory at most. */
  readonly limit: number;
  readonly journal: Pick<SqliteJournal, 'queuedAfter' | 'counts'>;
  /** 'queued' rows on disk that are not waiting in line (leased, or memory and disk not agreeing yet). */
  readonly skipped: (id: string) => boolean;
  /** How many such rows there are: a disk read asks for that many more. */
  readonly skipCount: () => number;
  readonly onSpill: ((event: SpillEvent) => void) | undefined;
}

const REFILL_BATCH = 500;

export class SpillWindow {
  readonly #o: SpillWindowOptions;
  readonly #tiers: Record<PriorityTier, Entry[]> = { high: [], medium: [], low: [] };
  readonly #byId = new Map<string, Entry>();
  readonly #diskOnly: Record<PriorityTier, number> = { high: 0, medium: 0, low: 0 };
  #episodeMoved = 0;

  constructor(options: SpillWindowOptions) {
    this.#o = options;
  }

  /** Queued jobs held in memory. */
  get size(): number {
    return this.#byId.size;
  }

  /** Queued jobs waiting on disk only. */
  get diskOnly(): number {
    return this.#diskOnly.high + this.#diskOnly.medium + this.#diskOnly.low;
  }

  get(id: string): Entry | undefined {
    return this.#byId.get(id);
  }

  /** Refills when half of the room is free, so claims seldom wait on a disk read. */
  topUp(): void {
    if (this.#byId.size <= this.#o.limit / 2) this.refill();
  }

  /** The tier's head: the window's first job, else (window empty) the first disk-only row. */
  head(tier: PriorityTier): { entry: Entry; fromDisk: boolean } | undefined {
    const inMemory = this.#tiers[tier][0];
    if (inMemory !== undefined) return { entry: inMemory, fromDisk: false };
    const fromDisk = this.#diskOnly[tier] > 0 ? this.#peekDisk(tier) : undefined;
    return fromDisk === undefined ? undefined : { entry: fromDisk, fromDisk: true };
  }

  /** Takes the head that head(tier) returned out of line (it is being leased). */
  takeHead(tier: PriorityTier, fromDisk: boolean): void {
    if (fromDisk) this.#diskOnly[tier] -= 1;
    else this.#byId.delete(this.#tiers[tier].shift()!.job.id);
  }

  /** Takes an entry of the window out of line (it is put back with a new time). */
  remove(entry: Entry): void {
    removeFromLine(this.#tiers[entry.job.priority], entry);
    this.#byId.delete(entry.job.id);
  }

  /** Puts a job in line, reporting what the window spilled for it. */
  admit(entry: Entry): void {
    this.report(this.insert(entry));
  }

  /** Puts a job in line, into the window or on disk only; returns how many jobs left memory (report them). */
  insert(entry: Entry): number {
    const tier = entry.job.priority;
    if (this.#behindDisk(entry)) {
      this.#diskOnly[tier] += 1; // behind disk-only jobs of its tier: it waits there too
      return 1;
    }
    insertInLine(this.#tiers[tier], entry);
    this.#byId.set(entry.job.id, entry);
    let moved = 0;
    while (this.#byId.size > this.#o.limit) {
      const from = [...PRIORITY_TIERS].reverse().find((t) => this.#tiers[t].length > 0)!;
      const victim = this.#tiers[from].pop()!;
      this.#byId.delete(victim.job.id);
      this.#diskOnly[from] += 1;
      moved += 1;
    }
    return moved;
  }

  /** A disk-only job whose time moved earlier: it moves up its tier's line, into the window unless still behind. */
  moveUp(entry: Entry): void {
    const tier = entry.job.priority;
    this.#diskOnly[tier] -= 1;
    if (this.#behindDisk(entry)) this.#diskOnly[tier] += 1; // still behind: stays on disk
    else this.admit(entry);
  }

  /** Rebuilds from the journal: every queued job not leased is disk-only, then the best are pulled in. */
  reload(leasedByTier: Readonly<Record<PriorityTier, number>>): void {
    const before = this.diskOnly;
    for (const tier of PRIORITY_TIERS) this.#tiers[tier] = [];
    this.#byId.clear();
    for (const tier of PRIORITY_TIERS) this.#diskOnly[tier] = 0 - leasedByTier[tier]; // 0 - 0 is +0
    for (const { state, priority, n } of this.#o.journal.counts()) if (state === 'queued') this.#diskOnly[priority] += n;
    this.refill();
    const after = this.diskOnly;
    if (after > before) this.report(after - before);
  }

  /** Pulls disk-only jobs back into memory in line order, best tier first, while there is room. */
  refill(): void {
    if (this.diskOnly === 0) return;
    const { limit, journal, skipped, skipCount } = this.#o;
    for (const tier of PRIORITY_TIERS) {
      const window = this.#tiers[tier];
      const last = window[window.length - 1];
      let cursor = last === undefined ? null : { availableAtMs: last.job.availableAtMs, seq: last.seq };
      while (this.#diskOnly[tier] > 0 && this.#byId.size < limit) {
        const room = Math.min(limit - this.#byId.size, REFILL_BATCH);
        const rows = journal.queuedAfter(tier, cursor, room + skipCount());
        if (rows.length === 0) {
          this.#diskOnly[tier] = 0; // the journal has none left: the count had drifted
          break;
        }
        for (const row of rows) {
          cursor = { availableAtMs: row.available_at_ms, seq: row.seq };
          if (skipped(row.id) || this.#byId.size >= limit) continue;
          const entry = toEntry(row);
          window.push(entry); // rows come in line order, after everything in the window
          this.#byId.set(row.id, entry);
          this.#diskOnly[tier] -= 1;
        }
      }
    }
    this.checkDrained();
  }

  /** Reports `moved` jobs gone to disk only (a spill episode starts with the first). */
  report(moved: number): void {
    if (moved <= 0) return;
    const diskOnly = this.diskOnly;
    const episodeStart = this.#episodeMoved === 0;
    this.#episodeMoved += moved;
    this.#o.onSpill?.({ kind: 'spilled', moved, diskOnly, episodeStart });
  }

  /** Ends the spill episode once nothing waits on disk only. */
  checkDrained(): void {
    if (this.#episodeMoved > 0 && this.diskOnly === 0) {
      const moved = this.#episodeMoved;
      this.#episodeMoved = 0;
      this.#o.onSpill?.({ kind: 'drained', moved });
    }
  }

  /** Whether the job sorts after the window's last job of its tier while that tier has disk-only jobs. */
  #behindDisk(entry: Entry): boolean {
    const tier = entry.job.priority;
    const last = this.#tiers[tier].at(-1);
    return this.#diskOnly[tier] > 0 && (last === undefined || lineOrder(entry, last) > 0);
  }

  /** The first disk-only job of a tier whose window is empty. */
  #peekDisk(tier: PriorityTier): Entry | undefined {
    const { journal, skipped, skipCount } = this.#o;
    const row = journal.queuedAfter(tier, null, 1 + skipCount()).find((r) => !skipped(r.id));
    return row === undefined ? undefined : toEntry(row);
  }
}

export function toEntry(row: JobRow): Entry {
  return { job: rowToJob(row) as Mutable<Job>, seq: row.seq };
}
