/**
 * Reads configs written for the Go HMAC File Server 3.x (and its older flat layout): keys that
 * mean the same thing here are moved to their new place with a warning; keys with no
 * equivalent are left for the unknown-key check, which warns and ignores them. Pure.
 */
import type { ConfigWarning, RawConfig } from './types.js';

type Table = Record<string, unknown>;

const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v);

function section(raw: RawConfig, name: string): Table {
  const existing = raw[name];
  if (isTable(existing)) return existing;
  const created: Table = {};
  raw[name] = created;
  return created;
}

/** Moves a value unless the new key is already set (the new name wins). */
function move(raw: RawConfig, from: [string, string] | [string], to: [string, string], warnings: ConfigWarning[], convert?: (v: unknown) => unknown): void {
  const holder: Table | undefined = from.length === 1 ? raw : isTable(raw[from[0]]) ? (raw[from[0]] as Table) : undefined;
  const key = from[from.length - 1]!;
  if (!holder || !(key in holder)) return;
  const value = holder[key];
  delete holder[key];
  const target = section(raw, to[0]);
  const fromPath = from.join('.');
  const toPath = to.join('.');
  if (to[1] in target) {
    warnings.push({ code: 'CONFIG_LEGACY_KEY', path: fromPath, message: `Go 3.x key ignored because ${toPath} is also set` });
    return;
  }
  target[to[1]] = convert ? convert(value) : value;
  warnings.push({ code: 'CONFIG_LEGACY_KEY', path: fromPath, message: `Go 3.x key read as ${toPath}; rename it` });
}

/** "8080", ":8080", "host:8080" (+ optional bind_ip) -> "host:port". Go binds all interfaces by default. */
function goListen(value: unknown, bindIp: unknown): unknown {
  const text = String(value).trim();
  const host = typeof bindIp === 'string' && bindIp !== '' ? bindIp : '0.0.0.0';
  if (/^\d+$/.test(text)) return `${host}:${text}`;
  if (/^:\d+$/.test(text)) return `${host}${text}`;
  return text;
}

/**
 * Go `[clamav]` -> `[scan]` (docs/scanning.md). Same meanings: files larger than maxscansize are
 * published unscanned (scan.oversize = "publish", the default), an empty scanfileextensions list
 * scans every file. go-clamd reads clamavsocket as a path, unix:/path or tcp://host:port, as
 * scan.clamd does. Older 3.x configs had numscanworkers under [workers].
 */
function mapLegacyClamav(raw: RawConfig, warnings: ConfigWarning[]): void {
  move(raw, ['clamav', 'clamavenabled'], ['scan', 'enabled'], warnings);
  move(raw, ['clamav', 'clamavsocket'], ['scan', 'clamd'], warnings);
  move(raw, ['clamav', 'numscanworkers'], ['scan', 'concurrency'], warnings);
  move(raw, ['workers', 'numscanworkers'], ['scan', 'concurrency'], warnings);
  move(raw, ['clamav', 'scanfileextensions'], ['scan', 'extensions'], warnings, (v) => (Array.isArray(v) && v.length === 0 ? 'all' : v));
  move(raw, ['clamav', 'maxscansize'], ['scan', 'max_size'], warnings);
  if (isTable(raw.clamav) && Object.keys(raw.clamav).length === 0) delete raw.clamav;
}

export function mapLegacyKeys(raw: RawConfig): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const server = isTable(raw.server) ? raw.server : undefined;
  const bindIp = server?.bind_ip;
  if (server && 'bind_ip' in server) delete server.bind_ip;

  move(raw, ['server', 'listen_address'], ['server', 'listen'], warnings, (v) => goListen(v, bindIp));
  move(raw, ['server', 'storage_path'], ['storage', 'data_dir'], warnings);
  move(raw, ['server', 'metrics_enabled'], ['metrics', 'enabled'], warnings);
  move(raw, ['server', 'metrics_path'], ['metrics', 'path'], warnings);
  move(raw, ['server', 'metrics_port'], ['metrics', 'listen'], warnings, (v) => goListen(v, bindIp));
  move(raw, ['server', 'deduplication_enabled'], ['finalize', 'dedup'], warnings);
  move(raw, ['workers', 'uploadqueuesize'], ['workers', 'queue_size'], warnings);
  move(raw, ['timeouts', 'shutdown'], ['server', 'graceful_shutdown_timeout'], warnings);
  move(raw, ['logging', 'level'], ['logging', 'level'], [], (v) => (v === 'warning' ? 'warn' : v));
  mapLegacyClamav(raw, warnings);

  // Pre-3.x flat layout.
  move(raw, ['ListenPort'], ['server', 'listen'], warnings, (v) => goListen(v, undefined));
  move(raw, ['Secret'], ['security', 'secret'], warnings);
  move(raw, ['StoreDir'], ['storage', 'data_dir'], warnings);
  move(raw, ['LogLevel'], ['logging', 'level'], warnings, (v) => (v === 'warning' ? 'warn' : v));

  const redis = isTable(raw.redis) ? raw.redis : undefined;
  if (redis && ('redisaddr' in redis || 'redisenabled' in redis)) {
    const enabled = redis.redisenabled !== false;
    const addr = typeof redis.redisaddr === 'string' ? redis.redisaddr : '';
    const password = typeof redis.redispassword === 'string' ? redis.redispassword : '';
    const db = typeof redis.redisdbindex === 'number' ? redis.redisdbindex : 0;
    for (const k of ['redisenabled', 'redisaddr', 'redispassword', 'redisdbindex', 'redishealthcheckinterval']) delete redis[k];
    if (enabled && addr !== '' && !('url' in redis)) {
      const auth = password ? `:${encodeURIComponent(password)}@` : '';
      redis.url = `redis://${auth}${addr}/${db}`;
    }
    warnings.push({ code: 'CONFIG_LEGACY_KEY', path: 'redis.redisaddr', message: 'Go 3.x Redis keys read as redis.url; rename them' });
  }

  const timeouts = isTable(raw.timeouts) ? raw.timeouts : undefined;
  for (const k of ['readtimeout', 'writetimeout', 'idletimeout']) {
    if (timeouts && k in timeouts) {
      delete timeouts[k];
      warnings.push({
        code: 'CONFIG_LEGACY_KEY',
        path: `timeouts.${k}`,
        message: 'Go 3.x hard timeout ignored: it would cut long uploads; uploads here end on stalls (server.upload_stall_timeout) and per-size deadlines',
      });
    }
  }
  return warnings;
}
