/**
 * Which finished uploads go to the scanner. Pure.
 *   extensions  'all', or names ending in one of these (".exe", ".tar.gz"; case-insensitive)
 *   maxBytes    larger files are never sent: `oversize` says what happens to them instead
 */
export type OversizeRule = 'publish' | 'quarantine';
export type UnavailableRule = 'hold' | 'publish';

export interface ScanPolicy {
  readonly extensions: 'all' | readonly string[];
  readonly maxBytes: number;
  readonly oversize: OversizeRule;
  readonly unavailable: UnavailableRule;
}

export type ScanPlan = { readonly kind: 'scan' } | { readonly kind: 'skip'; readonly reason: 'extension' } | { readonly kind: 'oversize' };

/** `slotPath`'s last segment is the file name the extension list is matched against. */
export function planScan(policy: ScanPolicy, slotPath: string, size: number): ScanPlan {
  if (policy.extensions !== 'all') {
    const name = slotPath.slice(slotPath.lastIndexOf('/') + 1).toLowerCase();
    if (!policy.extensions.some((ext) => name.endsWith(ext.toLowerCase()))) return { kind: 'skip', reason: 'extension' };
  }
  if (size > policy.maxBytes) return { kind: 'oversize' };
  return { kind: 'scan' };
}
