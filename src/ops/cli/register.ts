/**
 * Registers the operator commands on the CLI program (cli.ts stays a thin parser):
 *   uploads list|show|expire, queue status|list|retry, dlq list|replay|purge, recover, verify,
 *   quarantine list|release|delete, space
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseDuration, type Config } from '../../config/index.js';
import type { JobState, PriorityTier } from '../../queue/index.js';
import { EXIT, OpsFailure, type OpsApi } from '../types.js';
import * as c from './commands.js';
import * as q from './quarantine-commands.js';

// Literal copies (checked against the queue's types) so that printing help loads no queue code.
const JOB_STATES = ['queued', 'leased', 'done', 'dead'] as const satisfies readonly JobState[];
const PRIORITY_TIERS = ['high', 'medium', 'low'] as const satisfies readonly PriorityTier[];

export type LoadConfig = (path: string | undefined) => Promise<{ config: Config }>;

interface CommonOptions {
  url?: string;
  token?: string;
  offline?: boolean;
  config?: string;
  json?: boolean;
}

const MODES_HELP = `
Where it works:
  online   through the admin API of a running server: --url, or found from <data_dir>/server.json
           (token: --token, else HFS_ADMIN_TOKEN or [admin] token in the config)
  offline  on the data directory when no server runs on it (--offline forces it, and is refused
           while a server runs: the queue file must have one owner)
Exit codes: 0 ok, 1 the command failed, 2 bad usage, 3 problems found (see each command).`;

function common(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'admin API base URL, e.g. http://127.0.0.1:8080/admin (online mode)')
    .option('--token <token>', 'admin token (default: HFS_ADMIN_TOKEN or [admin] token; prefer the variable: flags show in ps)')
    .option('--offline', 'work on the data directory; refused while a server runs on it')
    .option('-c, --config <file>', 'TOML config file (data directory, admin token)')
    .option('--json', 'machine-readable output (one JSON document)')
    .addHelpText('after', MODES_HELP);
}

function wholeNumber(min: number, max = 999_999_999) {
  return (value: string): number => {
    if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new InvalidArgumentError(max < 999_999_999 ? `expected a whole number from ${min} to ${max}` : `expected a whole number >= ${min}`);
    }
    return Number(value);
  };
}

/** The admin API's cap on a page (admin-routes.ts MAX_LIMIT), checked here for offline too. */
const MAX_LIMIT = 1000;

/**
 * Id arguments are checked before anything is loaded or sent: an id becomes a path segment of
 * the admin API, where "." or "" would name another route (`dlq replay .` replayed every dead
 * letter). Upload ids are base64url (auth/upload-id.ts, http/tus-request.ts); job ids, and so
 * dead-letter and quarantine ids, are "<protocol>-<upload or request id>" (job-payload.ts jobIdOf),
 * in the quarantine stores' alphabet. Not an InvalidArgumentError: commander would wrap the line.
 */
function idOf(kind: string, max: number) {
  const pattern = new RegExp(`^[A-Za-z0-9_-]{1,${max}}$`);
  return (value: string): string => {
    if (!pattern.test(value)) throw new OpsFailure(`${JSON.stringify(value)} is not ${kind}`, EXIT.usage);
    return value;
  };
}
const uploadId = idOf('an upload id', 128);
const jobId = idOf('a job id', 200);
const deadLetterId = idOf('a dead letter id', 200);
const quarantineId = idOf('a quarantine id', 200);
const uploadIds = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), uploadId(value)];

