/**
 * Which uploaded types a browser may render in place (hmac-protocols.md): images, video, audio
 * and plain text keep their type; everything else is served as a download. Pure.
 *
 * The declared type is whatever the uploader sent, so it is parsed strictly (one
 * `type/subtype` of tokens, well-formed parameters): a value such as `image/png, text/html` or
 * `image/jpeg;text/html` looks like an image to a prefix check, yet Chromium sniffs past the
 * garbage and renders HTML on our origin (issue 9.3). Anything that does not parse downloads.
 */
import contentDisposition from 'content-disposition';
import { format as formatContentType, parse as parseContentType } from 'content-type';

const OCTET_STREAM = 'application/octet-stream';
const INLINE_FAMILIES = new Set(['image', 'video', 'audio']);
/** Subtypes a browser may run script in even under an image/video/audio type (SVG, XML, HTML). */
const SCRIPTABLE_SUBTYPE = /svg|xml|html|script/;

/**
 * Sent with every download: nothing loads, nothing runs, no form posts, no framing. `sandbox`
 * gives any document that is rendered anyway a unique opaque origin, so it cannot reach ours.
 */
export const DOWNLOAD_CSP = "default-src 'none'; sandbox; form-action 'none'; frame-ancestors 'none'";

export interface ServedType {
  contentType: string;
  /** Content-Disposition header, when the file must not be rendered in place. */
  disposition: string | undefined;
}

export function servedType(declared: string, fileName: string): ServedType {
  const inline = inlineType(declared);
  return inline !== null ? { contentType: inline, disposition: undefined } : { contentType: OCTET_STREAM, disposition: attachment(fileName) };
}

/** The normalised type to serve in place, or null when `declared` is malformed or may not render. */
export function inlineType(declared: string): string | null {
  let parsed;
  try {
    parsed = parseContentType(declared);
  } catch {
    return null; // not exactly one type/subtype with well-formed parameters
  }
  const { type } = parsed; // lowercased by the parser
  const [family = '', subtype = ''] = type.split('/');
  if (type === 'text/plain') {
    // The charset is the one parameter that changes how text renders; the rest are dropped.
    const charset = parsed.parameters.charset;
    return formatContentType({ type, parameters: charset ? { charset: charset.toLowerCase() } : {} });
  }
  if (INLINE_FAMILIES.has(family) && !SCRIPTABLE_SUBTYPE.test(subtype)) return type;
  return null;
}

/**
 * RFC 6266 attachment with a printable-ASCII fallback name and the UTF-8 name (RFC 8187). Bidi
 * controls in the name become "_": "a\u202Egnp.html" would show as "ahtml.png" in a save dialog.
 */
export function attachment(fileName: string): string {
  const shown = fileName.replace(BIDI_CONTROLS, '_');
  return contentDisposition(shown, { type: 'attachment', fallback: shown.replace(/[^\x20-\x7e]/g, '_') });
}

const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
