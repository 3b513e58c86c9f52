/**
 * Which uploads a slot may carry, decided from its path and declared size before any body byte
 * is read (PUT and tus creation alike, through Intake.authorize). Pure.
 */
import type { Config } from '../config/index.js';

export interface UploadPolicy {
  /** The largest upload accepted, in bytes. */
  maxBytes: number;
  /** Lower-case name endings with their dot (".jpg", ".tar.gz"); empty: any name. */
  allowedExtensions: readonly string[];
  /** Lower-case name endings that are refused even when allowed. */
  blockedExtensions: readonly string[];
}

export type UploadVerdict =
  | { ok: true }
  | { ok: false; code: 'ERR_EXTENSION_NOT_ALLOWED' | 'ERR_TOO_LARGE'; message: string };

export function uploadPolicyFromConfig(config: Pick<Config, 'server' | 'uploads'>): UploadPolicy {
  return {
    maxBytes: config.server.maxUploadBytes,
    allowedExtensions: config.uploads.allowedExtensions,
    blockedExtensions: config.uploads.blockedExtensions,
  };
}

/**
 * The name compared is the path's last segment, lower-cased, without trailing dots and spaces
 * (Windows drops them when saving, so "x.exe." is an .exe there).
 */
export function checkUpload(policy: UploadPolicy, slotPath: string, size: number | undefined): UploadVerdict {
  const name = slotPath.slice(slotPath.lastIndexOf('/') + 1).toLowerCase().replace(/[. ]+$/, '');
  const blocked = policy.blockedExtensions.find((ext) => name.endsWith(ext));
  if (blocked !== undefined) {
    return { ok: false, code: 'ERR_EXTENSION_NOT_ALLOWED', message: `Files ending in "${blocked}" are not accepted by this server` };
  }
  if (policy.allowedExtensions.length > 0 && !policy.allowedExtensions.some((ext) => name.endsWith(ext))) {
    const dot = name.lastIndexOf('.');
    const shown = dot > 0 ? `Files ending in "${name.slice(dot)}" are` : 'Files without an extension are';
    return { ok: false, code: 'ERR_EXTENSION_NOT_ALLOWED', message: `${shown} not accepted by this server` };
  }
  if (size !== undefined && size > policy.maxBytes) {
    return { ok: false, code: 'ERR_TOO_LARGE', message: `The upload (${size} bytes) exceeds the maximum of ${policy.maxBytes} bytes` };
  }
  return { ok: true };
}
