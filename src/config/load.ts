/**
 * Turns a TOML file plus environment overrides into one validated Config and its warnings.
 * `resolveConfig` is pure (raw object + env in, Config out); `loadConfig` adds the file read.
 * This module is the only reader of process.env's HFS_* variables (passed in as `env`).
 */
import { readFile } from 'node:fs/promises';
import { parse as parseToml, TomlError } from 'smol-toml';
import { configSchema, knownKeys, type Config } from './schema.js';
import { mapLegacyKeys } from './legacy.js';
import { scanConfigWarnings } from './scan-schema.js';
import { ConfigError, type ConfigWarning, type RawConfig } from './types.js';
import { formatDuration } from './units.js';

export interface LoadedConfig {
  config: Config;
  warnings: ConfigWarning[];
  /** The file read, or null when only defaults and environment were used. */
  source: string | null;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Environment variables that override one key each. */
const ENV_OVERRIDES: ReadonlyArray<[string, string, string]> = [
  ['HFS_LISTEN', 'server', 'listen'],
  ['HFS_PUBLIC_URL', 'server', 'public_url'],
  ['HFS_DATA_DIR', 'storage', 'data_dir'],
  ['HFS_SECRET', 'security', 'secret'],
  ['HFS_REDIS_URL', 'redis', 'url'],
  ['HFS_LOG_LEVEL', 'logging', 'level'],
  ['HFS_LOG_FORMAT', 'logging', 'format'],
  ['HFS_ADMIN_TOKEN', 'admin', 'token'],
  ['HFS_TEST_CRASH_AT', 'testing', 'crash_at'], // test-only: crash-recovery tests
  ['HFS_TEST_HOLD_AT', 'testing', 'hold_at'], // test-only: jobs held at a step (cluster download tests)
];

export const DEFAULT_CONFIG_PATH = 'config/default.toml';

/** Below this an admin token draws a warning at start. */
export const MIN_ADMIN_TOKEN_LENGTH = 32;

export async function loadConfig(options: { path?: string | undefined; env: Env }): Promise<LoadedConfig> {
  const explicit = options.path ?? options.env.HFS_CONFIG;
  const path = explicit ?? DEFAULT_CONFIG_PATH;
  let text: string | null;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && explicit === undefined) text = null;
    else throw new ConfigError([{ path: '(file)', message: `cannot read ${path}: ${code ?? (err as Error).message}` }]);
  }
  const raw = text === null ? {} : parseTomlText(text, path);
  const { config, warnings, goDialect } = resolveConfig(raw, options.env);
  // A Go config without its secret: Go refused to start, and a secret generated here (as for a
  // config of this server) would fail every upload the XMPP server signs with the one it has.
  if (goDialect && config.security.secret === '') {
    throw new ConfigError([{ path: 'security.secret', message: 'empty in a Go config (Go refused to start without it); set the secret your XMPP server signs with, or HFS_SECRET' }]);
  }
  return { config, warnings, source: text === null ? null : path };
}

export function parseTomlText(text: string, path: string): RawConfig {
  try {
    return parseToml(text) as RawConfig;
  } catch (err) {
    const where = err instanceof TomlError ? ` at line ${err.line}, column ${err.column}${keyOnLine(text, err.line)}` : '';
    const reason = err instanceof TomlError ? err.message.split('\n')[0] : 'invalid TOML';
    throw new ConfigError([{ path: '(file)', message: `${path} is not valid TOML${where}: ${reason}` }]);
  }
}

/** The key or table header on a line, to name it in an error; never the value (it may be a secret). */
function keyOnLine(text: string, line: number): string {
  const source = text.split(/\r?\n/)[line - 1] ?? '';
  const name = /^\s*(\[\[?[^\]]*\]\]?)/.exec(source)?.[1] ?? /^\s*([^=#]+?)\s*=/.exec(source)?.[1];
  return name === undefined || name.length > 80 ? '' : ` (${name})`;
}

/** Pure: raw TOML object + env -> validated Config, or ConfigError listing every bad key. */
export function resolveConfig(input: RawConfig, env: Env): { config: Config; warnings: ConfigWarning[]; goDialect: boolean } {
  const raw = structuredClone(input);
  const { warnings, issues: legacyIssues, renamed, goDialect } = mapLegacyKeys(raw);
  const fromEnv = new Map<string, string>();
  for (const [name, sec, key] of ENV_OVERRIDES) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const table = (raw[sec] ??= {}) as unknown;
    if (typeof table !== 'object' || table === null || Array.isArray(table)) continue; // the schema reports the section
    (table as Record<string, unknown>)[key] = value;
    fromEnv.set(`${sec}.${key}`, name);
  }
  warnings.push(...dropUnknownKeys(raw));

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success || legacyIssues.length > 0) {
    const schemaIssues = parsed.success
      ? []
      : parsed.error.issues.map((issue) => {
          const path = issue.path.join('.') || '(root)';
          const envName = fromEnv.get(path);
          if (envName) return { path: `${path} (from ${envName})`, message: issue.message };
          return { path: goKeyPath(path, renamed), message: issue.message };
        });
    throw new ConfigError([...legacyIssues, ...schemaIssues]);
  }
  const config = parsed.data;
  const clashes = [...listenerClashes(config), ...pathClashes(config)];
  if (clashes.length > 0) throw new ConfigError(clashes);
  warnings.push(...crossCheck(config, renamed));
  return { config, warnings, goDialect };
}

