/**
 * Reads configs written for the Go HMAC File Server 3.x (and its older flat layout) so they start
 * with the same effective policy, or not at all:
 *
 * - key names are case-insensitive, as Go's (viper) are;
 * - keys that mean the same thing here are moved, each with a line `→ new.key = value`;
 * - sizes in a Go config use Go's binary units ("100MB" = 100 MiB), as Go parsed them;
 * - a restriction Go enforced that this server cannot is an error naming the key, unless the
 *   admin accepts it in `[migration] accept_unenforced`;
 * - keys that change nothing here are dropped with the reason; the rest are left for the
 *   unknown-key check.
 *
 * The per-key table is go-keys.ts; keys needing more than one row's logic are handled below.
 * Pure: works on the parsed TOML object.
 */
import { GO_KEY_RULES, on, type GoKeyRule } from './go-keys.js';
import type { ConfigIssue, ConfigWarning, RawConfig } from './types.js';
import { knownKeys } from './schema.js';
import { formatDuration, parseDuration, parseSize } from './units.js';

type Table = Record<string, unknown>;

const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

export interface LegacyResult {
  warnings: ConfigWarning[];
  /** Keys whose meaning cannot be kept: the start is refused. */
  issues: ConfigIssue[];
  /** Key here → the Go key it was read from: an error in its value names the key the file holds. */
  renamed: Map<string, string>;
  /** The file has keys only a Go config has. */
  goDialect: boolean;
}

interface Mapping {
  raw: RawConfig;
  warnings: ConfigWarning[];
  issues: ConfigIssue[];
  /** Set once a key only a Go config has was seen: its sizes then use Go's units. */
  goDialect: boolean;
  renamed: Map<string, string>;
}

export function mapLegacyKeys(raw: RawConfig): LegacyResult {
  const m: Mapping = { raw, warnings: [], issues: [], goDialect: false, renamed: new Map() };
  foldKeyCase(raw, '', m.issues);
  const accepted = acceptedUnenforced(raw);

  mapGo2FileTtl(m, accepted);
  mapListen(m);
  mapMetricsPort(m);
  mapRedis(m);
  mapGracePeriods(m);
  mapFlatLayout(m);
  mapClamav(m);
  for (const rule of GO_KEY_RULES) applyRule(m, rule, accepted);
  mapSizes(m);
  if (m.goDialect) readGoScalars(m);
  if (m.goDialect) mapUploadRoot(m);
  if (m.goDialect) noteGoBuiltIns(m);
  for (const key of accepted.unused) {
    m.warnings.push({ code: 'CONFIG_ADJUSTED', path: 'migration.accept_unenforced', message: `"${key}" names no unenforceable key set in this config; remove it` });
  }
  return { warnings: m.warnings, issues: m.issues, renamed: m.renamed, goDialect: m.goDialect };
}

/** Lower-cases every table key (Go reads keys case-insensitively); two spellings of one key are an error. */
function foldKeyCase(table: Table, prefix: string, issues: ConfigIssue[]): void {
  for (const key of Object.keys(table)) {
    const value = table[key];
    const lower = key.toLowerCase();
    if (lower !== key) {
      delete table[key];
      if (lower in table) {
        issues.push({ path: `${prefix}${lower}`, message: `set twice (as "${key}" and "${lower}"); key names are case-insensitive` });
        continue;
      }
      table[lower] = value;
    }
    if (isTable(value)) foldKeyCase(value, `${prefix}${lower}.`, issues);
  }
}

function acceptedUnenforced(raw: RawConfig): { has(key: string): boolean; unused: Set<string> } {
  const list = isTable(raw.migration) && Array.isArray(raw.migration.accept_unenforced) ? raw.migration.accept_unenforced : [];
  const unused = new Set(list.filter((k): k is string => typeof k === 'string').map((k) => k.toLowerCase()));
  const all = new Set(unused);
  return {
    has(key) {
      unused.delete(key);
      return all.has(key);
    },
    unused,
  };
}

// --- small helpers over "section.key" paths -------------------------------------------------

function split(path: string): [string | undefined, string] {
  const dot = path.indexOf('.');
  return dot < 0 ? [undefined, path] : [path.slice(0, dot), path.slice(dot + 1)];
}

function holder(raw: RawConfig, section: string | undefined): Table | undefined {
  if (section === undefined) return raw;
  const t = raw[section];
  return isTable(t) ? t : undefined;
}

