/** Human-readable output of the operator commands: aligned tables, sizes, ages. Pure. */

export type Cell = string | number | null | undefined;

export interface TableOptions {
  /** Columns (by index) aligned right; default: columns whose every value is a number. */
  readonly right?: readonly number[];
  /** Cut cells to this many characters (with …); default 60. */
  readonly maxWidth?: number;
}

/** A plain-text table with a header row; an empty table prints `empty` instead. */
export function table(headers: readonly string[], rows: readonly (readonly Cell[])[], options: TableOptions = {}, empty = '(none)'): string {
  if (rows.length === 0) return empty;
  const max = options.maxWidth ?? 60;
  const text = (c: Cell) => {
    const s = c === null || c === undefined ? '-' : String(c);
    return s.length > max ? `${s.slice(0, max - 1)}…` : s;
  };
  const body = rows.map((r) => headers.map((_, i) => text(r[i])));
  const right = new Set(options.right ?? headers.map((_, i) => i).filter((i) => rows.every((r) => typeof r[i] === 'number' || r[i] === null || r[i] === undefined)));
  const widths = headers.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...body.map(line)].join('\n');
}

/** Key-value lines, keys aligned. */
export function fields(pairs: readonly (readonly [string, Cell])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${v === null || v === undefined ? '-' : String(v)}`).join('\n');
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${UNITS[u]}`;
}

/** 59s, 12m, 3h05m, 2d04h. */
export function formatAge(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

/** ISO time without milliseconds, or '-'. */
export function formatTime(ms: number | string | null | undefined): string {
  if (ms === null || ms === undefined || ms === '' || ms === 0) return '-';
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '-' : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function percent(part: number, whole: number | null): string {
  if (whole === null || whole <= 0) return '-';
  return `${Math.floor((part / whole) * 100)}%`;
}
