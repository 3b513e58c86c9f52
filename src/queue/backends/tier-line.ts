/**
 * One tier's queued jobs in line order (availableAtMs, then seq), kept sorted by binary search so
 * the tier's head is its first element: what claims compare, without scanning every job. Used by
 * the memory backend and the spillover window. A job's availableAtMs must not change while it is
 * in a line: take it out, change it, put it back.
 */
export interface InLine {
  readonly job: { readonly availableAtMs: number };
  /** Insertion order: the FIFO tie-break for equal times (unique per job). */
  readonly seq: number;
}

export const lineOrder = (a: InLine, b: InLine): number => a.job.availableAtMs - b.job.availableAtMs || a.seq - b.seq;

/** Puts `entry` at its place, after every entry that does not sort after it. */
export function insertInLine<T extends InLine>(line: T[], entry: T): void {
  line.splice(upperBound(line, entry), 0, entry);
}

/** Takes `entry` out of its line; false when it was not there. */
export function removeFromLine<T extends InLine>(line: T[], entry: T): boolean {
  // Entries sorting equal to it (the same time and seq) sit just before its upper bound.
  for (let i = upperBound(line, entry) - 1; i >= 0 && lineOrder(line[i]!, entry) === 0; i--) {
    if (line[i] === entry) {
      line.splice(i, 1);
      return true;
    }
  }
  return false;
}

function upperBound(line: readonly InLine[], entry: InLine): number {
  let lo = 0;
  let hi = line.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (lineOrder(line[mid]!, entry) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