function has(raw: RawConfig, path: string): boolean {
  const [section, key] = split(path);
  const h = holder(raw, section);
  return h !== undefined && key in h;
}

/** Removes a key and returns its value (undefined when absent). */
function take(raw: RawConfig, path: string): unknown {
  const [section, key] = split(path);
  const h = holder(raw, section);
  if (!h || !(key in h)) return undefined;
  const value = h[key];
  delete h[key];
  // A Go-only section emptied by the mapping goes, so it is not reported as unknown.
  if (section !== undefined && Object.keys(h).length === 0 && !OUR_SECTIONS.has(section)) delete raw[section];
  return value;
}

const OUR_SECTIONS = new Set(knownKeys().keys());
const OUR_KEYS = new Set([...knownKeys()].flatMap(([section, keys]) => [...keys].map((k) => `${section}.${k}`)));

/** A key of a Go config, never one of ours: should a Go name ever become ours, ours wins. */
const hasGoKey = (raw: RawConfig, path: string) => has(raw, path) && !OUR_KEYS.has(path);

/** Sets `path` unless the config already sets it there: the new name wins. Returns whether it was set. */
function put(m: Mapping, from: string, to: string, value: unknown, shown: string, note?: string): boolean {
  const [section, key] = split(to);
  const existing = m.raw[section!];
  if (existing !== undefined && !isTable(existing)) return false; // the schema reports the section
  const target = (m.raw[section!] ??= {}) as Table;
  if (key in target) {
    m.warnings.push({ code: 'CONFIG_LEGACY_IGNORED', path: from, message: `Go 3.x key ignored because ${to} is also set` });
    return false;
  }
  target[key] = value;
  m.renamed.set(to, from);
  m.warnings.push({ code: 'CONFIG_LEGACY_KEY', path: from, message: `→ ${to} = ${shown}${note ? ` (${note})` : ''}` });
  return true;
}

const show = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** Values never printed: secrets and passwords. */
const showSafe = (to: string, v: unknown): string => (/secret|password|token/.test(to) ? '(hidden)' : show(v));

// --- the table ---------------------------------------------------------------------------------

function applyRule(m: Mapping, rule: GoKeyRule, accepted: { has(key: string): boolean }): void {
  const [section, key] = split(rule.key);
  if (key === '*' && rule.kind === 'ignored' && section !== undefined && isTable(m.raw[section])) {
    // A whole section (even an empty one): one line for it.
    const reason = typeof rule.reason === 'function' ? rule.reason(undefined) : rule.reason;
    delete m.raw[section];
    m.goDialect = true;
    m.warnings.push({ code: 'CONFIG_LEGACY_IGNORED', path: section, message: `Go 3.x section ignored: ${reason}` });
    return;
  }
  for (const path of matchingKeys(m.raw, rule.key)) {
    if (!hasGoKey(m.raw, path)) continue; // an earlier row already handled it
    const value = readValue(m.raw, path);
    m.goDialect = true;
    switch (rule.kind) {
      case 'rename':
        take(m.raw, path);
        put(m, path, rule.to, value, showSafe(rule.to, value), rule.note);
        break;
      case 'unenforced':
        if (!rule.when(value)) continue; // the next row for this key says what "off" means
        take(m.raw, path);
        if (accepted.has(path)) {
          m.warnings.push({ code: 'CONFIG_UNENFORCED', path, message: `not enforced (accepted in [migration] accept_unenforced): ${rule.reason}` });
        } else {
          m.issues.push({
            path,
            message: `cannot be enforced: ${rule.reason}; remove it, or run without it by listing "${path}" in [migration] accept_unenforced`,
          });
        }
        break;
      case 'ignored': {
        take(m.raw, path);
        const reason = typeof rule.reason === 'function' ? rule.reason(value) : rule.reason;
        m.warnings.push({ code: 'CONFIG_LEGACY_IGNORED', path, message: `Go 3.x key ignored: ${reason}` });
        break;
      }
    }
  }
}

function matchingKeys(raw: RawConfig, pattern: string): string[] {
  const [section, key] = split(pattern);
  const h = holder(raw, section);
  if (!h) return [];
  const prefix = section === undefined ? '' : `${section}.`;
  if (key.endsWith('*')) {
    const start = key.slice(0, -1);
    return Object.keys(h).filter((k) => k.startsWith(start)).map((k) => `${prefix}${k}`);
  }
  return key in h ? [`${prefix}${key}`] : [];
}

function readValue(raw: RawConfig, path: string): unknown {
  const [section, key] = split(path);
  return holder(raw, section)?.[key];
}

