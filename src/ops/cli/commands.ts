/**
 * The operator commands, each a function of an OpsApi (online or offline alike) that prints a
 * table (or JSON with --json) and resolves its exit code: 0 ok, 3 problems found. Failures
 * throw OpsFailure (exit 1, or 2 for bad usage).
 */
import { progressBar } from './progress.js';
import { fields, formatAge, formatBytes, formatTime, percent, table } from './render.js';
import { EXIT, OpsFailure, type DeadLetterSelector, type ListJobsQuery, type OpsApi, type QueueStatusView, type SpaceReport, type UploadView } from '../types.js';

export interface Output {
  readonly json: boolean;
  print(text: string): void;
  /** One line per failure, on stderr. */
  error(text: string): void;
}

const TIERS = ['high', 'medium', 'low'] as const;

const show = (out: Output, value: unknown, human: () => string) => out.print(out.json ? JSON.stringify(value) : human());

// --- uploads

function uploadRows(uploads: readonly UploadView[], now: number) {
  return uploads.map((u) => [u.id, u.slotPath, formatBytes(u.offset), formatBytes(u.size), percent(u.offset, u.size), formatAge(u.ageSeconds), formatAge(idleSeconds(u, now))]);
}

function idleSeconds(u: UploadView, now: number): number | null {
  const last = u.lastActivityAt ?? u.createdAt;
  return last ? (now - Date.parse(last)) / 1000 : null;
}

export async function uploadsList(ops: OpsApi, out: Output, opts: { olderThanMs?: number }): Promise<number> {
  const now = Date.now();
  let uploads = await ops.listUploads();
  if (opts.olderThanMs !== undefined) uploads = uploads.filter((u) => (idleSeconds(u, now) ?? 0) * 1000 >= opts.olderThanMs!);
  uploads.sort((a, b) => (b.ageSeconds ?? 0) - (a.ageSeconds ?? 0));
  show(out, { mode: ops.mode, uploads }, () => table(['ID', 'SLOT PATH', 'RECEIVED', 'SIZE', 'DONE', 'AGE', 'IDLE'], uploadRows(uploads, now), { right: [2, 3, 4, 5, 6] }, 'no incomplete uploads'));
  return EXIT.ok;
}

export async function uploadsShow(ops: OpsApi, out: Output, id: string): Promise<number> {
  const u = await ops.showUpload(id);
  show(out, u, () =>
    fields([
      ['id', u.id],
      ['slot path', u.slotPath],
      ['received', `${u.offset} bytes (${formatBytes(u.offset)})`],
      ['size', u.size === null ? 'deferred' : `${u.size} bytes (${formatBytes(u.size)})`],
      ['progress', percent(u.offset, u.size)],
      ['finished', u.finished ? 'yes' : 'no'],
      ['created', formatTime(u.createdAt)],
      ['age', formatAge(u.ageSeconds)],
      ['last activity', formatTime(u.lastActivityAt)],
    ]),
  );
  return EXIT.ok;
}

/** Terminates the given uploads, or every unfinished one idle for at least `olderThanMs`. */
export async function uploadsExpire(ops: OpsApi, out: Output, ids: readonly string[], opts: { olderThanMs?: number; dryRun?: boolean }): Promise<number> {
  if ((ids.length === 0) === (opts.olderThanMs === undefined)) throw new OpsFailure('name upload ids or give --older-than, not both', EXIT.usage);
  let targets: string[] = [...ids];
  if (opts.olderThanMs !== undefined) {
    const now = Date.now();
    targets = (await ops.listUploads()).filter((u) => (idleSeconds(u, now) ?? 0) * 1000 >= opts.olderThanMs!).map((u) => u.id);
  }
  if (opts.dryRun) {
    // Named ids are looked up as the run would: an unknown or finished upload would be refused.
    const wouldFail: Array<{ id: string; reason: string }> = [];
    if (opts.olderThanMs === undefined) {
      for (const id of ids) {
        const reason = await ops.showUpload(id).then(
          (u) => (u.finished ? `upload ${id} is finished and can no longer be terminated` : null),
          (err: unknown) => (err as Error).message,
        );
        if (reason !== null) wouldFail.push({ id, reason });
      }
      targets = targets.filter((id) => !wouldFail.some((f) => f.id === id));
    }
    show(out, { dryRun: true, wouldExpire: targets, wouldFail }, () => (targets.length ? `would expire ${targets.length} upload(s):\n${targets.join('\n')}` : 'nothing to expire'));
    for (const f of wouldFail) out.error(`would fail ${f.id}: ${f.reason}`);
    return wouldFail.length > 0 ? EXIT.failed : EXIT.ok;
  }
  const expired: string[] = [];
  const failed: Array<{ id: string; reason: string }> = [];
  const bar = progressBar('expiring');
  for (const id of targets) {
    try {
      await ops.terminateUpload(id);
      expired.push(id);
    } catch (err) {
      failed.push({ id, reason: (err as Error).message });
    }
    bar.update({ done: expired.length + failed.length, total: targets.length, unit: 'items' });
  }
  bar.end();
  show(out, { expired, failed }, () => [`expired ${expired.length} upload(s)`, ...expired.map((id) => `  ${id}`)].join('\n'));
  for (const f of failed) out.error(`failed ${f.id}: ${f.reason}`);
  return failed.length > 0 ? EXIT.failed : EXIT.ok;
}

