import { randomBytes } from 'node:crypto';

/**
 * tus upload ids are capabilities: whoever knows one can append to the upload. 192 random bits,
 * base64url, never starting with '-' (an id is an argument of the ops commands, where a leading
 * dash would read as an option; about 1 id in 64 did before).
 */
export function newUploadId(): string {
  for (;;) {
    const id = randomBytes(24).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}