// --- keys needing more than one row ----------------------------------------------------------

/**
 * "8080", ":8080", "host:8080" with an optional bind_ip -> "host:port". Go binds every interface
 * by default, IPv6 as well as IPv4: a Go listener on a wildcard address ("", "0.0.0.0", "::") is
 * dual-stack. ":8080" (no host) is the same here (Node listens on "::" dual-stack, or on 0.0.0.0
 * where the host has no IPv6).
 */
function goListen(value: unknown, bindIp: unknown): string {
  const text = String(value).trim();
  const host = typeof bindIp === 'string' && !WILDCARDS.has(bindIp.trim()) ? bindIp.trim() : '';
  if (/^\d+$/.test(text)) return `${host}:${text}`;
  if (/^:\d+$/.test(text)) return `${host}${text}`;
  const wildcard = /^(0\.0\.0\.0|\[::\]):(\d+)$/.exec(text);
  return wildcard ? `:${wildcard[2]}` : text;
}

const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]']);

const allInterfaces = (listen: string) => (listen.startsWith(':') ? 'all interfaces, IPv4 and IPv6' : undefined);

/** Go listened on bind_ip + ":" + listen_address (default port 8080, all interfaces). */
function mapListen(m: Mapping): void {
  const hasBind = hasGoKey(m.raw, 'server.bind_ip');
  const bindIp = hasBind ? take(m.raw, 'server.bind_ip') : undefined;
  const from = ['server.listen_address', 'server.listenport'].find((p) => hasGoKey(m.raw, p));
  if (from === undefined && !hasBind) return;
  m.goDialect = true;
  const port = from === undefined ? '8080' : take(m.raw, from);
  const listen = goListen(port, bindIp);
  if (put(m, from ?? 'server.bind_ip', 'server.listen', listen, listen, allInterfaces(listen)) && from !== undefined && hasBind) {
    m.warnings.push({ code: 'CONFIG_LEGACY_KEY', path: 'server.bind_ip', message: `→ server.listen = ${listen} (with ${from})` });
  }
}

/**
 * Go 2.x (its `listenport` layout) had no filettlenabled switch: it deleted published files
 * after `filettl` whenever that was set. Such a config is judged as 3.x's filettlenabled = true.
 */
function mapGo2FileTtl(m: Mapping, accepted: { has(key: string): boolean }): void {
  const server = holder(m.raw, 'server');
  if (!server || !('listenport' in server) || 'filettlenabled' in server || 'listen_address' in server) return;
  const ttl = server.filettl;
  if (typeof ttl !== 'string' || /^\s*0*\s*[a-z]?\s*$/i.test(ttl)) return; // unset or zero: nothing was deleted
  m.goDialect = true;
  take(m.raw, 'server.filettl');
  const reason = `Go 2.x deleted published files after filettl (${ttl}); this server keeps them until an admin removes them`;
  if (accepted.has('server.filettl')) m.warnings.push({ code: 'CONFIG_UNENFORCED', path: 'server.filettl', message: `not enforced (accepted in [migration] accept_unenforced): ${reason}` });
  else m.issues.push({ path: 'server.filettl', message: `cannot be enforced: ${reason}; remove it, or run without it by listing "server.filettl" in [migration] accept_unenforced` });
}

/** Go served metrics on ":" + port, i.e. on every interface whatever bind_ip says. */
function mapMetricsPort(m: Mapping): void {
  for (const from of ['server.metrics_port', 'server.metricsport', 'metrics.port']) {
    if (!hasGoKey(m.raw, from)) continue;
    m.goDialect = true;
    const listen = goListen(take(m.raw, from), undefined);
    put(m, from, 'metrics.listen', listen, listen, 'public on all interfaces, as Go served it; set [metrics] listen = "127.0.0.1:<port>" to keep it private');
  }
}

