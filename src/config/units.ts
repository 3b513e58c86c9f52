/**
 * Parsers for the human units used in config files. Pure; each returns a number or throws a
 * message that names what was expected (the caller adds the key path).
 */

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "300s", "5m", "1h30m", "250ms", "0s" -> milliseconds. Bare numbers are refused: a unit is never guessed. */
export function parseDuration(input: unknown): number {
  if (typeof input !== 'string') {
    throw new Error(`expected a duration string such as "30s", "5m" or "2h", got ${describe(input)}`);
  }
  const text = input.trim().toLowerCase();
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    part.lastIndex = pos;
    const m = part.exec(text);
    if (!m) break;
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]!]!;
    pos = part.lastIndex;
  }
  if (text.length === 0 || pos !== text.length) {
    throw new Error(`"${input}" is not a duration; use a number with a unit (ms, s, m, h, d), e.g. "30s" or "1h30m"`);
  }
  return Math.round(total);
}

// Decimal units follow SI (MB = 10^6 bytes), binary units follow IEC (MiB = 2^20 bytes).
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  k: 1e3, m: 1e6, g: 1e9, t: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** "10MB", "1GiB", "512", 1048576 -> bytes. */
export function parseSize(input: unknown): number {
  if (typeof input === 'number') {
    if (Number.isSafeInteger(input) && input >= 0) return input;
    throw new Error(`expected a whole number of bytes >= 0, got ${input}`);
  }
  if (typeof input !== 'string') {
    throw new Error(`expected a size such as "10MB", "1GiB" or a number of bytes, got ${describe(input)}`);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(input);
  const unit = m ? (m[2] ?? '').toLowerCase() || 'b' : '';
  const factor = SIZE_UNITS[unit];
  if (!m || factor === undefined) {
    throw new Error(`"${input}" is not a size; use a number with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)`);
  }
  if (factor === 1 && !/^\d+$/.test(m[1]!)) throw new Error(`"${input}" is not a whole number of bytes`);
  const bytes = Math.round(Number(m[1]) * factor);
  if (!Number.isSafeInteger(bytes)) throw new Error(`"${input}" is too large`);
  return bytes;
}

/** A share of a file system ("5%") or a fixed size ("64MiB", 1048576). */
export type SizeOrPercent = { readonly bytes: number } | { readonly percent: number };

/** "5%", "0.5%" -> { percent }; anything parseSize takes -> { bytes }. Percentages are 0..100. */
export function parseSizeOrPercent(input: unknown): SizeOrPercent {
  if (typeof input === 'string' && input.trim().endsWith('%')) {
    const text = input.trim().slice(0, -1).trim();
    const percent = Number(text);
    if (!/^\d+(?:\.\d+)?$/.test(text) || !(percent >= 0 && percent <= 100)) {
      throw new Error(`"${input}" is not a percentage from 0% to 100%`);
    }
    return { percent };
  }
  return { bytes: parseSize(input) };
}

/** "127.0.0.1:8080", "[::1]:8080", ":8080", "8080" -> host and port. An empty host means all interfaces. */
export function parseListen(input: unknown): { host: string; port: number } {
  if (typeof input !== 'string' && typeof input !== 'number') {
    throw new Error(`expected "host:port", got ${describe(input)}`);
  }
  const text = String(input).trim();
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new Error(`"${text}" is not a listen address; use "host:port", e.g. "127.0.0.1:8080"`);
  }
  return { host: m[1] ?? m[2] ?? '', port };
}

/**
 * A file permission mode: an octal string ("0640", "640", "0o640") or a TOML octal integer
 * (0o640). The owner (the server itself) must keep read and write; no bits beyond 0777.
 */
export function parseFileMode(input: unknown): number {
  let mode: number;
  if (typeof input === 'number' && Number.isInteger(input)) mode = input;
  else if (typeof input === 'string' && /^(?:0o?)?[0-7]{3}$/i.test(input.trim())) mode = parseInt(input.trim().replace(/^0o?/i, ''), 8);
  else throw new Error(`expected an octal file mode such as "0640", got ${describe(input)}`);
  if (mode < 0 || mode > 0o777) throw new Error(`${input} is not a file mode (0000-0777)`);
  if ((mode & 0o600) !== 0o600) throw new Error(`${formatMode(mode)} takes read or write away from the server itself; the owner needs 06xx`);
  return mode;
}

/** The directory mode for a file mode: whoever may read files may also list and enter directories. */
export function directoryModeFor(fileMode: number): number {
  return fileMode | ((fileMode & 0o444) >> 2);
}

export const formatMode = (mode: number) => `0${mode.toString(8).padStart(3, '0')}`;

/** One file-name ending as written in a config list: "jpg", ".jpg" or ".tar.gz" (no wildcards). */
export const EXTENSION_ENTRY = /^\.?[\p{L}\p{N}_+~-]+(?:\.[\p{L}\p{N}_+~-]+)*$/u;
export const EXTENSION_ENTRY_MESSAGE = 'must be one file name ending such as ".jpg" or ".tar.gz" (no wildcards, one per entry)';

/** ".JPG", "jpg" -> ".jpg": how file-name endings are compared (case-insensitive, with the dot). */
export function normalizeExtension(ext: string): string {
  const lower = ext.trim().toLowerCase();
  return lower.startsWith('.') ? lower : `.${lower}`;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `${typeof v} ${JSON.stringify(v)}`;
}
