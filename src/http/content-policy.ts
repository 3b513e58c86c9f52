/**
 * Which uploaded types a browser may render in place (hmac-protocols.md): images, video, audio
 * and plain text keep their type; everything else is served as a download. Pure.
 */
const INLINE = [/^image\//, /^video\//, /^audio\//, /^text\/plain$/];

export interface ServedType {
  contentType: string;
  /** Content-Disposition header, when the file must not be rendered in place. */
  disposition: string | undefined;
}

export function servedType(declared: string, fileName: string): ServedType {
  const mediaType = declared.split(';')[0]!.trim().toLowerCase();
  if (INLINE.some((re) => re.test(mediaType)) && /^[\x20-\x7e]+$/.test(declared)) {
    return { contentType: declared, disposition: undefined };
  }
  return { contentType: 'application/octet-stream', disposition: attachment(fileName) };
}

/** RFC 6266 attachment with an ASCII fallback name and the exact UTF-8 name (RFC 8187). */
export function attachment(fileName: string): string {
  const fallback = fileName.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const exact = encodeURIComponent(fileName).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${exact}`;
}