/** Go 3.x: redisenabled, redisaddr, redispassword, redisdbindex -> one redis.url, only when enabled. */
function mapRedis(m: Mapping): void {
  const redis = holder(m.raw, 'redis');
  const keys = ['redisenabled', 'redisaddr', 'redispassword', 'redisdbindex', 'redishealthcheckinterval', 'enabled'].filter((k) => !OUR_KEYS.has(`redis.${k}`));
  if (!redis || !keys.some((k) => k in redis)) return;
  m.goDialect = true;
  const enabled = on(redis.redisenabled ?? redis.enabled);
  const addr = typeof redis.redisaddr === 'string' ? redis.redisaddr : '';
  const password = typeof redis.redispassword === 'string' ? redis.redispassword : '';
  // Go read a quoted index as the number ("3" is DB 3); anything else is refused, never DB 0 by default.
  const dbValue = redis.redisdbindex ?? 0;
  const db = typeof dbValue === 'number' ? dbValue : typeof dbValue === 'string' && /^\s*\d+\s*$/.test(dbValue) ? Number(dbValue) : NaN;
  if (!Number.isSafeInteger(db) || db < 0) {
    m.issues.push({ path: 'redis.redisdbindex', message: `${show(dbValue)} is not a database index (a whole number, 0 for the default database)` });
    for (const k of keys) delete redis[k];
    return;
  }
  const from = 'redisenabled' in redis ? 'redis.redisenabled' : 'enabled' in redis ? 'redis.enabled' : 'redis.redisaddr';
  for (const k of keys) delete redis[k];
  if (!enabled) {
    m.warnings.push({ code: 'CONFIG_LEGACY_IGNORED', path: from, message: 'Redis is off in this Go config: no redis.url, local state only' });
    return;
  }
  if (addr === '') {
    m.warnings.push({ code: 'CONFIG_LEGACY_IGNORED', path: from, message: 'Redis is on but redisaddr is empty: no redis.url, local state only' });
    return;
  }
  const auth = password ? `:${encodeURIComponent(password)}@` : '';
  put(m, 'redis.redisaddr', 'redis.url', `redis://${auth}${addr}/${db}`, `redis://${password ? ':(hidden)@' : ''}${addr}/${db}`);
}

const GRACE_KEYS = ['token_grace_period', 'mobile_grace_period', 'standby_grace_period', 'ultra_max_grace'];

/**
 * Go 3.x accepted expired v3 URLs for hours, longer for clients whose User-Agent looks mobile.
 * A User-Agent proves nothing, so any client could get the longest window: that is the grace
 * kept here.
 */
function mapGracePeriods(m: Mapping): void {
  const present = GRACE_KEYS.filter((k) => hasGoKey(m.raw, `security.${k}`));
  if (present.length === 0) return;
  m.goDialect = true;
  let longest = 0;
  for (const k of present) {
    const path = `security.${k}`;
    const value = take(m.raw, path);
    try {
      longest = Math.max(longest, parseDuration(value));
    } catch (err) {
      m.issues.push({ path, message: (err as Error).message });
    }
  }
  const paths = present.map((k) => `security.${k}`);
  const shown = formatDuration(longest);
  const note = present.length > 1 ? `the longest of ${paths.join(', ')}: clients are not told apart by User-Agent here` : undefined;
  put(m, paths[0]!, 'security.expiry_grace', shown, shown, note);
}

/** Pre-3.x flat layout: top-level keys. */
function mapFlatLayout(m: Mapping): void {
  if (hasGoKey(m.raw, 'listenport')) {
    m.goDialect = true;
    const listen = goListen(take(m.raw, 'listenport'), undefined);
    put(m, 'listenport', 'server.listen', listen, listen, allInterfaces(listen));
  }
  const moves: Array<[string, string]> = [['secret', 'security.secret'], ['storedir', 'storage.data_dir'], ['loglevel', 'logging.level']];
  for (const [from, to] of moves) {
    if (!hasGoKey(m.raw, from)) continue;
    m.goDialect = true;
    const value = take(m.raw, from);
    put(m, from, to, value, showSafe(to, value));
  }
  // Flat keys that restrict or change what the server does: moved to their 3.x place, so the 3.x
  // rules judge them (the size limit, the refusal of what is not enforced here). Left flat, they
  // were "unknown, ignored", and an upload limit was dropped in silence.
  const restrictions: Array<[string, string]> = [
    ['maxuploadsize', 'server.max_upload_size'],
    ['unixsocket', 'server.unixsocket'],
    ['deletefiles', 'server.filettlenabled'],
    ['deletefilesafterperiod', 'server.filettl'],
  ];
  for (const [from, to] of restrictions) {
    if (!hasGoKey(m.raw, from)) continue;
    m.goDialect = true;
    const [section, key] = split(to);
    const target = (m.raw[section!] ??= {}) as Table;
    if (!isTable(target) || key in target) continue; // the 3.x key is set too: it counts, the flat one is reported unknown
    target[key] = take(m.raw, from);
    m.renamed.set(to, from);
  }
}

