/**
 * The running account of bytes promised to unfinished uploads: for each one its declared
 * length minus what it has stored. Kept in memory, rebuilt from the upload store at start,
 * updated as uploads are created, appended to, finished and removed, so a space check never
 * scans the disk. While a request streams, what it has received so far counts as stored (the
 * disk's free space already shrank by it), so a long PATCH is not counted twice.
 * Pure: no I/O; a streaming request's byte count comes in as a function.
 *
 * The exact total asks every streaming request for its count (O(streaming): with 1,000 bodies
 * in flight, 1,000 calls per check). `bound()` is O(1): each streaming entry counts with what
 * it promised when last measured, which can only have shrunk since (a stream only receives),
 * so the bound is never below the exact total; `total()` measures again and tightens it.
 */
export interface PromiseState {
  /** Declared length; null while deferred. */
  readonly size: number | null;
  /** Bytes stored when the upload was last settled. */
  readonly stored: number;
}

interface Stream {
  /** The entry it streams into (rekey moves it: a creation's hold becomes its upload's entry). */
  key: string;
  /** Bytes received by the request so far. */
  readonly received: () => number;
  /** For a deferred-length upload: the bytes this request may add (its Content-Length). */
  readonly growth: number;
}

interface Entry extends PromiseState {
  stream: Stream | null;
  /** While streaming: what the entry promised when last measured (in #streamingBound). */
  counted: number;
  /** Last change or request (ms): an entry idle past the lapse promises nothing (lapse()). */
  activeAtMs: number;
  lapsed: boolean;
}

