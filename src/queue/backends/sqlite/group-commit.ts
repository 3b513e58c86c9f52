/**
 * Group commit for the SQLite journal: writes asked for in the same turn of the event loop
 * share one transaction, and one sync of the write-ahead log makes all of them durable. Each
 * caller's promise settles only after the commit holding its write AND the sync covering it
 * returned: nobody is told "written" before it survives power loss.
 *
 * The sync runs off the event loop (an fdatasync on the libuv pool): while it runs, requests go
 * on being served and the next group forms; it is committed at once and synced by the next
 * round. One sync at a time, so a burst becomes few large groups rather than many small ones.
 *
 * A write may be `lazy` (answered at its commit). Otherwise it has up to three steps: `write` runs inside the shared transaction (SQL only);
 * `committed` right after the commit (the rows are in the file, not yet durable); `applied`
 * once synced, before the caller is answered, for the in-memory side of the change.
 */
export interface GroupedWrite<T> {
  /** SQL of this write; runs inside the group's transaction. */
  write(): T;
  /** The transaction committed (not yet synced): what the rows on disk now hold ahead of memory. */
  committed?(result: T): void;
  /** Synced (or the sync failed: the rows are in the file either way). Runs before the caller hears back. */
  applied?(result: T): void;
  /**
   * Answered at the commit, not at the sync: for writes whose loss to power loss only repeats
   * idempotent work (a completion). The next sync makes them durable with the rest.
   */
  lazy?: boolean;
}

interface Pending {
  readonly w: GroupedWrite<unknown>;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}
interface Committed {
  readonly p: Pending;
  readonly result: unknown;
}

export interface GroupCommitStats {
  /** Transactions committed (a group, or one write of a group that failed as a whole). */
  commits: number;
  /** Syncs of the log that answered callers. */
  syncs: number;
  /** Writes committed. */
  writes: number;
}

export class GroupCommit {
  readonly #transaction: <T>(fn: () => T) => T;
  readonly #sync: (() => Promise<void>) | undefined;
  #pending: Pending[] = [];
  #committed: Committed[] = [];
  #scheduled = false;
  #syncing: Promise<void> | null = null;
  readonly stats: GroupCommitStats = { commits: 0, syncs: 0, writes: 0 };

  /**
   * `transaction` runs fn in one committed transaction or throws having rolled back.
   * `sync` makes every committed transaction durable; without it a commit is enough (a scratch
   * journal, or one that syncs inside its commits).
   */
  constructor(transaction: <T>(fn: () => T) => T, sync?: () => Promise<void>) {
    this.#transaction = transaction;
    this.#sync = sync;
  }

  /** Queues a write for the next group; settles once it is committed and synced. */
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

  /** Commits every pending write now (synchronously); their callers are answered after the sync. */
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
      this.#kick();
      return;
    }
    this.stats.commits += 1;
    group.forEach((p, i) => this.#commit(p, results[i]));
    this.#kick();
  }

  /** Commits what is pending and waits until every committed write is synced and answered. */
  async settle(): Promise<void> {
    for (;;) {
      this.flush();
      if (this.#syncing !== null) await this.#syncing;
      else if (this.#committed.length > 0) this.#kick();
      else return;
    }
  }

  #alone(p: Pending): void {
    let result: unknown;
    try {
      result = this.#transaction(() => p.w.write());
    } catch (err) {
      p.reject(err);
      return;
    }
    this.stats.commits += 1;
    this.#commit(p, result);
  }

  #commit(p: Pending, result: unknown): void {
    this.stats.writes += 1;
    try {
      p.w.committed?.(result);
    } catch (err) {
      p.reject(err);
      return;
    }
    if (p.w.lazy === true) this.#answer({ p, result });
    else this.#committed.push({ p, result });
  }

  /** Starts a sync of everything committed so far, unless one runs (the next round takes it). */
  #kick(): void {
    if (this.#syncing !== null || this.#committed.length === 0) return;
    const batch = this.#committed;
    this.#committed = [];
    if (this.#sync === undefined) {
      for (const c of batch) this.#answer(c);
      return;
    }
    this.#syncing = this.#sync().then(
      () => {
        this.stats.syncs += 1;
        for (const c of batch) this.#answer(c);
      },
      (err: unknown) => {
        for (const c of batch) this.#answer(c, err);
      },
    ).finally(() => {
      this.#syncing = null;
      this.#kick();
    });
  }

  /** `applied` either way (the rows are in the file); the caller hears "written" only if synced. */
  #answer({ p, result }: Committed, syncError?: unknown): void {
    try {
      p.w.applied?.(result);
    } catch (err) {
      p.reject(err);
      return;
    }
    if (syncError !== undefined) p.reject(syncError);
    else p.resolve(result);
  }
}
