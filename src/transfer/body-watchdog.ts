/**
 * Watches an upload body for stalls (no byte for `stallMs`) and for its overall deadline.
 * Progress is read off the socket's byte counter rather than the body stream, because the tus
 * body is consumed inside @tus/server where we cannot see chunks; during a body upload the
 * socket carries nothing else. A slow but moving transfer is never a stall.
 */
export type BodyVerdict = 'ok' | 'stall' | 'deadline';

export interface WatchState {
  startedAtMs: number;
  lastBytes: number;
  lastProgressAtMs: number;
}

/** Pure: the next state and whether the request must end now. */
export function judgeBody(state: WatchState, bytesRead: number, nowMs: number, limits: { stallMs: number; deadlineMs: number }): { state: WatchState; verdict: BodyVerdict } {
  const next = bytesRead > state.lastBytes ? { ...state, lastBytes: bytesRead, lastProgressAtMs: nowMs } : state;
  if (nowMs - next.startedAtMs >= limits.deadlineMs) return { state: next, verdict: 'deadline' };
  if (nowMs - next.lastProgressAtMs >= limits.stallMs) return { state: next, verdict: 'stall' };
  return { state: next, verdict: 'ok' };
}

export interface BodyWatchOptions {
  stallMs: number;
  deadlineMs: number;
  onEnd: (verdict: Exclude<BodyVerdict, 'ok'>) => void;
  now?: () => number;
}

/** Starts watching; returns the function that stops it (call it in `finally`). */
export function watchBody(source: { readonly bytesRead: number }, options: BodyWatchOptions): () => void {
  const now = options.now ?? Date.now;
  const start = now();
  let state: WatchState = { startedAtMs: start, lastBytes: source.bytesRead, lastProgressAtMs: start };
  // Check often enough to end a stall within ~10% of its timeout, at most every second.
  const everyMs = Math.max(25, Math.min(1000, Math.floor(Math.min(options.stallMs, options.deadlineMs) / 10)));
  const timer = setInterval(() => {
    const judged = judgeBody(state, source.bytesRead, now(), options);
    state = judged.state;
    if (judged.verdict !== 'ok') {
      clearInterval(timer);
      options.onEnd(judged.verdict);
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