/** An issue in a value read from a Go key names the key the file holds: "timeouts.shutdown (read as server.graceful_shutdown_timeout)". */
function goKeyPath(path: string, renamed: ReadonlyMap<string, string>): string {
  for (const [to, from] of renamed) {
    if (path === to || path.startsWith(`${to}.`)) return `${from}${path.slice(to.length)} (read as ${path})`;
  }
  return path;
}

/** Pure: URL paths that would shadow one another on the main listener (uploads or the page would become unreachable). */
function pathClashes(config: Config): Array<{ path: string; message: string }> {
  const { tusPath, uploadPath } = config.server;
  const under = (path: string, prefix: string) => path.startsWith(prefix); // both prefixes end in '/' (urlPath)
  const clashes: Array<{ path: string; message: string }> = [];
  // tus is routed first: an upload path at or below it would never see a PUT (the reverse only shadows slot paths starting with the tus segment).
  if (under(uploadPath, tusPath)) clashes.push({ path: 'server.upload_path', message: `lies at or below server.tus_path (${tusPath}), where PUTs would never arrive; give each its own prefix` });
  // The page and /metrics are routed before the upload prefix (router.ts): below it, they only
  // take their own paths from the slots (upload_path = "/", as Go served slots).
  for (const [key, path, on] of [['upload_page.path', config.upload_page.path, config.upload_page.enabled], ['metrics.path', config.metrics.path, config.metrics.enabled && !config.metrics.listen]] as const) {
    if (on && under(path, tusPath)) clashes.push({ path: key, message: `lies below server.tus_path (${tusPath}), where it would never be reached` });
  }
  return clashes;
}

/** Pure: side listeners on the main listener's own address (the second bind would fail, naming the wrong key). */
function listenerClashes(config: Config): Array<{ path: string; message: string }> {
  const key = (l: { host: string; port: number }) => `${l.host}|${l.port}`;
  const main = config.server.listen;
  const side: Array<[string, { host: string; port: number } | null]> = [
    ['metrics.listen', config.metrics.listen],
    ['admin.listen', config.admin.listen],
  ];
  const clashes: Array<{ path: string; message: string }> = [];
  const seen = new Map<string, string>(main.port === 0 ? [] : [[key(main), 'server.listen']]);
  for (const [path, l] of side) {
    if (!l || l.port === 0) continue;
    const other = seen.get(key(l));
    if (other) clashes.push({ path, message: `is the same address as ${other}; give it a port of its own` });
    else seen.set(key(l), path);
  }
  return clashes;
}

function dropUnknownKeys(raw: RawConfig): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const known = knownKeys();
  for (const [sec, value] of Object.entries(raw)) {
    const keys = known.get(sec);
    if (!keys) {
      delete raw[sec];
      // A section of another program (a Go-only one whose known keys were read above): name what is left in it, key by key.
      const left = typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.keys(value) : null;
      if (left === null) warnings.push({ code: 'CONFIG_UNKNOWN_KEY', path: sec, message: 'unknown key, ignored' });
      else for (const key of left) warnings.push({ code: 'CONFIG_UNKNOWN_KEY', path: `${sec}.${key}`, message: 'unknown key, ignored' });
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) continue; // the schema reports it
    for (const key of Object.keys(value)) {
      if (!keys.has(key)) {
        delete (value as Record<string, unknown>)[key];
        warnings.push({ code: 'CONFIG_UNKNOWN_KEY', path: `${sec}.${key}`, message: 'unknown key, ignored' });
      }
    }
  }
  return warnings;
}

/** Longer v3 grace than this is worth a warning at every start. */
const WEAK_GRACE_MS = 3_600_000;

