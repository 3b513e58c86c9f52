#!/usr/bin/env node
/**
 * Command line: `serve` and the operator commands. Parses argv, loads config, handles signals;
 * everything else is built by app.ts. Exit codes: 0 ok, 1 command failed, 2 bad usage or config.
 */
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readStoredSecret, signSlotUrl } from './auth/index.js';
import { ConfigError, loadConfig, parseDuration, SCHEMES, type LoadedConfig, type Scheme } from './config/index.js';
import { createLogger } from './observability/index.js';
import { OpsFailure, registerOpsCommands } from './ops/cli/index.js';
import { missingServerNodeFlags, SERVER_NODE_FLAGS } from './node-flags.js';

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

class CliFailure extends Error {
  constructor(message: string, readonly exitCode = EXIT_FAILED) {
    super(message);
  }
}

async function load(path: string | undefined): Promise<LoadedConfig> {
  try {
    return await loadConfig({ path, env: process.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new CliFailure(`invalid config: ${err.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, EXIT_USAGE);
    }
    throw err;
  }
}

async function serve(opts: { config?: string; pretty?: boolean }): Promise<void> {
  const { config, warnings, source } = await load(opts.config);
  // Colour only for a terminal: a pipe or a file gets plain text.
  const log = createLogger({ level: config.logging.level, format: opts.pretty ? 'pretty' : config.logging.format, colorize: process.stdout.isTTY === true });
  log.info({ config: source ?? '(embedded defaults)' }, 'Configuration loaded');
  for (const w of warnings) {
    // Go 3.x keys read or dropped as documented are news, not problems.
    const level = w.code === 'CONFIG_LEGACY_KEY' || w.code === 'CONFIG_LEGACY_IGNORED' ? 'info' : 'warn';
    log[level]({ key: w.path, code: w.code, reason: w.message }, 'Config warning');
  }
  const missingFlags = missingServerNodeFlags();
  if (missingFlags.length > 0) {
    log.warn({ missing: missingFlags, hint: `start with node ${SERVER_NODE_FLAGS.join(' ')} dist/src/cli.js serve (npm start does)` }, 'Node started without the server\'s GC flags: uploads cost more CPU while the disk is slow (docs/performance.md)');
  }

  const { buildApp } = await import('./app.js'); // loaded for serve only: the other commands start faster
  let running;
  try {
    running = await (await buildApp(config, { log })).start();
  } catch (err) {
    // One line saying what to change (port in use, data dir not writable), not a stack trace.
    const { username, uid } = userInfo();
    const { describeStartupFailure } = await import('./startup-failure.js'); // it reads storage errors: loaded with app.ts, not for every command
    const line = describeStartupFailure(err, { config, user: { name: username, uid } });
    if (line === null) throw err;
    throw new CliFailure(`cannot start: ${line}`);
  }
  // `address` is where it listens; the URLs are what clients are told (public_url when set).
  log.info({ address: running.listenUrl, ...(running.baseUrl !== running.listenUrl && { publicUrl: running.baseUrl }), tusUrl: running.tusUrl, uploadUrl: running.uploadUrl }, 'Server listening');

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      // Every acknowledged byte is already in the store: exiting now loses nothing resumable.
      log.warn({ signal }, 'Second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, graceMs: config.server.gracefulShutdownMs }, 'Shutting down: refusing new uploads, waiting for running ones');
    running.stop(config.server.gracefulShutdownMs).then(
      () => {
        log.info('Server stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'Shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function configCheck(file: string, opts: { json?: boolean }): Promise<void> {
  const { warnings } = await load(file);
  if (opts.json) {
    console.log(JSON.stringify({ valid: true, warnings }));
    return;
  }
  console.log(`${file}: valid${warnings.length ? `, ${warnings.length} warning(s)` : ''}`);
  // A mapped Go key reads "mapped: old.key → new.key = effective value".
  for (const w of warnings) console.log(w.code === 'CONFIG_LEGACY_KEY' ? `mapped: ${w.path} ${w.message}` : `warning: ${w.path}: ${w.message}`);
}

interface SignOptions {
  path: string;
  size?: number;
  type?: string;
  scheme: Scheme;
  expiresIn?: string;
  expires?: number;
  baseUrl?: string;
  secret?: string;
  config?: string;
  json?: boolean;
}

async function sign(opts: SignOptions): Promise<void> {
  if (opts.path.startsWith('/')) {
    // Signers sign the path after the upload prefix, without a leading "/": "/a/b" would be a
    // different message and its URL would never verify.
    const bare = opts.path.replace(/^\/+/, '');
    const hint = bare.startsWith('upload/') ? ` (and without the upload prefix: "${bare.slice('upload/'.length)}")` : '';
    throw new CliFailure(`--path "${opts.path}": the slot path is the part after the upload prefix and has no leading "/"; use "${bare}"${hint}`, EXIT_USAGE);
  }
  // An empty key still yields an HMAC: the URL would look valid and be forgeable by anyone.
  if (opts.secret !== undefined && opts.secret.trim() === '') throw new CliFailure('--secret is empty: give the server\'s signing secret', EXIT_USAGE);
  const { config } = await load(opts.config);
  const secret = opts.secret ?? (config.security.secret || (await resolveSecretReadOnly(config.storage.dataDir)));
  if (secret.trim() === '') throw new CliFailure('the signing secret is empty (security.secret or HFS_SECRET): set the server\'s secret', EXIT_USAGE);
  const listen = config.server.listen;
  const host = listen.host === '' || listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  const baseUrl = opts.baseUrl ?? `${config.server.publicUrl || `http://${host}:${listen.port}`}${config.server.uploadPath}`;
  let expires = opts.expires;
  if (opts.scheme === 'v3' && expires === undefined) {
    let ms: number;
    try {
      ms = parseDuration(opts.expiresIn ?? '1h');
    } catch (err) {
      throw new CliFailure(`--expires-in: ${(err as Error).message}`, EXIT_USAGE);
    }
    expires = Math.floor((Date.now() + ms) / 1000);
  }
  let slot;
  try {
    slot = signSlotUrl({
      secret,
      path: opts.path,
      baseUrl,
      scheme: opts.scheme,
      ...(opts.size !== undefined ? { size: opts.size } : {}),
      ...(opts.type !== undefined ? { contentType: opts.type } : {}),
      ...(expires !== undefined ? { expires } : {}),
    });
  } catch (err) {
    throw new CliFailure((err as Error).message, EXIT_USAGE);
  }
  if (opts.json) console.log(JSON.stringify({ url: slot.url, getUrl: slot.getUrl, scheme: opts.scheme, ...(expires ? { expires } : {}) }));
  else console.log(slot.url);
}

/** sign must not create a secret as a side effect: only an existing one can sign usable URLs. */
async function resolveSecretReadOnly(dataDir: string): Promise<string> {
  const stored = await readStoredSecret(dataDir).catch(() => null);
  if (stored !== null) return stored;
  throw new CliFailure(`no secret: set security.secret, HFS_SECRET or --secret, or start the server once so it creates ${dataDir}/secret`);
}

/** The version in package.json (dist/src/cli.js -> ../../package.json, in the repo and when installed). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function wholeNumber(value: string): number {
  if (!/^\d{1,16}$/.test(value)) throw new InvalidArgumentError('expected a whole number');
  return Number(value);
}

function program(): Command {
  const cmd = new Command('hmac-file-server')
    .description('Resumable HMAC-authorized upload server (tus 1.0 and XEP-0363 PUT)')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    // One line per failed command: commander's "(Did you mean …?)" joins the error's line.
    .configureOutput({ outputError: (text, write) => write(`${text.trim().replace(/\s*\n\s*/g, ' ')} (--help for usage)\n`) });

  cmd
    .command('serve', { isDefault: true })
    .description('run the server (config: --config, else $HFS_CONFIG, else config/default.toml, else built-in defaults)')
    .option('-c, --config <file>', 'TOML config file')
    .option('--pretty', 'human-readable logs instead of JSON lines')
    .action(serve);

  const config = cmd.command('config').description('configuration tools');
  config
    .command('check')
    .description('validate a config file: prints the verdict and every warning; exit 2 when invalid')
    .argument('<file>', 'TOML config file')
    .option('--json', 'machine-readable output')
    .action(configCheck);

  cmd
    .command('sign')
    .description('mint a signed slot URL (for scripts, tests and app backends)')
    .requiredOption('-p, --path <path>', 'slot path without the upload prefix, e.g. "3f2c/photo.jpg" (unencoded)')
    .option('-s, --size <bytes>', 'file size in bytes (v, v2, token)', wholeNumber)
    .option('-t, --type <content-type>', 'content type (v2, token)')
    .addOption(new Option('--scheme <scheme>', 'signature scheme').choices(SCHEMES).default('v'))
    .option('--expires-in <duration>', 'v3: lifetime of the URL, e.g. "15m" (default 1h)')
    .option('--expires <unix-seconds>', 'v3: absolute expiry', wholeNumber)
    .option('--base-url <url>', 'base URL of the upload prefix (default: from config)')
    .option('--secret <secret>', 'signing secret (default: config, $HFS_SECRET, or <data_dir>/secret)')
    .option('-c, --config <file>', 'TOML config file')
    .option('--json', 'print {url, getUrl} as JSON')
    .action(sign);

  // Operator commands (src/ops): uploads, queue, dlq, recover, verify; online or offline.
  registerOpsCommands(cmd, load);
  return cmd;
}

async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    }
    if (err instanceof CliFailure || err instanceof OpsFailure) {
      process.stderr.write(`hmac-file-server: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    process.stderr.write(`hmac-file-server: ${(err as Error).message}\n`);
    process.exit(EXIT_FAILED);
  }
}

await main(process.argv);
