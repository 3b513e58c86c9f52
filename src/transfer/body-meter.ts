/**
 * What the server knows about one upload body's progress: when its last byte arrived (the idle
 * clock that stalls and takeovers read) and how fast it moved over the last window (the rate
 * floor). Pure: fed with the body's byte count and the time, it does no I/O and starts no timer.
 *
 * "Too slow" has one definition (issue 18.8, issue 9.1): over the last `windowMs`, the body
 * delivered fewer than `bytesPerSec` × (window − its longest silence in that window). The
 * longest silence is left out because silences are the stall timeout's business: a tunnel or a
 * handover pauses a healthy phone for tens of seconds, and the floor must not punish that on
 * top of the stall rule. A trickle (one byte every 2 s) has only short silences, so it is judged
 * on almost the whole window and falls far below the floor.
 */

/** A run of progress observations less than a second apart, kept as one point. */
interface ProgressRun {
  firstAtMs: number;
  lastAtMs: number;
  /** Byte count at the end of the run. */
  bytes: number;
}

export interface RateFloor {
  /** Minimum average rate; 0 turns the floor off. */
  bytesPerSec: number;
  /** Window the rate is measured over. */
  windowMs: number;
  /** Age from which a body is judged at all (the body's class deadline, at most the window). */
  judgeAfterMs: number;
}

export interface FloorJudgement {
  tooSlow: boolean;
  /** Average over the judged window, silences included (for logs). */
  rateBytesPerSec: number;
  /** Bytes delivered in the window. */
  windowBytes: number;
  windowMs: number;
  longestSilenceMs: number;
}

const RUN_MS = 1000;

export class BodyMeter {
  private readonly runs: ProgressRun[] = [];
  private lastBytes: number;
  private lastProgressAtMs: number;

  constructor(readonly startedAtMs: number, private readonly startBytes: number, private readonly keepMs: number) {
    this.lastBytes = startBytes;
    this.lastProgressAtMs = startedAtMs;
  }

  /** Body bytes delivered since the start. */
  get bytes(): number {
    return this.lastBytes - this.startBytes;
  }

  /** Feed the current byte counter. Returns true when it moved since the last observation. */
  observe(bytes: number, nowMs: number): boolean {
    if (bytes <= this.lastBytes) return false;
    this.lastBytes = bytes;
    this.lastProgressAtMs = nowMs;
    const last = this.runs.at(-1);
    if (last && nowMs - last.firstAtMs < RUN_MS) {
      last.lastAtMs = nowMs;
      last.bytes = bytes;
    } else {
      this.runs.push({ firstAtMs: nowMs, lastAtMs: nowMs, bytes });
    }
    // Keep one run before the window start: it gives the byte count at the window's edge.
    while (this.runs.length > 2 && this.runs[1]!.lastAtMs < nowMs - this.keepMs) this.runs.shift();
    return true;
  }

  /** Time since the last observed byte (a lower bound of the true silence). */
  idleMs(nowMs: number): number {
    return nowMs - this.lastProgressAtMs;
  }

  judgeFloor(nowMs: number, floor: RateFloor): FloorJudgement {
    const age = nowMs - this.startedAtMs;
    const windowMs = Math.min(floor.windowMs, age);
    const windowStart = nowMs - windowMs;
    let bytesAtStart = this.startBytes;
    let silence = 0;
    let prevAt = windowStart; // end of the previous progress, clipped to the window
    for (const run of this.runs) {
      if (run.lastAtMs <= windowStart) {
        bytesAtStart = run.bytes;
        continue;
      }
      silence = Math.max(silence, Math.max(run.firstAtMs, windowStart) - prevAt);
      prevAt = run.lastAtMs;
    }
    silence = Math.max(silence, nowMs - prevAt);
    const windowBytes = this.lastBytes - bytesAtStart;
    const judged = floor.bytesPerSec > 0 && windowMs > 0 && age >= Math.min(floor.judgeAfterMs, floor.windowMs);
    const required = (floor.bytesPerSec * (windowMs - silence)) / 1000;
    return {
      tooSlow: judged && windowBytes < required,
      rateBytesPerSec: windowMs > 0 ? Math.round((windowBytes * 1000) / windowMs) : 0,
      windowBytes,
      windowMs,
      longestSilenceMs: silence,
    };
  }
}
