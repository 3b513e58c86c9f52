/**
 * IETF Resumable Uploads for HTTP (draft-ietf-httpbis-resumable-upload): what differs between
 * the interop versions clients send in `Upload-Draft-Interop-Version`, as one table. Handlers
 * ask this module ("is the upload complete?", "which header says so?") and never compare
 * version numbers themselves (style.md: protocol versions differ as data).
 *
 * Values are RFC 9651 structured fields; only the two item types the draft uses on requests
 * (boolean `?0`/`?1`, non-negative integer) are parsed, strictly. Pure: no I/O.
 */

/** What one interop version changes on the wire. */
export interface InteropVersion {
  readonly interop: number;
  /** Draft revision the version belongs to (docs only). */
  readonly draft: string;
  /** Who sends it, for docs and logs. */
  readonly clients: string;
  /** The header carrying completeness, and whether it is the inverse (`Upload-Incomplete: ?1` = not complete). */
  readonly completeHeader: 'Upload-Complete' | 'Upload-Incomplete';
  readonly completeInverted: boolean;
  /** Content type an append (PATCH) must carry; undefined: any. */
  readonly appendContentType: string | undefined;
  /** `Upload-Length` is part of this version (declared total size). */
  readonly uploadLength: boolean;
  /** `Upload-Limit` is part of this version (104, HEAD, OPTIONS, 413). */
  readonly uploadLimit: boolean;
}

export const PARTIAL_UPLOAD_TYPE = 'application/partial-upload';

export const INTEROP_HEADER = 'Upload-Draft-Interop-Version';

/** The supported versions. A version not listed here is not RUFH to us: the request is a plain one. */
export const INTEROP_VERSIONS: ReadonlyMap<number, InteropVersion> = new Map(
  (
    [
      { interop: 3, draft: '-01', clients: 'iOS 17 URLSession', completeHeader: 'Upload-Incomplete', completeInverted: true, appendContentType: undefined, uploadLength: false, uploadLimit: false },
      { interop: 5, draft: '-03', clients: "tus-js-client 4 protocol 'ietf-draft-03'", completeHeader: 'Upload-Complete', completeInverted: false, appendContentType: undefined, uploadLength: true, uploadLimit: false },
      { interop: 6, draft: '-05', clients: "tus-js-client 4 protocol 'ietf-draft-05'", completeHeader: 'Upload-Complete', completeInverted: false, appendContentType: PARTIAL_UPLOAD_TYPE, uploadLength: true, uploadLimit: true },
      { interop: 8, draft: '-09', clients: 'iOS 18+/26 URLSession', completeHeader: 'Upload-Complete', completeInverted: false, appendContentType: PARTIAL_UPLOAD_TYPE, uploadLength: true, uploadLimit: true },
    ] satisfies InteropVersion[]
  ).map((v) => [v.interop, v]),
);

type Headers = (name: string) => string | undefined;

/**
 * The interop version a request speaks, or undefined when it carries none, one we do not
 * support, or a malformed one: such a request is handled exactly as a plain upload.
 */
export function interopOf(header: Headers): InteropVersion | undefined {
  const value = parseSfInteger(header(INTEROP_HEADER));
  return value === undefined || value === null ? undefined : INTEROP_VERSIONS.get(value);
}

/** RFC 9651 sf-integer (non-negative, at most 15 digits). undefined: absent; null: malformed. */
export function parseSfInteger(value: string | undefined): number | undefined | null {
  if (value === undefined || value === '') return undefined;
  const v = value.split(';')[0]!.trim(); // RFC 9651: a boolean may carry parameters, which say nothing here
  return /^\d{1,15}$/.test(v) ? Number(v) : null;
}

/** RFC 9651 sf-boolean. undefined: absent; null: malformed. */
export function parseSfBoolean(value: string | undefined): boolean | undefined | null {
  if (value === undefined || value === '') return undefined;
  const v = value.split(';')[0]!.trim(); // RFC 9651: a boolean may carry parameters, which say nothing here
  if (v === '?1') return true;
  if (v === '?0') return false;
  return null;
}

/** Whether this request is the last of the upload; undefined: the header is absent; null: malformed. */
export function requestCompletes(version: InteropVersion, header: Headers): boolean | undefined | null {
  const flag = parseSfBoolean(header(version.completeHeader));
  if (flag === undefined || flag === null) return flag;
  return version.completeInverted ? !flag : flag;
}

/** The completeness header of an answer, in the version's words. */
export function completeField(version: InteropVersion, complete: boolean): [string, string] {
  const flag = version.completeInverted ? !complete : complete;
  return [version.completeHeader, flag ? '?1' : '?0'];
}

/** Limits of an upload resource, as `Upload-Limit` announces them. */
export interface UploadLimits {
  readonly maxSizeBytes: number;
  /** Seconds the resource stays alive; undefined: no expiry. */
  readonly maxAgeS: number | undefined;
}

/** `Upload-Limit` (an sf-dictionary) for versions that have it; undefined for the others. */
export function uploadLimitField(version: InteropVersion | undefined, limits: UploadLimits): string | undefined {
  if (version && !version.uploadLimit) return undefined;
  const parts = [`max-size=${limits.maxSizeBytes}`];
  if (limits.maxAgeS !== undefined) parts.push(`max-age=${Math.max(0, Math.floor(limits.maxAgeS))}`);
  return parts.join(', ');
}

/** An append's content type is acceptable for the version (the media type only; parameters are ignored). */
export function appendTypeOk(version: InteropVersion, contentType: string | undefined): boolean {
  if (version.appendContentType === undefined) return true;
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase() === version.appendContentType;
}

/** The interim response that turns a request into a resumable upload (written on the socket, see rufh-interim.ts). */
export function interimHead(version: InteropVersion, location: string, limits: UploadLimits): string {
  const lines = ['HTTP/1.1 104 Upload Resumption Supported', `${INTEROP_HEADER}: ${version.interop}`, `Location: ${location}`];
  const limit = uploadLimitField(version, limits);
  if (limit !== undefined) lines.push(`Upload-Limit: ${limit}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** The draft's problem types (application/problem+json). */
export const PROBLEM_BASE = 'https://iana.org/assignments/http-problem-types#';
export type ProblemKind = 'mismatching-upload-offset' | 'completed-upload' | 'inconsistent-upload-length';
export const PROBLEM_STATUS: Readonly<Record<ProblemKind, number>> = {
  'mismatching-upload-offset': 409,
  'completed-upload': 400,
  'inconsistent-upload-length': 400,
};
export const PROBLEM_TITLE: Readonly<Record<ProblemKind, string>> = {
  'mismatching-upload-offset': 'The upload offset of the request does not match the offset of the upload resource',
  'completed-upload': 'The upload resource is already complete',
  'inconsistent-upload-length': 'The declared upload length is inconsistent with the upload',
};