/** Contradictions that still allow a start: warn, naming the key and what was done. */
function crossCheck(config: Config, renamed: ReadonlyMap<string, string>): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  if (config.server.uploadStallMs > config.server.requestTimeoutMs) {
    warnings.push({
      code: 'CONFIG_ADJUSTED',
      path: 'server.upload_stall_timeout',
      message: 'longer than server.request_timeout, so a stall is cut by the request deadline first',
    });
  }
  if (config.server.uploadStallMs < config.tus.lockDrainMs) {
    warnings.push({
      code: 'CONFIG_ADJUSTED',
      path: 'server.upload_stall_timeout',
      message: 'shorter than tus.lock_drain_timeout: a receiving holder may be judged stalled before its drain ends',
    });
  }
  if (config.queue_resilience.emergencyThreshold < config.workers.backpressureThreshold) {
    warnings.push({
      code: 'CONFIG_ADJUSTED',
      path: 'queue_resilience.emergency_mode_threshold',
      message: 'below workers.queue_backpressure_threshold: emergency mode starts before backpressure',
    });
  }
  if (config.server.listen.host === '' && !renamed.has('server.listen')) {
    // A bare port reads as "this port, here"; Node binds it on every interface. (A Go listen
    // address means every interface, and its mapping line says so.)
    warnings.push({ code: 'CONFIG_ADJUSTED', path: 'server.listen', message: `no host given: listening on every interface, IPv4 and IPv6; write "127.0.0.1:${config.server.listen.port}" for this host only, or ":${config.server.listen.port}" to say every interface` });
  }
  if (config.redis.url !== '') warnings.push(...clusterCrossCheck(config));
  if (config.admin.token !== '' && config.admin.token.length < MIN_ADMIN_TOKEN_LENGTH) {
    // The token guards dead-letter purges and recovery; it is compared, never derived, so only its length protects it.
    warnings.push({
      code: 'CONFIG_ADJUSTED',
      path: 'admin.token',
      message: `shorter than ${MIN_ADMIN_TOKEN_LENGTH} characters; use a long random token, e.g. the output of "openssl rand -hex 32"`,
    });
  }
  const graceMs = config.security.expiryGraceMs + config.security.clockSkewMs;
  if (graceMs > WEAK_GRACE_MS && config.security.schemes.includes('v3')) {
    warnings.push({
      code: 'CONFIG_WEAK',
      path: 'security.expiry_grace',
      message: `v3 URLs are accepted up to ${formatDuration(graceMs)} after they expire (with clock_skew): a leaked URL stays usable that long`,
    });
  }
  const both = config.uploads.blockedExtensions.filter((e) => config.uploads.allowedExtensions.includes(e));
  if (both.length > 0) {
    warnings.push({ code: 'CONFIG_ADJUSTED', path: 'uploads.blocked_extensions', message: `${both.join(', ')} also allowed: blocked wins` });
  }
  if (config.security.secret !== '' && config.security.secret.length < 16) {
    warnings.push({ code: 'CONFIG_ADJUSTED', path: 'security.secret', message: 'shorter than 16 characters; use a long random secret' });
  }
  if (config.storage.backend === 's3' && config.upload_page.parallelUploads > 1) {
    warnings.push({ code: 'CONFIG_ADJUSTED', path: 'upload_page.parallel_uploads', message: 'S3 does not join partial uploads (concatenation): the page uploads each file in one upload' });
  }
  warnings.push(...scanConfigWarnings(config.scan, config.workers));
  return warnings;
}

/** Cluster mode (`[redis] url` set): keys whose single-node meaning does not carry over. */
function clusterCrossCheck(config: Config): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  if (config.security.secret === '') {
    warnings.push({
      code: 'CONFIG_ADJUSTED',
      path: 'security.secret',
      message: 'empty in cluster mode: instances starting at once may each generate a secret of their own; set one secret for every instance',
    });
  }
  if (!config.queue_resilience.recoveryEnabled) {
    warnings.push({
      code: 'CONFIG_ADJUSTED',
      path: 'queue_resilience.queue_recovery_enabled',
      message: 'ignored in cluster mode: the shared queue belongs to every instance, so one restarting instance never buries its jobs',
    });
  }
  if (!config.queue_resilience.persistentQueue) {
    warnings.push({
      code: 'CONFIG_ADJUSTED',
      path: 'queue_resilience.persistent_queue',
      message: 'ignored in cluster mode: the local journal that takes jobs while Redis is unreachable is always durable',
    });
  }
  return warnings;
}
