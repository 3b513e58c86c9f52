/**
 * HTTP Range for downloads (RFC 9110 §14). Pure. One range per request: a multi-range request is
 * answered with the whole file (allowed by the RFC), which every real downloader handles.
 */
export type RangeDecision =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (!header) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' }; // not one byte range: ignore it
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return { kind: 'full' }; // invalid range: ignore it
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

/** If-Range: the range applies only while the representation is unchanged. */
export function ifRangeAllows(ifRange: string | undefined, etag: string, mtimeMs: number): boolean {
  if (!ifRange) return true;
  if (ifRange.startsWith('"') || ifRange.startsWith('W/')) return ifRange === etag;
  // RFC 9110 13.1.5: a date validates only as an exact match of Last-Modified (second precision).
  const date = Date.parse(ifRange);
  return !Number.isNaN(date) && Math.floor(mtimeMs / 1000) * 1000 === date;
}

/**
 * If-Match and If-Unmodified-Since (RFC 9110 13.2.2 steps 1-2): true when the request's
 * precondition fails (answer 412). If-Match compares strongly and wins over If-Unmodified-Since.
 */
export function preconditionFails(ifMatch: string | undefined, ifUnmodifiedSince: string | undefined, etag: string, mtimeMs: number): boolean {
  if (ifMatch) {
    if (ifMatch.trim() === '*') return false;
    return !ifMatch.split(',').some((t) => t.trim() === etag);
  }
  if (ifUnmodifiedSince) {
    const date = Date.parse(ifUnmodifiedSince);
    return !Number.isNaN(date) && Math.floor(mtimeMs / 1000) * 1000 > date;
  }
  return false;
}

/** If-None-Match: true when the client's copy is current (answer 304). */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
