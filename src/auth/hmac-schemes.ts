/**
 * The HMAC-SHA256 signing schemes used by real XEP-0363 signers (docs: hmac-protocols.md).
 * Pure: messages are built from their inputs only; time arrives as an argument.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Scheme } from '../config/index.js';

/** Highest version first: when a URL carries several, only the highest accepted one counts. */
export const SCHEME_PRECEDENCE: readonly Scheme[] = ['v3', 'v2', 'token', 'v'];

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

export interface SignInput {
  /** Decoded slot path, without the URL prefix and without a leading "/". */
  path: string;
  /** Bytes; bound by v, v2 and token. */
  size?: number;
  /** Bound by v2 and token, exactly as the client declares it (parameters included). */
  contentType?: string;
  /** Bound by v3: the HTTP method the URL is for (PUT for uploads). */
  method?: string;
  /** Bound by v3: unix seconds after which the URL is refused. */
  expires?: number;
}

export function signedMessage(scheme: Scheme, input: SignInput): string {
  switch (scheme) {
    case 'v':
      return `${input.path} ${requireSize(input)}`;
    case 'v2':
    case 'token':
      return `${input.path}\0${requireSize(input)}\0${input.contentType ?? DEFAULT_CONTENT_TYPE}`;
    case 'v3':
      if (input.expires === undefined) throw new TypeError('v3 needs expires');
      return `${(input.method ?? 'PUT').toUpperCase()}\n${input.expires}\n/${input.path}`;
  }
}

export function sign(scheme: Scheme, secret: string, input: SignInput): string {
  return createHmac('sha256', secret).update(signedMessage(scheme, input), 'utf8').digest('hex');
}

/** Constant-time check of a hex signature against every accepted secret (current first, then rotated-out ones). */
export function signatureMatches(given: string, scheme: Scheme, secrets: readonly string[], input: SignInput): boolean {
  if (!/^[0-9a-fA-F]{64}$/.test(given)) return false;
  const givenBytes = Buffer.from(given, 'hex');
  let matched = false;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(signedMessage(scheme, input), 'utf8').digest();
    // No early exit: every secret costs the same whatever matched.
    matched = timingSafeEqual(expected, givenBytes) || matched;
  }
  return matched;
}

function requireSize(input: SignInput): number {
  if (input.size === undefined) throw new TypeError('this scheme needs size');
  return input.size;
}