/**
 * Go parsed sizes as a whole number + KB/MB/GB, in binary units (config_funcs.go parseSize).
 * Its upload limit was server.max_upload_size; [uploads] max_file_size (or maxfilesize) in its
 * examples states a limit too: the smaller one applies here, so no config gets looser.
 */
function mapSizes(m: Mapping): void {
  const limits: Array<{ path: string; bytes: number; text: string }> = [];
  const read = (path: string) => {
    const value = readValue(m.raw, path);
    const bytes = goSize(value);
    if (bytes !== null) return { path, bytes, text: String(value) };
    if (m.goDialect && ambiguousGoSize(value)) {
      m.issues.push({ path, message: `"${String(value)}" is not a size Go 3.x could read (a whole number with KB, MB or GB, binary; Go refused every upload with it): write e.g. "1536MB", or give the unit as KiB, MiB, GiB or TiB` });
      return null;
    }
    try {
      return { path, bytes: parseSize(value), text: show(value) };
    } catch (err) {
      // server.max_upload_size stays in place and the schema reports it.
      if (path !== 'server.max_upload_size') m.issues.push({ path, message: (err as Error).message });
      return null;
    }
  };
  if (m.goDialect && has(m.raw, 'server.max_upload_size')) {
    const limit = read('server.max_upload_size');
    if (limit) limits.push(limit);
  }
  for (const path of ['uploads.max_file_size', 'uploads.maxfilesize']) {
    if (!hasGoKey(m.raw, path)) continue;
    m.goDialect = true;
    const limit = read(path);
    take(m.raw, path);
    if (limit) limits.push(limit);
  }
  if (limits.length === 0) return;
  const smallest = limits.reduce((a, b) => (b.bytes < a.bytes ? b : a));
  const server = (m.raw.server ??= {}) as Table;
  if (!isTable(server)) return;
  server.max_upload_size = smallest.bytes;
  if (smallest.path !== 'server.max_upload_size') m.renamed.set('server.max_upload_size', smallest.path);
  const serverLimit = limits.find((l) => l.path === 'server.max_upload_size');
  if (serverLimit && smallest !== serverLimit && smallest.bytes < serverLimit.bytes) {
    // Go 3.4 has no [uploads] size key: it applied max_upload_size alone. Kept as the admin wrote
    // it (a limit is never loosened in silence), and said as a warning, not a mapping line.
    m.warnings.push({
      code: 'CONFIG_ADJUSTED',
      path: smallest.path,
      message: `Go 3.4 did not read it and accepted up to ${describeBytes(serverLimit.bytes)} (server.max_upload_size); here the smaller ${describeBytes(smallest.bytes)} applies. Remove ${smallest.path} to accept what Go accepted`,
    });
  }
  for (const limit of limits) {
    const unit = goSize(limit.text) !== null ? `"${limit.text}" in Go's binary units` : `"${limit.text}"`;
    const chosen = limit === smallest ? '' : `; the smaller ${smallest.path} applies`;
    m.warnings.push({
      code: 'CONFIG_LEGACY_KEY',
      path: limit.path,
      message: `${unit} → server.max_upload_size = ${describeBytes(smallest.bytes)}${chosen}`,
    });
  }
}

/**
 * Go `[clamav]` keys that need a conversion (the plain renames are rows in go-keys.ts): its
 * maxscansize in Go's binary units, and an empty scanfileextensions, which scanned every file
 * (docs/scanning.md).
 */
function mapClamav(m: Mapping): void {
  if (hasGoKey(m.raw, 'clamav.maxscansize')) {
    m.goDialect = true;
    const value = take(m.raw, 'clamav.maxscansize');
    const bytes = goSize(value);
    if (bytes === null && ambiguousGoSize(value)) m.issues.push({ path: 'clamav.maxscansize', message: `"${String(value)}" is not a size Go 3.x could read (a whole number with KB, MB or GB, binary): write e.g. "200MB", or give the unit as KiB, MiB or GiB` });
    else if (bytes === null) put(m, 'clamav.maxscansize', 'scan.max_size', value, show(value));
    else put(m, 'clamav.maxscansize', 'scan.max_size', bytes, describeBytes(bytes), `"${String(value)}" in Go's binary units`);
  }
  if (hasGoKey(m.raw, 'clamav.scanfileextensions')) {
    m.goDialect = true;
    const value = take(m.raw, 'clamav.scanfileextensions');
    const all = Array.isArray(value) && value.length === 0;
    put(m, 'clamav.scanfileextensions', 'scan.extensions', all ? 'all' : value, all ? '"all"' : show(value), all ? 'an empty list scanned every file' : undefined);
  }
}

