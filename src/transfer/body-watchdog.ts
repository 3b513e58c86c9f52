/**
 * Watches an upload body for stalls (no byte for `stallMs`) and for a rate below the floor.
 * Progress is read off the socket's byte counter rather than the body stream, because the tus
 * body is consumed inside @tus/server where we cannot see chunks; during a body upload the
 * socket carries nothing else. A moving body is never a stall, and a deadline never ends a
 * body that keeps above the floor (issue 18.8): the size-class deadline only sets how early
 * the floor may judge it.
 */
import { BodyMeter, type FloorJudgement, type RateFloor } from './body-meter.js';

export type BodyVerdict = 'ok' | 'stall' | 'floor';

export interface BodyLimits {
  stallMs: number;
  floor: RateFloor;
}

/** Pure: feeds the meter and says whether the request must end now. */
export function judgeBody(meter: BodyMeter, bytesRead: number, nowMs: number, limits: BodyLimits): { verdict: BodyVerdict; floor: FloorJudgement } {
  meter.observe(bytesRead, nowMs);
  const floor = meter.judgeFloor(nowMs, limits.floor);
  if (meter.idleMs(nowMs) >= limits.stallMs) return { verdict: 'stall', floor };
  if (floor.tooSlow) return { verdict: 'floor', floor };
  return { verdict: 'ok', floor };
}

export interface BodyWatchOptions extends BodyLimits {
  /** How often the byte counter is sampled: the idle clock's resolution (takeovers read it). */
  sampleMs: number;
  onEnd: (verdict: Exclude<BodyVerdict, 'ok'>, judged: FloorJudgement) => void;
  now?: () => number;
}

export interface BodyWatch {
  /** Time since the last byte, sampling the counter now. */
  idleMs(): number;
  readonly meter: BodyMeter;
  /** Stop watching (call it in `finally`). */
  stop(): void;
}

/** Starts watching `source.bytesRead`. */
export function watchBody(source: { readonly bytesRead: number }, options: BodyWatchOptions): BodyWatch {
  const now = options.now ?? Date.now;
  const meter = new BodyMeter(now(), source.bytesRead, options.floor.windowMs);
  // Judge often enough to end a stall within ~10% of its timeout; sample the idle clock finer.
  const judgeEveryMs = Math.max(25, Math.min(1000, Math.floor(options.stallMs / 10)));
  let lastJudgedAt = meter.startedAtMs;
  const timer = setInterval(() => {
    const t = now();
    if (t - lastJudgedAt < judgeEveryMs) {
      meter.observe(source.bytesRead, t);
      return;
    }
    lastJudgedAt = t;
    const judged = judgeBody(meter, source.bytesRead, t, options);
    if (judged.verdict !== 'ok') {
      clearInterval(timer);
      options.onEnd(judged.verdict, judged.floor);
    }
  }, Math.max(10, Math.min(options.sampleMs, judgeEveryMs)));
  timer.unref();
  return {
    meter,
    idleMs: () => {
      const t = now();
      meter.observe(source.bytesRead, t);
      return meter.idleMs(t);
    },
    stop: () => clearInterval(timer),
  };
}