// --- queue

/** Exit 3 when the queue needs attention: emergency mode, an open breaker or a failed worker. */
export async function queueStatus(ops: OpsApi, out: Output): Promise<number> {
  const s = await ops.queueStatus();
  const problems = queueProblems(s);
  show(out, { mode: ops.mode, ...s, problems }, () => renderQueueStatus(ops.mode, s, problems));
  return problems.length > 0 ? EXIT.problems : EXIT.ok;
}

export function queueProblems(s: QueueStatusView): string[] {
  const problems: string[] = [];
  if (s.pressure?.level === 'emergency') problems.push('queue in emergency mode');
  for (const b of s.breakers ?? []) if (b.state === 'open') problems.push(`circuit breaker ${b.dependency} open`);
  for (const w of s.workers ?? []) if (w.status === 'failed') problems.push(`worker ${w.id} failed`);
  if (s.cluster && !s.cluster.reachable) problems.push('Redis unreachable from the instance that answered (degraded mode)');
  for (const i of s.cluster?.instances ?? []) {
    if (i.mode === 'degraded') problems.push(`instance ${i.id} degraded (Redis unreachable from it)`);
    for (const b of i.breakers) if (b.state === 'open') problems.push(`instance ${i.id}: circuit breaker ${b.dependency} open`);
    for (const w of i.workers) if (w.status === 'failed') problems.push(`instance ${i.id}: worker ${w.id} failed`);
  }
  return [...new Set(problems)];
}

function renderQueueStatus(mode: string, s: QueueStatusView, problems: readonly string[]): string {
  const c = s.counts;
  const parts = [
    table(['TIER', 'WAITING', 'RUNNING', 'TOTAL', 'DONE (KEPT)', 'DEAD'], TIERS.map((t) => [t, c.queued[t], c.leased[t], s.pending[t], c.done[t], c.dead[t]])),
    '',
    s.pressure ? `pressure: ${s.pressure.level} (queue ${Math.round(s.pressure.fill * 100)}% full)` : `pressure: - (${mode}: no server running)`,
    `dead letters: ${s.deadLetters}`,
  ];
  if (s.breakers) parts.push('', table(['BREAKER', 'STATE', 'RETRY AT'], s.breakers.map((b) => [b.dependency, b.state, formatTime(b.retryAtMs)]), {}, 'circuit breakers: disabled'));
  if (s.workers && !s.cluster) {
    const rows = s.workers.map((w) => [w.id, w.status, w.processed, w.errors, w.avgMs === null ? null : Math.round(w.avgMs), w.busy ? 'yes' : 'no']);
    parts.push('', table(['WORKER', 'STATUS', 'PROCESSED', 'ERRORS', 'AVG MS', 'BUSY'], rows));
  }
  if (s.cluster) parts.push('', ...renderCluster(s.cluster));
  if (problems.length) parts.push('', ...problems.map((p) => `problem: ${p}`));
  return parts.join('\n');
}

