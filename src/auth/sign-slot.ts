/**
 * Mints slot URLs the way an XMPP server or app backend would: for scripts, tests and
 * backends that embed this package (`import { signSlotUrl } from 'hmac-file-server'`).
 */
import type { Scheme } from '../config/index.js';
import { sign } from './hmac-schemes.js';
import { decodeSlotPath, encodeSlotPath } from './slot-path.js';

export interface SignSlotOptions {
  secret: string;
  /** Decoded slot path, e.g. "3f2c…/my photo.jpg" (no prefix, no leading "/"). */
  path: string;
  /** Base URL of the upload prefix, e.g. "https://files.example.org/upload/". */
  baseUrl: string;
  scheme?: Scheme;
  /** Required for v, v2 and token. */
  size?: number;
  /** v2 and token bind it; defaults to application/octet-stream like the signers. */
  contentType?: string;
  /** v3: unix seconds at which the URL stops working. */
  expires?: number;
}

export interface SignedSlot {
  /** The PUT/GET URL with its signature. */
  url: string;
  /** The URL without the signature: where the file is downloaded once published. */
  getUrl: string;
  /** Signature parameters alone, e.g. to append to a tus creation URL. */
  query: URLSearchParams;
}

export function signSlotUrl(options: SignSlotOptions): SignedSlot {
  const scheme = options.scheme ?? 'v';
  decodeSlotPath(encodeSlotPath(options.path)); // refuses paths the server would refuse
  const query = new URLSearchParams();
  if (scheme === 'v3') {
    if (options.expires === undefined) throw new TypeError('scheme v3 needs expires (unix seconds)');
    query.set('v3', sign('v3', options.secret, { path: options.path, method: 'PUT', expires: options.expires }));
    query.set('expires', String(options.expires));
  } else {
    if (options.size === undefined || !Number.isSafeInteger(options.size) || options.size < 0) {
      throw new TypeError(`scheme ${scheme} needs size (a whole number of bytes)`);
    }
    const input = { path: options.path, size: options.size, ...(options.contentType ? { contentType: options.contentType } : {}) };
    query.set(scheme, sign(scheme, options.secret, input));
  }
  const base = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
  const getUrl = new URL(encodeSlotPath(options.path), base).toString();
  return { url: `${getUrl}?${query.toString()}`, getUrl, query };
}
