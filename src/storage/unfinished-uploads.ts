/**
 * The unfinished tus uploads of each slot and the bytes they hold (issue 9.2). A slot has at
 * most one unfinished upload: a second creation on the slot is answered with the first one's
 * URL (see tus-endpoint.ts). A concatenation's partial uploads together count as the slot's one
 * upload (bounded by tus.max_concat_parts in tus-concat.ts); they are listed here as `partial`,
 * and their bytes count towards the held total.
 *
 * Kept in memory and rebuilt from the store at start and after expiry sweeps; the store stays
 * the truth. Bounded by the store's own unfinished uploads (which expire).
 */
export interface UnfinishedUpload {
  id: string;
  slotPath: string;
  /** Declared Upload-Length; null while deferred. */
  size: number | null;
  /** Bytes stored so far. */
  offset: number;
  /** A partial upload of a concatenation: one of the parts that together are the slot's one upload. */
  partial: boolean;
}

/**
 * A creation's hold on its slot (one unfinished upload per slot): `claimed` until `release()`
 * (called once the new upload is in the index, or the creation failed), `taken` by the upload
 * `id` (the store says whether it is still unfinished), or `busy` while another creation holds it.
 */
export type SlotClaim = { readonly kind: 'claimed'; release(): Promise<void> } | { readonly kind: 'taken'; readonly id: string } | { readonly kind: 'busy' };

export class UnfinishedUploads {
  private readonly byId = new Map<string, UnfinishedUpload>();
  private readonly bySlot = new Map<string, Set<string>>();
  private held = 0;
  /** Sum of each upload's declared length (its stored bytes while deferred, or when more). */
  private committed = 0;
  /** Declared lengths of creations admitted and not yet in the index. */
  private reserved = 0;

  constructor(private readonly onChange: (heldBytes: number) => void = () => {}) {}

  /** Bytes held by all unfinished uploads. */
  get heldBytes(): number {
    return this.held;
  }

  /**
   * Bytes the unfinished uploads hold or were declared to reach (a declared length counts whole
   * from its creation; a deferred one by what it stored), with the creations admitted but not yet
   * in the index: what limits.max_unfinished_bytes bounds.
   */
  get committedBytes(): number {
    return this.committed + this.reserved;
  }

  /** Declared lengths of creations admitted and not yet in the index. */
  protected get reservedBytes(): number {
    return this.reserved;
  }

  /** Counts `bytes` for a creation until its upload is in the index; call the returned function then (or when it failed). */
  reserve(bytes: number): () => void {
    this.reserved += bytes;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.reserved -= bytes;
    };
  }

  /** The unfinished uploads of `slotPath` (today at most one; concatenation adds its parts). */
  ofSlot(slotPath: string): UnfinishedUpload[] {
    return [...(this.bySlot.get(slotPath) ?? [])].map((id) => this.byId.get(id)!);
  }

  /** Every upload in the index. */
  all(): UnfinishedUpload[] {
    return [...this.byId.values()];
  }

  get(id: string): UnfinishedUpload | undefined {
    return this.byId.get(id);
  }

  /**
   * Whether a PATCH to `id` should refresh its held bytes here: an upload this index knows. In
   * cluster mode (cluster/shared-unfinished.ts) every upload, since another instance may have
   * created it.
   */
  tracks(id: string): boolean {
    return this.byId.has(id);
  }

  /** The slot's unfinished uploads wherever they were created (cluster mode asks Redis too). */
  async onSlot(slotPath: string): Promise<UnfinishedUpload[]> {
    return this.ofSlot(slotPath);
  }

  /**
   * Claims `slotPath` for a new upload. Here, by the in-process index alone: TusSlotUploads lets
   * one creation per slot run at a time in this process. Cluster mode claims it in Redis.
   */
  async claimSlot(slotPath: string): Promise<SlotClaim> {
    const id = this.ofSlot(slotPath).find((u) => !u.partial)?.id;
    return id === undefined ? { kind: 'claimed', release: async () => {} } : { kind: 'taken', id };
  }

  add(upload: UnfinishedUpload): void {
    this.forget(upload.id);
    this.byId.set(upload.id, { ...upload });
    let ids = this.bySlot.get(upload.slotPath);
    if (!ids) this.bySlot.set(upload.slotPath, (ids = new Set()));
    ids.add(upload.id);
    this.committed += committedOf(upload);
    this.changeHeld(upload.offset);
  }

  setOffset(id: string, offset: number): void {
    const u = this.byId.get(id);
    if (!u || offset === u.offset) return;
    this.changeHeld(offset - u.offset);
    this.committed -= committedOf(u);
    u.offset = offset;
    this.committed += committedOf(u);
  }

  /** Finished, terminated or expired. Unknown ids are ignored. */
  remove(id: string): void {
    this.forget(id);
  }

  private forget(id: string): void {
    const u = this.byId.get(id);
    if (!u) return;
    this.byId.delete(id);
    const ids = this.bySlot.get(u.slotPath);
    ids?.delete(id);
    if (ids?.size === 0) this.bySlot.delete(u.slotPath);
    this.committed -= committedOf(u);
    this.changeHeld(-u.offset);
  }

  /** Replaces the whole index (start, after expiry sweeps). */
  reset(uploads: Iterable<UnfinishedUpload>): void {
    this.byId.clear();
    this.bySlot.clear();
    this.held = 0;
    this.committed = 0;
    for (const u of uploads) this.add(u);
    this.onChange(this.held);
  }

  private changeHeld(delta: number): void {
    this.held += delta;
    if (delta !== 0) this.onChange(this.held);
  }
}

/** What an upload counts towards max_unfinished_bytes: its declared length, or what it stored when more (or deferred). */
function committedOf(u: Pick<UnfinishedUpload, 'size' | 'offset'>): number {
  return Math.max(u.size ?? 0, u.offset);
}