/**
 * A size in a Go config that Go's parseSize refused ("1.5GB", "10G", "1TB", "100 MB") and whose
 * unit reads both ways (decimal here, binary in Go's own sizes): refused rather than guessed.
 * Plain byte counts and the binary units (KiB…) mean one thing and are read as written.
 */
function ambiguousGoSize(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  return !/^\s*\d+\s*$/.test(value) && !/^\s*\d+(?:\.\d+)?\s*[kmgt]ib\s*$/i.test(value);
}

/** Go's parseSize: "<integer>KB|MB|GB", binary. null when Go would not have parsed it. */
function goSize(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const m = /^\s*(\d+)(KB|MB|GB)\s*$/i.exec(value); // Go: strconv.Atoi of all before the unit, so no space
  if (!m) return null;
  const factor = { KB: 2 ** 10, MB: 2 ** 20, GB: 2 ** 30 }[m[2]!.toUpperCase() as 'KB' | 'MB' | 'GB'];
  return Number(m[1]) * factor;
}

function describeBytes(bytes: number): string {
  const units: Array<[string, number]> = [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]];
  const unit = units.find(([, f]) => bytes >= f && bytes % f === 0);
  return unit ? `${bytes / unit[1]}${unit[0]} (${bytes} bytes)` : `${bytes} bytes`;
}

/** What Go did on its own, whatever the config said, and this server does not. */
/** Switches and counts of a Go config, where they land here (after the renames). */
const GO_SCALARS: ReadonlyArray<[string, 'bool' | 'count']> = [
  ['metrics.enabled', 'bool'],
  ['finalize.dedup', 'bool'],
  ['scan.enabled', 'bool'],
  ['workers.numworkers', 'count'],
  ['workers.queue_size', 'count'],
  ['scan.concurrency', 'count'],
];

/**
 * Go read its config through viper, which converts quoted values ("true", "8") to the key's
 * type; a Go config is read the same way here. A string neither way reads is left for the
 * schema to refuse with its key path.
 */
function readGoScalars(m: Mapping): void {
  for (const [path, kind] of GO_SCALARS) {
    const [section, key] = split(path);
    const table = holder(m.raw, section);
    const value = table?.[key];
    if (typeof value !== 'string') continue;
    const text = value.trim();
    if (kind === 'count' && /^\d{1,9}$/.test(text)) table![key] = Number(text);
    if (kind === 'bool' && /^(1|t|true|0|f|false)$/i.test(text)) table![key] = on(text);
  }
}

/**
 * Go served slots at the root (its catch-all "/" handler, the signature over the whole path), so
 * the XMPP server's URLs and the links in chat histories carry no prefix: a Go config gets
 * upload_path = "/" unless it names a URL path of its own. Go's upload_path was a directory
 * ("./uploads") that 3.4 no longer read.
 */
function mapUploadRoot(m: Mapping): void {
  const server = holder(m.raw, 'server');
  const given = server?.upload_path;
  // A URL path of this server's form ("/upload/") is kept; anything else a string ("./uploads",
  // "/var/lib/hmac/uploads") was Go's directory.
  if (given !== undefined && !(typeof given === 'string' && !/^\/([A-Za-z0-9._~-]+\/)*$/.test(given))) return;
  if (m.raw.server !== undefined && !isTable(m.raw.server)) return; // the schema reports the section
  const target = (m.raw.server ??= {}) as Table;
  target.upload_path = '/';
  const was = given === undefined ? '' : `; Go's upload_path = ${JSON.stringify(given)} named a directory, which Go 3.4 no longer read`;
  m.warnings.push({
    code: 'CONFIG_ADJUSTED',
    path: 'server.upload_path',
    message: `"/": slot URLs at the root, as Go served them${was}. Set upload_path (e.g. "/upload/") if your XMPP server's upload URLs carry a prefix`,
  });
}

function noteGoBuiltIns(m: Mapping): void {
  const security = holder(m.raw, 'security');
  if (!security || !('expiry_grace' in security)) {
    m.warnings.push({
      code: 'CONFIG_LEGACY_IGNORED',
      path: 'security.expiry_grace',
      message:
        'Go 3.4 accepted expired v3 URLs for 8 h or more on its own; here they are refused at their expiry. If clients relied on that, set security.expiry_grace (a leaked URL stays usable that long)',
    });
  }
}
