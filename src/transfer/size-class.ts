/**
 * Size classes shared by transfer deadlines and queue priority.
 *
 * Sizes are bytes and the limits are *decimal* megabytes (1 MB = 1,000,000 bytes), matching the
 * config's "10MB" spelling; "MiB"/"GiB" in config are binary and converted before they get here.
 */
export type SizeClass = 'small' | 'medium' | 'large' | 'huge';

export const MB = 1_000_000;

/** Exclusive upper bounds: small < 10 MB <= medium < 100 MB <= large < 1 GB (1000 MB) <= huge. */
export const SIZE_CLASS_LIMITS = {
  small: 10 * MB,
  medium: 100 * MB,
  large: 1000 * MB,
} as const;

export function sizeClassOf(sizeBytes: number): SizeClass {
  if (!Number.isFinite(sizeBytes) || sizeBytes < 0) {
    throw new RangeError(`size must be a finite number of bytes >= 0, got ${sizeBytes}`);
  }
  if (sizeBytes < SIZE_CLASS_LIMITS.small) return 'small';
  if (sizeBytes < SIZE_CLASS_LIMITS.medium) return 'medium';
  if (sizeBytes < SIZE_CLASS_LIMITS.large) return 'large';
  return 'huge';
}