/** Cluster mode: one line per instance, then each instance's workers. */
function renderCluster(c: NonNullable<QueueStatusView['cluster']>): string[] {
  const now = Date.now();
  const count = (ws: readonly { status: string }[], status: string) => ws.filter((w) => w.status === status).length;
  const rows = c.instances.map((i) => [
    i.id,
    i.mode,
    i.host,
    `${i.workers.filter((w) => w.busy).length}/${i.workers.length}`,
    count(i.workers, 'failed'),
    i.breakers.filter((b) => b.state !== 'closed').map((b) => `${b.dependency}:${b.state}`).join(',') || 'closed',
    i.journal.queued + i.journal.leased,
    i.journal.dead,
    formatAge((now - i.seenAtMs) / 1000),
  ]);
  const out = [table(['INSTANCE', 'MODE', 'HOST', 'BUSY', 'FAILED', 'BREAKERS', 'JOURNAL', 'JOURNAL DEAD', 'SEEN'], rows, { right: [3, 4, 6, 7] }, 'instances: none reported')];
  if (!c.reachable) out.push('(Redis unreachable from the instance that answered: only itself is shown)');
  // Dead letters in Redis are everyone's; those in an instance's journal only its own admin API lists and replays.
  if (c.instances.some((i) => i.journal.dead > 0)) out.push('(JOURNAL DEAD: dead letters in that instance\'s local journal; list, replay or purge them through its admin API: --url)');
  const workerRows = c.instances.flatMap((i) => i.workers.map((w) => [i.id, w.id, w.status, w.processed, w.errors, w.avgMs === null ? null : Math.round(w.avgMs), w.busy ? 'yes' : 'no']));
  out.push('', table(['INSTANCE', 'WORKER', 'STATUS', 'PROCESSED', 'ERRORS', 'AVG MS', 'BUSY'], workerRows));
  return out;
}

export async function queueList(ops: OpsApi, out: Output, query: ListJobsQuery): Promise<number> {
  const jobs = await ops.listJobs(query);
  const now = Date.now();
  const rows = jobs.map((j) => [
    j.id,
    j.priority,
    j.state,
    j.slotPath,
    formatBytes(j.size),
    j.attempts,
    j.state === 'queued' && j.availableAtMs > now ? `in ${formatAge((j.availableAtMs - now) / 1000)}` : j.state === 'queued' ? 'now' : '-',
    j.lastError ? `${j.lastError.code}: ${j.lastError.message}` : null,
  ]);
  show(out, { mode: ops.mode, jobs }, () => table(['ID', 'TIER', 'STATE', 'SLOT PATH', 'SIZE', 'ATTEMPTS', 'NEXT TRY', 'LAST ERROR'], rows, { right: [4, 5] }, 'no jobs'));
  return EXIT.ok;
}

export async function queueRetry(ops: OpsApi, out: Output, id: string): Promise<number> {
  const r = await ops.retryJob(id);
  const text = { replayed: `${id}: dead letter replayed`, made_available: `${id}: runs now instead of after its backoff`, none: `${id}: nothing to do (${r.state})` };
  show(out, r, () => text[r.action]);
  return EXIT.ok;
}

// --- dead letters

export async function dlqList(ops: OpsApi, out: Output, query: { limit?: number; offset?: number }): Promise<number> {
  const items = await ops.listDeadLetters(query);
  const rows = items.map((d) => {
    const last = d.errors.at(-1);
    return [d.id, d.slotPath, d.priority, formatBytes(d.size), d.attempts, last ? `${last.code}: ${last.message}` : null, formatTime(d.buriedAtMs)];
  });
  show(out, { mode: ops.mode, deadLetters: items }, () => table(['ID', 'SLOT PATH', 'TIER', 'SIZE', 'ATTEMPTS', 'LAST ERROR', 'BURIED'], rows, { right: [3, 4] }, 'no dead letters'));
  return EXIT.ok;
}

export function selector(id: string | undefined, all: boolean | undefined): DeadLetterSelector {
  if ((id === undefined) === !all) throw new OpsFailure('name one dead letter id or give --all', EXIT.usage);
  return id === undefined ? 'all' : { id };
}

export async function dlqReplay(ops: OpsApi, out: Output, target: DeadLetterSelector): Promise<number> {
  const n = await ops.replayDeadLetters(target);
  if (target !== 'all' && n === 0) throw new OpsFailure(`no dead letter ${target.id}`);
  show(out, { replayed: n }, () => `replayed ${n} dead letter(s)`);
  return EXIT.ok;
}

export async function dlqPurge(ops: OpsApi, out: Output, target: DeadLetterSelector): Promise<number> {
  const n = await ops.purgeDeadLetters(target);
  if (target !== 'all' && n === 0) throw new OpsFailure(`no dead letter ${target.id}`);
  show(out, { purged: n }, () => `purged ${n} dead letter(s) and their bytes`);
  return EXIT.ok;
}

// --- space

/** What holds the data directory's space; exit 3 while the server is below its reserve (new uploads refused). */
export async function spaceCommand(ops: OpsApi, out: Output): Promise<number> {
  const r = await ops.space();
  const emergency = r.filesystem?.emergency === true;
  show(out, { mode: ops.mode, ...r }, () => renderSpace(r, ops.mode));
  return emergency ? EXIT.problems : EXIT.ok;
}