export class PromisedBytes {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }
  /** Sum over entries without a streaming request (those are summed on demand). */
  #settled = 0;
  readonly #streaming = new Set<string>();
  /** Sum of `counted` over streaming entries: at least what they promise now. */
  #streamingBound = 0;

  /** Unfinished uploads (and holds of requests not yet bound to one) in the account. */
  get count(): number {
    return this.#entries.size;
  }

  /** Bytes promised right now. Cost: one call per request streaming (and the bound is tightened). */
  total(): number {
    let bound = 0;
    for (const key of this.#streaming) {
      const e = this.#entries.get(key)!;
      e.counted = promisedBy(e);
      bound += e.counted;
    }
    this.#streamingBound = bound;
    return this.#settled + bound;
  }

  /** At least the bytes promised right now (never less than total()), in O(1). */
  bound(): number {
    return this.#settled + this.#streamingBound;
  }

  /** Bytes promised to one upload; 0 when unknown. */
  of(key: string): number {
    const e = this.#entries.get(key);
    return e === undefined ? 0 : promisedBy(e);
  }

  get(key: string): PromiseState | undefined {
    const e = this.#entries.get(key);
    return e === undefined ? undefined : { size: e.size, stored: e.stored };
  }

  /** The entry's promise lapsed (lapse()): its remaining bytes are promised to nobody now. */
  isLapsed(key: string): boolean {
    return this.#entries.get(key)?.lapsed === true;
  }

  /** A request is streaming into the entry right now. */
  isStreaming(key: string): boolean {
    return this.#streaming.has(key);
  }

  /** Adds or replaces an entry (a streaming request on it is forgotten). */
  set(key: string, state: PromiseState): void {
    this.delete(key);
    const e: Entry = { size: state.size, stored: Math.max(0, state.stored), stream: null, counted: 0, activeAtMs: this.#now(), lapsed: false };
    this.#entries.set(key, e);
    this.#settled += promisedBy(e);
  }

  /** Changes the declared length or the stored bytes of an entry; unknown keys are ignored. */
  update(key: string, change: Partial<PromiseState>): void {
    const e = this.#entries.get(key);
    if (e === undefined) return;
    const live = e.stream !== null;
    if (live) this.#streamingBound -= e.counted;
    else this.#settled -= promisedBy(e);
    const next: Entry = { size: change.size === undefined ? e.size : change.size, stored: Math.max(0, change.stored ?? e.stored), stream: e.stream, counted: 0, activeAtMs: this.#now(), lapsed: false };
    this.#entries.set(key, next);
    if (live) this.#streamingBound += (next.counted = promisedBy(next));
    else this.#settled += promisedBy(next);
  }

  /** The entry moves to another key (a request's hold becomes its upload's entry). */
  rekey(from: string, to: string): void {
    const e = this.#entries.get(from);
    if (e === undefined || from === to) return;
    this.delete(to);
    this.#entries.delete(from);
    this.#entries.set(to, e);
    if (e.stream !== null) e.stream.key = to;
    if (this.#streaming.delete(from)) this.#streaming.add(to);
  }

  /**
   * A request streams bytes into the entry: `received` is what it got so far, `growth` what a
   * deferred-length upload may add (ignored once the length is declared). Returns the detach,
   * which counts what arrived as stored until the caller settles the entry from the store.
   */
  stream(key: string, received: () => number, growth = 0): () => void {
    const e = this.#entries.get(key);
    if (e === undefined) return () => {};
    if (e.stream === null) this.#settled -= promisedBy(e);
    else this.#streamingBound -= e.counted; // a newer request replaces the streaming one
    e.lapsed = false; // sending again: its bytes are promised again (the append's space check saw them fit)
    e.activeAtMs = this.#now();
    const stream: Stream = { key, received, growth };
    e.stream = stream;
    this.#streamingBound += (e.counted = promisedBy(e));
    this.#streaming.add(key);
    return () => {
      // By the key it has now: a detach that looked under the first one left a rekeyed entry
      // streaming for ever, holding its request and socket (about 14 KB per unfinished upload).
      const current = this.#entries.get(stream.key);
      if (current?.stream !== stream) return; // replaced or removed meanwhile
      // What arrived is on disk now; until the caller settles from the store, count it as stored.
      const arrived = Math.max(0, received());
      this.#streamingBound -= current.counted;
      current.stream = null;
      this.#streaming.delete(stream.key);
      const settled: Entry = { size: current.size, stored: current.stored + arrived, stream: null, counted: 0, activeAtMs: this.#now(), lapsed: false };
      this.#entries.set(stream.key, settled);
      this.#settled += promisedBy(settled);
    };
  }

  /**
   * Entries without a request for `idleMs` stop promising (their upload stays resumable; its next
   * append is checked against the free space then). Creations that never send a byte held their
   * declared lengths until [tus] expiration. Returns how many lapsed now.
   */
  lapse(idleMs: number): number {
    const before = this.#now() - idleMs;
    let lapsed = 0;
    for (const e of this.#entries.values()) {
      if (e.stream !== null || e.lapsed || e.activeAtMs > before) continue;
      this.#settled -= promisedBy(e);
      e.lapsed = true;
      lapsed++;
    }
    return lapsed;
  }

  /** Finished, terminated, expired, or a hold that was not used. Unknown keys are ignored. */
  delete(key: string): void {
    const e = this.#entries.get(key);
    if (e === undefined) return;
    if (e.stream === null) this.#settled -= promisedBy(e);
    else this.#streamingBound -= e.counted;
    this.#streaming.delete(key);
    this.#entries.delete(key);
  }

  /** Replaces the whole account (start-up). */
  reset(entries: Iterable<readonly [string, PromiseState]>): void {
    this.#entries.clear();
    this.#streaming.clear();
    this.#settled = 0;
    this.#streamingBound = 0;
    for (const [key, state] of entries) this.set(key, state);
  }
}

function promisedBy(e: Entry): number {
  if (e.lapsed) return 0;
  const received = e.stream === null ? 0 : Math.max(0, e.stream.received());
  if (e.size !== null) return Math.max(0, e.size - e.stored - received);
  return e.stream === null ? 0 : Math.max(0, e.stream.growth - received);
}
