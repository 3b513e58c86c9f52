/**
 * Decides whether a request may upload to a slot. Pure: the caller extracts the slot path,
 * query, size and type from whatever transport (PUT, tus creation) and passes the time in.
 * Outcomes are values; the HTTP edge turns a refusal into its AppError.
 */
import { lookup } from 'mime-types';
import type { Config, Scheme } from '../config/index.js';
import type { ErrorCode } from '../errors.js';
import { DEFAULT_CONTENT_TYPE, SCHEME_PRECEDENCE, signatureMatches } from './hmac-schemes.js';

export interface SlotRequest {
  /** Decoded slot path (see decodeSlotPath). */
  path: string;
  /** Query parameters of the slot URL. */
  query: URLSearchParams;
  /** Size the client will send, when known (Content-Length of a PUT, Upload-Length of a tus creation). */
  size: number | undefined;
  /** Content type the client declares; absent means application/octet-stream, as signers assume. */
  contentType: string | undefined;
  nowMs: number;
}

export interface SlotPolicy {
  /** Current secret first, then previous ones still accepted during a key rotation. */
  secrets: readonly string[];
  schemes: readonly Scheme[];
  /**
   * A v3 slot is accepted until `expires` + grace + skew. The grace is policy (a leaked URL stays
   * usable that long), the skew tolerates a signer whose clock runs behind ours. Default 0.
   */
  expiryGraceMs?: number;
  clockSkewMs?: number;
}

/** The policy `[security]` describes, with the secret in use first. */
export function slotPolicyFromConfig(config: Pick<Config, 'security'>, currentSecret: string): SlotPolicy {
  return {
    secrets: [currentSecret, ...config.security.previousSecrets],
    schemes: config.security.schemes,
    expiryGraceMs: config.security.expiryGraceMs,
    clockSkewMs: config.security.clockSkewMs,
  };
}

export interface AuthorizedSlot {
  path: string;
  scheme: Scheme;
  contentType: string;
  /** The size the signature binds (v, v2, token); undefined for v3, which binds an expiry instead. */
  signedSize: number | undefined;
  /** Unix ms after which the slot is refused (v3 only). */
  expiresAtMs: number | undefined;
}

export type SlotDecision = { ok: true; slot: AuthorizedSlot } | { ok: false; code: ErrorCode; message?: string };

/** Which signature parameter of the URL counts: the highest version that is present and accepted. */
export function pickScheme(query: URLSearchParams, accepted: readonly Scheme[]): Scheme | undefined {
  return SCHEME_PRECEDENCE.find((s) => accepted.includes(s) && query.has(s));
}

export function authorizeSlot(req: SlotRequest, policy: SlotPolicy): SlotDecision {
  const scheme = pickScheme(req.query, policy.schemes);
  if (!scheme) {
    // A signature of a scheme turned off here ([security] schemes): say so, not "no signature".
    const off = SCHEME_PRECEDENCE.find((s) => req.query.has(s));
    if (off === undefined) return { ok: false, code: 'ERR_SIGNATURE_MISSING' };
    // The scheme the URL itself carries, not the accepted list: an unsigned request learns nothing of the policy.
    return { ok: false, code: 'ERR_SIGNATURE_MISSING', message: `The upload URL's ${off} signature is not accepted by this server` };
  }
  const given = req.query.get(scheme) ?? '';
  const contentType = req.contentType ?? DEFAULT_CONTENT_TYPE;

  if (scheme === 'v3') {
    const expiresText = req.query.get('expires') ?? '';
    if (!/^\d{1,15}$/.test(expiresText)) return { ok: false, code: 'ERR_SIGNATURE_INVALID' };
    const expires = Number(expiresText);
    if (!signatureMatches(given, 'v3', policy.secrets, { path: req.path, method: 'PUT', expires })) {
      return { ok: false, code: 'ERR_SIGNATURE_INVALID' };
    }
    const lateAllowedMs = (policy.expiryGraceMs ?? 0) + (policy.clockSkewMs ?? 0);
    if (req.nowMs > expires * 1000 + lateAllowedMs) return { ok: false, code: 'ERR_SIGNATURE_EXPIRED' };
    return { ok: true, slot: { path: req.path, scheme, contentType, signedSize: undefined, expiresAtMs: expires * 1000 } };
  }

  // v, v2 and token bind the size: without a declared size the signature cannot be checked.
  if (req.size === undefined) return { ok: false, code: 'ERR_LENGTH_REQUIRED' };
  if (scheme === 'v') {
    if (!signatureMatches(given, scheme, policy.secrets, { path: req.path, size: req.size })) return { ok: false, code: 'ERR_SIGNATURE_INVALID' };
    return { ok: true, slot: { path: req.path, scheme, contentType, signedSize: req.size, expiresAtMs: undefined } };
  }
  const size = req.size;
  const signed = signedTypeCandidates(req.contentType, req.path).find((type) => signatureMatches(given, scheme, policy.secrets, { path: req.path, size, contentType: type }));
  if (signed === undefined) return { ok: false, code: 'ERR_SIGNATURE_INVALID' };
  return { ok: true, slot: { path: req.path, scheme, contentType: signed, signedSize: req.size, expiresAtMs: undefined } };
}

/**
 * The content types a v2 or token signature may bind, most exact first: the PUT's Content-Type
 * as sent (the signer's type when the client repeats it, as XEP-0363 asks), then without its
 * parameters, then the type of the file's name. The Go server derived the type from the name and
 * ignored the header, so clients that send none, or another one, kept working there; they do
 * here too. The slot keeps the type that was signed.
 */
function signedTypeCandidates(declared: string | undefined, path: string): string[] {
  const sent = declared ?? DEFAULT_CONTENT_TYPE;
  const bare = sent.split(';')[0]!.trim();
  const byName = lookup(path) || DEFAULT_CONTENT_TYPE;
  return [...new Set([sent, bare, byName])];
}