function renderSpace(r: SpaceReport, mode: OpsApi['mode']): string {
  const fs = r.filesystem;
  const u = r.unfinishedUploads;
  const parts = [
    fs === null
      ? 'file system: unknown (the store cannot tell its capacity)'
      : fields([
          ['file system', `${formatBytes(fs.totalBytes)}, ${formatBytes(fs.freeBytes)} free (${percent(fs.freeBytes, fs.totalBytes)})`],
          ['reserve', `${formatBytes(fs.reserveBytes)} (storage.min_free_space)`],
          ['promised', `${formatBytes(fs.promisedBytes)} still to come for unfinished uploads`],
          ['headroom', `${formatBytes(Math.max(0, fs.headroomBytes))} for new uploads${fs.emergency ? ' - BELOW THE RESERVE: new uploads are refused (507)' : ''}`],
        ]),
    '',
    table(
      ['HOLDS SPACE', 'COUNT', 'BYTES'],
      [
        ['unfinished uploads (stored)', u.count, formatBytes(u.storedBytes)],
        ['dead letters', r.deadLetters.count, formatBytes(r.deadLetters.bytes)],
        ['queue journal', null, formatBytes(r.queue.journalBytes)],
        ['staged PUT bodies', null, formatBytes(r.queue.stagedBytes)],
        // Offline no body streams: what is there was left by an interrupted run (removed at the next start, or by recover).
        [mode === 'online' ? 'PUT bodies streaming' : 'PUT temp files left by a stop', null, formatBytes(r.incomingBytes)],
      ],
      { right: [1, 2] },
    ),
  ];
  if (r.queue.admissionsWaitingForSpace) parts.push('', `${r.queue.admissionsWaitingForSpace} completed upload(s) wait for room to be finalized`);
  if (u.oldest.length > 0) {
    const rows = u.oldest.map((x) => [x.id, x.slotPath, formatBytes(x.storedBytes), formatBytes(x.size), formatBytes(x.promisedBytes), formatAge(x.ageSeconds), formatAge(x.idleSeconds)]);
    parts.push('', table(['UNFINISHED UPLOAD', 'SLOT PATH', 'STORED', 'SIZE', 'PROMISED', 'AGE', 'IDLE'], rows, { right: [2, 3, 4, 5, 6] }));
    if (u.count > u.oldest.length) parts.push(`(${u.count - u.oldest.length} more)`);
  }
  if (r.hints.length > 0) parts.push('', ...r.hints.map((h) => `to free: ${h}`));
  return parts.join('\n');
}

// --- recover, verify

/** Exit 3 when a dry run found something to do, or when some action failed. */
export async function recoverCommand(ops: OpsApi, out: Output, opts: { dryRun: boolean }): Promise<number> {
  const bar = progressBar(opts.dryRun ? 'planning' : 'recovering');
  const report = await ops.recover(opts, bar.update).finally(() => bar.end());
  const rows = report.items.map((i) => [i.kind, i.action, i.target, i.detail, formatBytes(i.bytes), i.result ?? (report.dryRun ? 'planned' : null)]);
  show(out, { mode: ops.mode, ...report }, () => {
    // A running server's own files may be in flight: what changed lately is judged on a later run.
    const recentNote = ops.mode === 'online' ? ' (the server runs: files touched in the last 15 minutes are left for a later run)' : '';
    if (report.items.length === 0) return `nothing to recover${recentNote}`;
    const head = report.dryRun ? `dry run: ${report.items.length} item(s) would be handled` : `handled ${report.items.length - report.failed} of ${report.items.length} item(s)`;
    return `${table(['KIND', 'ACTION', 'TARGET', 'DETAIL', 'SIZE', 'RESULT'], rows, { right: [4], maxWidth: 120 })}\n\n${head}${recentNote}`;
  });
  if (report.dryRun) return report.items.length > 0 ? EXIT.problems : EXIT.ok;
  return report.failed > 0 ? EXIT.problems : EXIT.ok;
}

/** Exit 3 when a published file does not match its record. */
export async function verifyCommand(ops: OpsApi, out: Output): Promise<number> {
  const bar = progressBar('verifying');
  const report = await ops.verify(bar.update).finally(() => bar.end());
  show(out, { mode: ops.mode, ...report }, () => {
    const summary = `checked ${report.checked} file(s), ${formatBytes(report.bytes)}: ${report.problems.length} problem(s)${report.unverifiable ? `, ${report.unverifiable} without a recorded checksum` : ''}`;
    if (report.problems.length === 0) return summary;
    return `${table(['SLOT PATH', 'PROBLEM', 'DETAIL'], report.problems.map((p) => [p.slotPath, p.kind, p.detail]), { maxWidth: 150 })}\n\n${summary}`;
  });
  return report.problems.length > 0 ? EXIT.problems : EXIT.ok;
}
