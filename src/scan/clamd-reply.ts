/**
 * clamd's answer to zINSTREAM, documented in clamd(8): "stream: OK", "stream: <Name> FOUND",
 * "<message> ERROR" (e.g. "INSTREAM size limit exceeded. ERROR" past StreamMaxLength), and
 * "COMMAND READ TIMED OUT" when the client was slower than clamd's ReadTimeout. With the "z"
 * command prefix the answer ends with a NUL byte. Pure.
 */
import type { ScanVerdict } from './types.js';

export function parseClamdReply(raw: string): ScanVerdict {
  const reply = raw.replace(/[\0\r\n]+$/, '').trim();
  if (reply === '') return { kind: 'failed', failure: 'unavailable', message: 'clamd closed the connection without a verdict' };
  // A session id ("1: stream: OK") prefixes the answer only in IDSESSION mode; tolerate it.
  const body = reply.replace(/^\d+: /, '');
  if (/^stream: OK$/.test(body)) return { kind: 'clean' };
  const found = /^stream: (.+) FOUND$/.exec(body);
  if (found) return { kind: 'infected', signature: found[1]!.trim() };
  if (/size limit exceeded/i.test(body)) return { kind: 'too_large' };
  if (/^COMMAND READ TIMED OUT$/.test(body)) return { kind: 'failed', failure: 'timeout', message: 'clamd timed out reading the stream (ReadTimeout)' };
  const error = /^(.*?)\s*ERROR$/.exec(body);
  return { kind: 'failed', failure: 'error', message: `clamd: ${(error ? error[1]! : body).slice(0, 200)}` };
}
