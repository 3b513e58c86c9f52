/**
 * Group commit for the SQLite journal: writes asked for in the same turn of the event loop
 * share one transaction, so one fsync (synchronous = FULL) makes all of them durable instead
 * of one fsync each. Each caller's promise settles only after the commit that holds its write
 * returned: nobody is told "written" before it is.
 *
 * A write is two steps: `write` runs inside the shared transaction (SQL only), `applied` runs
 * after the commit, before the caller is answered, for the in-memory side of the change. The
 * owner calls flush() before anything that must see every accepted write (reads of the
 * journal, other writes), so the journal and memory never disagree on what was committed.
 */
export interface GroupedWrite<T> {
  /** SQL of this write; runs inside the group's transaction. */
  write(): T;
  /** In-memory effect once the commit returned (synchronous, before the caller is answered). */
  applied?(result: T): void;
  /** The commit failed: undo what the caller did in memory before deferring. */
  failed?(): void;
}

interface Pending {
  readonly w: GroupedWrite<unknown>;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

export interface GroupCommitStats {
  /** Transactions committed by flush (a group, or one write of a group that failed). */
  commits: number;
  /** Writes committed through them. */
  writes: number;
}

export class GroupCommit {
  readonly #transaction: <T>(fn: () => T) => T;
  #pending: Pending[] = [];
  #scheduled = false;
  readonly stats: GroupCommitStats = { commits: 0, writes: 0 };

  /** `transaction` runs fn in one committed transaction (BEGIN IMMEDIATE … COMMIT) or throws having rolled back. */
  constructor(transaction: <T>(fn: () => T) => T) {
    this.#transaction = transaction;
  }

  get pending(): number {
    return this.#pending.length;
  }

  /** Queues a write for the next commit; settles after that commit (and its `applied`). */
  submit<T>(w: GroupedWrite<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ w: w as GroupedWrite<unknown>, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // setImmediate, not a microtask: requests handled in the same poll phase join the group.
        setImmediate(() => {
          this.#scheduled = false;
          this.flush();
        });
      }
    });
  }

  /** Commits every pending write now (synchronously) and answers their callers. */
  flush(): void {
    const group = this.#pending;
    if (group.length === 0) return;
    this.#pending = [];
    let results: unknown[];
    try {
      results = this.#transaction(() => group.map((p) => p.w.write()));
    } catch {
      // Nothing of the group is written (rolled back). Each write then runs alone, so each
      // caller gets its own outcome (SQLITE_FULL, a constraint) exactly as without grouping.
      for (const p of group) this.#alone(p);
      return;
    }
    this.stats.commits += 1;
    this.stats.writes += group.length;
    group.forEach((p, i) => this.#settle(p, results[i]));
  }

  #alone(p: Pending): void {
    let result: unknown;
    try {
      result = this.#transaction(() => p.w.write());
    } catch (err) {
      p.w.failed?.();
      p.reject(err);
      return;
    }
    this.stats.commits += 1;
    this.stats.writes += 1;
    this.#settle(p, result);
  }

  #settle(p: Pending, result: unknown): void {
    try {
      p.w.applied?.(result);
    } catch (err) {
      p.reject(err);
      return;
    }
    p.resolve(result);
  }
}