function duration(value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function states(value: string): JobState[] {
  const list = value === 'all' ? [...JOB_STATES] : value.split(',');
  for (const s of list) if (!(JOB_STATES as readonly string[]).includes(s)) throw new InvalidArgumentError(`states are ${JOB_STATES.join(', ')} or all`);
  return list as JobState[];
}

export function registerOpsCommands(program: Command, load: LoadConfig): void {
  program.addHelpText(
    'after',
    '\nuploads, queue, dlq, quarantine, recover, verify and space work online (admin API of a running server) or offline\n(data directory of a stopped one); see their --help. Exit codes: 0 ok, 1 failed, 2 bad usage, 3 problems found.',
  );
  /** Wraps a command body: loads the config, connects (online or offline), sets the exit code. */
  const action =
    <A extends unknown[]>(body: (ops: OpsApi, out: c.Output, opts: CommonOptions & Record<string, unknown>, ...args: A) => Promise<number>) =>
    async (...params: unknown[]) => {
      const cmd = params.at(-1) as Command;
      const opts = cmd.opts<CommonOptions & Record<string, unknown>>();
      const args = params.slice(0, cmd.registeredArguments.length) as A;
      const { config } = await load(opts.config);
      const { connectOps } = await import('./connect.js'); // the stores and the HTTP client, only when a command runs
      const ops = await connectOps(config, { ...(opts.url !== undefined && { url: opts.url }), ...(opts.token !== undefined && { token: opts.token }), offline: opts.offline === true });
      try {
        process.exitCode = await body(ops, { json: opts.json === true, print: (t) => console.log(t), error: (t) => console.error(t) }, opts, ...args);
      } finally {
        await ops.close();
      }
    };

  const uploads = program.command('uploads').description('incomplete tus uploads: list, show, expire (online or offline)').addHelpText('after', MODES_HELP);
  common(uploads.command('list').description('list unfinished uploads, oldest first'))
    .option('--older-than <duration>', 'only uploads idle at least this long, e.g. "24h"', duration)
    .action(action((ops, out, o) => c.uploadsList(ops, out, o.olderThan === undefined ? {} : { olderThanMs: o.olderThan as number })));
  common(uploads.command('show').description('one upload: slot path, offset, size, age, last activity').argument('<id>', 'tus upload id', uploadId))
    .action(action((ops, out, _o, id: string) => c.uploadsShow(ops, out, id)));
  common(uploads.command('expire').description('terminate uploads now: the named ones, or all idle past --older-than; exit 1 if any failed').argument('[ids...]', 'tus upload ids', uploadIds))
    .option('--older-than <duration>', 'every unfinished upload idle at least this long', duration)
    .option('--dry-run', 'only list what would be terminated')
    .action(
      action((ops, out, o, ids: string[]) =>
        c.uploadsExpire(ops, out, ids, { ...(o.olderThan !== undefined && { olderThanMs: o.olderThan as number }), dryRun: o.dryRun === true }),
      ),
    );

  const queue = program.command('queue').description('the finalization queue: status, list, retry (online or offline)').addHelpText('after', MODES_HELP);
  common(queue.command('status').description('jobs per tier and state, pressure, workers, breakers; exit 3 on emergency mode, an open breaker or a failed worker'))
    .action(action((ops, out) => c.queueStatus(ops, out)));
  common(queue.command('list').description('list jobs (default: waiting and running), in the order they will run'))
    .option('--state <states>', `comma-separated: ${JOB_STATES.join(', ')}, or all`, states)
    .addOption(new Option('--tier <tier>', 'one priority tier').choices(PRIORITY_TIERS))
    .option('--limit <n>', `at most this many (default 100, max ${MAX_LIMIT})`, wholeNumber(1, MAX_LIMIT))
    .option('--offset <n>', 'skip this many', wholeNumber(0))
    .action(
      action((ops, out, o) =>
        c.queueList(ops, out, {
          ...(o.state !== undefined && { states: o.state as JobState[] }),
          ...(o.tier !== undefined && { priority: o.tier as PriorityTier }),
          ...(o.limit !== undefined && { limit: o.limit as number }),
          ...(o.offset !== undefined && { offset: o.offset as number }),
        }),
      ),
    );
  common(queue.command('retry').description('retry one job now: a dead letter is replayed, a job waiting for its backoff runs now').argument('<id>', 'job id', jobId))
    .action(action((ops, out, _o, id: string) => c.queueRetry(ops, out, id)));

  const dlq = program.command('dlq').description('dead letters: list, replay, purge (online or offline)').addHelpText('after', MODES_HELP);
  common(dlq.command('list').description('dead letters, oldest first, with their last error'))
    .option('--limit <n>', `at most this many (default 100, max ${MAX_LIMIT})`, wholeNumber(1, MAX_LIMIT))
    .option('--offset <n>', 'skip this many', wholeNumber(0))
    .action(action((ops, out, o) => c.dlqList(ops, out, { ...(o.limit !== undefined && { limit: o.limit as number }), ...(o.offset !== undefined && { offset: o.offset as number }) })));
  common(dlq.command('replay').description('put dead letters back into the queue (attempts reset)').argument('[id]', 'one dead letter', deadLetterId))
    .option('--all', 'every dead letter')
    .action(action((ops, out, o, id: string | undefined) => c.dlqReplay(ops, out, c.selector(id, o.all as boolean | undefined))));
  common(dlq.command('purge').description('delete dead letters and their uploaded bytes for good').argument('[id]', 'one dead letter', deadLetterId))
    .option('--all', 'every dead letter')
    .action(action((ops, out, o, id: string | undefined) => c.dlqPurge(ops, out, c.selector(id, o.all as boolean | undefined))));

  common(
    program
      .command('recover')
      .description('re-admit finished uploads that never reached the queue, remove orphaned files and stale records; exit 3 if a dry run found work or an action failed (online or offline)'),
  )
    .option('--dry-run', 'only show the plan')
    .action(action((ops, out, o) => c.recoverCommand(ops, out, { dryRun: o.dryRun === true })));

  common(program.command('space').description('what holds the data directory\'s space (unfinished uploads, dead letters, queue files) and how to free it; exit 3 while below storage.min_free_space (online or offline)'))
    .action(action((ops, out) => c.spaceCommand(ops, out)));

  common(program.command('verify').description('re-hash every published file against its record; exit 3 on corruption (online or offline)'))
    .action(action((ops, out) => c.verifyCommand(ops, out)));

  const quarantine = program.command('quarantine').description('files the malware scan withheld: list, release, delete (online or offline)').addHelpText('after', MODES_HELP);
  common(quarantine.command('list').description('quarantined files, oldest first, with reason and signature'))
    .action(action((ops, out) => q.quarantineList(ops, out)));
  common(quarantine.command('release').description('publish a quarantined file anyway, at its slot URL').argument('<id>', 'quarantine id (the job id)', quarantineId))
    .action(action((ops, out, _o, id: string) => q.quarantineRelease(ops, out, id)));
  common(quarantine.command('delete').description('delete a quarantined file and its bytes for good').argument('<id>', 'quarantine id (the job id)', quarantineId))
    .action(action((ops, out, _o, id: string) => q.quarantineDelete(ops, out, id)));
}
