import { randomBytes } from 'node:crypto';

/** tus upload ids are capabilities: whoever knows one can append to the upload. 192 random bits. */
export function newUploadId(): string {
  return randomBytes(24).toString('base64url');
}
