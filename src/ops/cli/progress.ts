/**
 * A progress bar with ETA on stderr, drawn only when stderr is a terminal (scripts and pipes get
 * nothing). `renderBar` is pure, for tests.
 */
import { formatAge, formatBytes } from './render.js';
import type { Progress, ProgressSink } from '../types.js';

export interface BarStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

/** One line: `label [#####.....]  45%  12 MiB/27 MiB  ETA 12s`. */
export function renderBar(label: string, p: Progress, elapsedMs: number, width = 80): string {
  const fraction = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
  const amount = p.unit === 'bytes' ? `${formatBytes(p.done)}/${formatBytes(p.total)}` : `${p.done}/${p.total} ${p.unit}`;
  const eta = fraction > 0 && fraction < 1 && elapsedMs > 0 ? `ETA ${formatAge(((elapsedMs / fraction) * (1 - fraction)) / 1000)}` : fraction >= 1 ? 'done' : 'ETA -';
  const pct = `${Math.floor(fraction * 100)}%`.padStart(4);
  const tail = ` ${pct}  ${amount}  ${eta}`;
  const barWidth = Math.max(10, Math.min(40, width - label.length - tail.length - 4));
  const filled = Math.round(fraction * barWidth);
  return `${label} [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]${tail}`;
}

export interface ProgressBar {
  readonly update: ProgressSink;
  /** Clears the bar (call before printing results). */
  end(): void;
}

export function progressBar(label: string, stream: BarStream = process.stderr, now: () => number = Date.now): ProgressBar {
  if (!stream.isTTY) return { update: () => {}, end: () => {} };
  const started = now();
  let lastDraw = Number.NEGATIVE_INFINITY;
  let drawn = false;
  return {
    update(p) {
      const t = now();
      if (t - lastDraw < 100 && p.done < p.total) return;
      lastDraw = t;
      drawn = true;
      stream.write(`\r\x1b[2K${renderBar(label, p, t - started, stream.columns ?? 80)}`);
    },
    end() {
      if (drawn) stream.write('\r\x1b[2K');
    },
  };
}
