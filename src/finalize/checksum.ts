/**
 * The checksum a client may declare for its upload, compared with the sha256 computed during
 * finalization. Only SHA-256 is accepted. Where clients put it:
 *   tus:  Upload-Metadata key `sha256` (64 hex digits), or key `checksum` = "sha256 <base64>"
 *         (the tus checksum extension's spelling of algorithm and digest).
 *   PUT:  `Repr-Digest` or `Content-Digest: sha-256=:<base64>:` (RFC 9530; for a plain PUT
 *         body both digest the same bytes), legacy `Digest: SHA-256=<base64>` (RFC 3230), or
 *         `X-Content-SHA256: <hex>`.
 * Results: a lowercase hex digest, `undefined` when none was declared, `null` when one was
 * declared but cannot be read (the upload then fails its checksum step).
 */
export type DeclaredChecksum = string | null | undefined;

const HEX = /^[0-9a-fA-F]{64}$/;

export function expectedSha256FromMetadata(metadata: Readonly<Record<string, string | null | undefined>>): DeclaredChecksum {
  const hex = metadata.sha256;
  if (hex !== undefined && hex !== null) return HEX.test(hex.trim()) ? hex.trim().toLowerCase() : null;
  const checksum = metadata.checksum;
  if (checksum === undefined || checksum === null) return undefined;
  const m = /^\s*sha-?256\s+(\S+)\s*$/i.exec(checksum);
  return m ? fromBase64(m[1]!) : null;
}

/** `header(name)` returns the header's value or undefined (names are matched case-insensitively by the caller). */
export function expectedSha256FromHeaders(header: (name: string) => string | undefined): DeclaredChecksum {
  for (const name of ['repr-digest', 'content-digest']) {
    const value = header(name);
    if (value === undefined || value === '') continue;
    // Structured-field dictionary: sha-256=:<base64>:, possibly among other algorithms.
    const m = /(?:^|,)\s*sha-256\s*=\s*:([^:]*):/i.exec(value);
    return m ? fromBase64(m[1]!) : null;
  }
  const digest = header('digest');
  if (digest !== undefined && digest !== '') {
    const m = /(?:^|,)\s*sha-256\s*=\s*([A-Za-z0-9+/=]+)/i.exec(digest);
    return m ? fromBase64(m[1]!) : null;
  }
  const hex = header('x-content-sha256');
  if (hex !== undefined && hex !== '') return HEX.test(hex.trim()) ? hex.trim().toLowerCase() : null;
  return undefined;
}

function fromBase64(b64: string): string | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return null;
  const bytes = Buffer.from(b64, 'base64');
  return bytes.length === 32 ? bytes.toString('hex') : null;
}
