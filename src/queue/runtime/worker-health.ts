/**
 * Worker health: each worker keeps a window of its recent job outcomes; a periodic check
 * (queue_health_check_interval) turns them into healthy / slow / failed.
 * Pure apart from the window's own state; time comes in as `nowMs`.
 */
export type WorkerStatus = 'healthy' | 'slow' | 'failed';
export const WORKER_STATUSES: readonly WorkerStatus[] = ['healthy', 'slow', 'failed'];

export interface WorkerSample {
  readonly durationMs: number;
  readonly ok: boolean;
}

export interface HealthThresholds {
  /** Fewer recent outcomes than this judge nothing by rate or average (a running job still can). */
  readonly minSamples: number;
  /** Error rate over the window from which a worker is failed. */
  readonly failedErrorRate: number;
  /** Slow: average job time above slowFactor x the pool's average... */
  readonly slowFactor: number;
  /** ...and above this floor, so fast pools do not flag noise. */
  readonly slowFloorMs: number;
}

export const DEFAULT_HEALTH_THRESHOLDS: HealthThresholds = {
  minSamples: 5,
  failedErrorRate: 0.5,
  slowFactor: 3,
  slowFloorMs: 1_000,
};

export interface HealthAssessment {
  readonly status: WorkerStatus;
  /** Over the window; null with fewer than minSamples outcomes. */
  readonly errorRate: number | null;
  /** Average duration of the window's jobs; null when the window is empty. */
  readonly avgMs: number | null;
  readonly reason: 'ok' | 'error_rate' | 'stuck' | 'slow_average' | 'slow_running';
}

/**
 * `running`: when the worker's current job started, or null when idle. A job running past
 * `jobTimeoutMs` means the worker is stuck: failed, whatever its history.
 */
export function assessWorker(
  samples: readonly WorkerSample[],
  poolAvgMs: number | null,
  running: { readonly startedAtMs: number } | null,
  nowMs: number,
  jobTimeoutMs: number,
  thresholds: HealthThresholds = DEFAULT_HEALTH_THRESHOLDS,
): HealthAssessment {
  const avgMs = samples.length === 0 ? null : samples.reduce((s, x) => s + x.durationMs, 0) / samples.length;
  const enough = samples.length >= thresholds.minSamples;
  const errorRate = enough ? samples.filter((s) => !s.ok).length / samples.length : null;
  const runningMs = running === null ? 0 : nowMs - running.startedAtMs;
  if (running !== null && runningMs >= jobTimeoutMs) return { status: 'failed', errorRate, avgMs, reason: 'stuck' };
  if (errorRate !== null && errorRate >= thresholds.failedErrorRate) return { status: 'failed', errorRate, avgMs, reason: 'error_rate' };
  const slowAt = Math.max(thresholds.slowFloorMs, poolAvgMs === null ? 0 : thresholds.slowFactor * poolAvgMs);
  if (enough && avgMs !== null && poolAvgMs !== null && avgMs > slowAt) return { status: 'slow', errorRate, avgMs, reason: 'slow_average' };
  if (running !== null && poolAvgMs !== null && runningMs > slowAt) return { status: 'slow', errorRate, avgMs, reason: 'slow_running' };
  return { status: 'healthy', errorRate, avgMs, reason: 'ok' };
}

/** The last `size` outcomes of one worker, plus lifetime totals. */
export class WorkerWindow {
  readonly #size: number;
  #samples: WorkerSample[] = [];
  processed = 0;
  errors = 0;

  constructor(size = 50) {
    if (!(size >= 1)) throw new RangeError('window size must be >= 1');
    this.#size = size;
  }

  record(sample: WorkerSample): void {
    this.processed += 1;
    if (!sample.ok) this.errors += 1;
    this.#samples.push(sample);
    if (this.#samples.length > this.#size) this.#samples.shift();
  }

  samples(): readonly WorkerSample[] {
    return this.#samples;
  }

  /** Sum of recent job durations: how busy the worker has been lately (least_loaded). */
  recentBusyMs(): number {
    return this.#samples.reduce((s, x) => s + x.durationMs, 0);
  }

  avgMs(): number | null {
    return this.#samples.length === 0 ? null : this.recentBusyMs() / this.#samples.length;
  }
}
