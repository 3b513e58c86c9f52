/**
 * The scan step of the finalization pipeline (docs/scanning.md): decides, for one job, whether
 * its bytes may be published, go to quarantine, or must wait. clamd is a dependency like storage
 * and the webhook: its own circuit breaker, retries with backoff, dead letters.
 *   clean                       publish
 *   infected                    quarantine (reason infected, the signature recorded)
 *   not in scan.extensions      publish unscanned
 *   above scan.max_size, or     scan.oversize: "publish" unscanned, or "quarantine"
 *   refused by clamd as too long
 *   clamd unreachable, or its   scan.unavailable: "hold" = postpone, no attempt spent (backoff
 *   breaker open                while the breaker is closed, until its retry time while open);
 *                               "publish" = publish unscanned (a slow clamd counts as unreachable)
 *   clamd timed out or answered retry (an attempt spent; dead letter when they run out)
 *   an error (hold mode)
 */
import type { Logger } from '../observability/index.js';
import { metrics } from '../observability/index.js';
import { retryDelayMs, type BackoffOptions, type Clock, type Job, type JobOutcome, type RandomSource } from '../queue/index.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { planScan, type OpenSource, type ScanPolicy, type ScanSlots, type ScanVerdict, type Scanner } from '../scan/index.js';
import type { QuarantineReason } from '../storage/index.js';

export interface ScanStepOptions {
  readonly scanner: Scanner;
  readonly policy: ScanPolicy;
  /** scan.concurrency */
  readonly slots: ScanSlots;
  /** null: circuit_breaker_enabled = false. */
  readonly breaker: CircuitBreaker | null;
  readonly clock: Clock;
  readonly random: RandomSource;
  /** Backoff of held jobs while the breaker is still closed (retry_base_delay, retry_max_delay). */
  readonly hold: BackoffOptions;
  readonly log: Logger;
}

export type ScanDecision =
  | { readonly kind: 'publish' }
  | { readonly kind: 'quarantine'; readonly reason: QuarantineReason; readonly signature: string | null }
  | { readonly kind: 'source_failed'; readonly error: Error }
  /** retry or postpone */
  | { readonly kind: 'outcome'; readonly outcome: JobOutcome };

const PUBLISH: ScanDecision = { kind: 'publish' };

export class ScanStep {
  readonly #o: ScanStepOptions;
  /** Consecutive "unreachable" answers, for the hold backoff; reset by any verdict. */
  #unreachable = 0;

  constructor(options: ScanStepOptions) {
    this.#o = options;
  }

  /** Rejects only with `signal`'s reason (job timeout, shutdown). */
  async decide(job: Job, open: OpenSource, signal: AbortSignal): Promise<ScanDecision> {
    const { policy, breaker, clock, log } = this.#o;
    const plan = planScan(policy, job.slotPath, job.size);
    if (plan.kind === 'skip') {
      metrics.filesUnscanned.inc({ reason: 'extension' });
      log.debug({ jobId: job.id }, 'Scan skipped: extension not in scan.extensions');
      return PUBLISH;
    }
    if (plan.kind === 'oversize') return this.#oversize(job, 'above scan.max_size');
    if (breaker !== null && !breaker.canAttempt(clock.now())) {
      // Open: wait for its cool-down. Half-open with the probe out: back off briefly rather than
      // until the probe's timeout, so held jobs follow within a backoff once the probe succeeds.
      const now = clock.now();
      const open = breaker.state(now) === 'open';
      return this.#unavailable(job, open ? 'circuit breaker open' : 'circuit breaker probing', open ? breaker.retryAtMs(now) : now + this.#o.hold.baseMs);
    }

    const release = await this.#o.slots.acquire(signal);
    const startedAt = clock.now();
    let verdict: ScanVerdict;
    try {
      verdict = await this.#o.scanner.scan(open, signal);
    } finally {
      release();
    }
    if (verdict.kind !== 'source_failed') metrics.scanDuration.observe(Math.max(0, clock.now() - startedAt) / 1000);
    return this.#judge(job, verdict);
  }

  #judge(job: Job, verdict: ScanVerdict): ScanDecision {
    const { breaker, clock, log, policy } = this.#o;
    switch (verdict.kind) {
      case 'source_failed':
        return verdict;
      case 'clean':
      case 'infected':
      case 'too_large':
        breaker?.onSuccess(clock.now());
        if (this.#unreachable > 0) log.info({ jobId: job.id }, 'Scanner answers again: held jobs resume');
        this.#unreachable = 0;
        break;
      case 'failed':
        breaker?.onFailure(clock.now());
        metrics.scans.inc({ result: 'failed' });
        metrics.scanErrors.inc({ reason: verdict.failure });
        if (verdict.failure === 'unavailable' || (verdict.failure === 'timeout' && policy.unavailable === 'publish')) {
          return this.#unavailable(job, verdict.message, breaker?.state(clock.now()) === 'open' ? breaker.retryAtMs(clock.now()) : 'backoff');
        }
        return {
          kind: 'outcome',
          outcome: { kind: 'retry', error: { atMs: clock.now(), code: 'ERR_SCAN_FAILED', message: verdict.message }, reason: verdict.failure === 'timeout' ? 'timeout' : 'server_error' },
        };
    }
    if (verdict.kind === 'clean') {
      metrics.scans.inc({ result: 'clean' });
      return PUBLISH;
    }
    if (verdict.kind === 'infected') {
      metrics.scans.inc({ result: 'infected' });
      return { kind: 'quarantine', reason: 'infected', signature: verdict.signature };
    }
    metrics.scans.inc({ result: 'too_large' });
    log.warn({ jobId: job.id, size: job.size, maxSize: policy.maxBytes }, 'clamd refused the stream as too long: set its StreamMaxLength to at least scan.max_size');
    return this.#oversize(job, 'refused by clamd (StreamMaxLength)');
  }

  #oversize(job: Job, why: string): ScanDecision {
    const { policy, log } = this.#o;
    const fields = { jobId: job.id, slotPath: job.slotPath, size: job.size, why };
    if (policy.oversize === 'quarantine') return { kind: 'quarantine', reason: 'oversize', signature: null };
    metrics.filesUnscanned.inc({ reason: 'oversize' });
    log.info(fields, 'File published unscanned: too large to scan');
    return PUBLISH;
  }

  /**
   * clamd is unreachable (or its breaker is open): hold the job until `until` ('backoff': the
   * retry backoff over consecutive unreachable answers), or publish it unscanned.
   */
  #unavailable(job: Job, reason: string, until: number | 'backoff'): ScanDecision {
    const { policy, log, clock } = this.#o;
    if (policy.unavailable === 'publish') {
      metrics.filesUnscanned.inc({ reason: 'unavailable' });
      log.warn({ jobId: job.id, slotPath: job.slotPath, reason }, 'File published unscanned: scanner unavailable');
      return PUBLISH;
    }
    this.#unreachable += 1;
    const untilMs = until !== 'backoff' ? until : clock.now() + Math.max(this.#o.hold.baseMs, retryDelayMs(Math.min(this.#unreachable, 30), this.#o.hold, this.#o.random));
    if (this.#unreachable === 1) log.warn({ jobId: job.id, reason }, 'Scanner unavailable: finalization held until it answers');
    else log.debug({ jobId: job.id, reason, untilMs }, 'Finalization held: scanner unavailable');
    return { kind: 'outcome', outcome: { kind: 'postpone', untilMs } };
  }
}
