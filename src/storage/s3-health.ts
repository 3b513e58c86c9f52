/**
 * Whether the S3 backend answers, for /ready and /metrics: a HeadBucket every few seconds (and on
 * demand, at most once a second), with its own short deadline so a black-holed S3 is reported
 * as unreachable in seconds instead of after the client's idle timeout. Reasons are safe to show:
 * no endpoint, no keys, no bucket name.
 */
import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { unreachableReason } from './s3-errors.js';

export interface S3Probe {
  readonly reachable: boolean;
  /** Why not, when unreachable. */
  readonly reason?: string;
  readonly checkedAtMs: number;
}

export interface S3HealthOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** One probe's deadline. */
  readonly probeTimeoutMs: number;
  /** Between background probes. */
  readonly intervalMs: number;
  /** A result younger than this is answered without asking S3 again. */
  readonly maxAgeMs?: number;
  /** Each probe's outcome (the metric); `changed` when reachability flipped (the log line). */
  readonly onProbe?: (probe: S3Probe, changed: boolean) => void;
  readonly now?: () => number;
}

export class S3Health {
  readonly #o: S3HealthOptions;
  #last: S3Probe | null = null;
  #inFlight: Promise<S3Probe> | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: S3HealthOptions) {
    this.#o = options;
  }

  /** The last result; null before the first probe finished. */
  get last(): S3Probe | null {
    return this.#last;
  }

  /** A recent result, probing when the last one is older than maxAgeMs; concurrent callers share one probe. */
  check(): Promise<S3Probe> {
    const now = (this.#o.now ?? Date.now)();
    if (this.#last && now - this.#last.checkedAtMs < (this.#o.maxAgeMs ?? 1_000)) return Promise.resolve(this.#last);
    return this.#probe();
  }

  /** Background probes keep the metric current and notice the way back without a /ready caller. */
  start(): void {
    if (this.#timer) return;
    void this.#probe();
    this.#timer = setInterval(() => void this.#probe(), this.#o.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  #probe(): Promise<S3Probe> {
    this.#inFlight ??= this.#ask().finally(() => (this.#inFlight = null));
    return this.#inFlight;
  }

  async #ask(): Promise<S3Probe> {
    const { client, bucket, probeTimeoutMs } = this.#o;
    let reason: string | undefined;
    try {
      await client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: AbortSignal.timeout(probeTimeoutMs) });
    } catch (err) {
      reason = unreachableReason(err, probeTimeoutMs);
    }
    const probe: S3Probe = { reachable: reason === undefined, ...(reason !== undefined && { reason }), checkedAtMs: (this.#o.now ?? Date.now)() };
    // The first probe counts as a change only when S3 is away (the start-up log says so once).
    const changed = this.#last === null ? !probe.reachable : this.#last.reachable !== probe.reachable;
    this.#last = probe;
    this.#o.onProbe?.(probe, changed);
    return probe;
  }
}
