/**
 * `[scan]`: malware scanning of finished uploads by clamd, a step of the finalization queue
 * (docs/scanning.md). Off by default. The Go server's `[clamav]` keys are read into it by
 * legacy.ts (mapLegacyClamav).
 */
import { z } from 'zod';
import { parseClamdAddress, type ClamdAddress } from './clamd-address.js';
import type { ConfigWarning } from './types.js';
import { EXTENSION_ENTRY, EXTENSION_ENTRY_MESSAGE, normalizeExtension, parseDuration, parseSize } from './units.js';

const converted = <T>(def: unknown, parse: (v: unknown) => T) =>
  z.unknown().default(def).transform((v, ctx) => {
    try {
      return parse(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

const extensions = z
  .union([
    z.literal('all'),
    z
      .array(z.string().regex(EXTENSION_ENTRY, EXTENSION_ENTRY_MESSAGE))
      .min(1, 'list at least one extension, or write "all"'),
  ])
  .default('all');

export const scanSection = z
  .object({
    enabled: z.boolean().default(false),
    clamd: converted('/var/run/clamav/clamd.ctl', (v) => {
      if (typeof v !== 'string') throw new Error('must be a string: a unix socket path or host:port');
      return parseClamdAddress(v);
    }),
    extensions,
    max_size: converted('200MB', parseSize).refine((n) => n > 0, 'must be above 0 (to scan nothing, set enabled = false)'),
    oversize: z.enum(['publish', 'quarantine']).default('publish'),
    concurrency: z.number().int().min(1).default(2),
    timeout: converted('120s', parseDuration).refine((ms) => ms > 0, 'must be above 0'),
    unavailable: z.enum(['hold', 'publish']).default('hold'),
  })
  .prefault({})
  .transform((s) => ({
    enabled: s.enabled,
    clamd: s.clamd as ClamdAddress,
    // Written like [uploads]' lists: "exe" and ".exe" both mean names ending in ".exe".
    extensions: s.extensions === 'all' ? ('all' as const) : [...new Set(s.extensions.map(normalizeExtension))],
    maxBytes: s.max_size,
    oversize: s.oversize,
    concurrency: s.concurrency,
    timeoutMs: s.timeout,
    unavailable: s.unavailable,
  }));

export type ScanConfig = z.output<typeof scanSection>;

/** Contradictions that still start (called by load.ts crossCheck). */
export function scanConfigWarnings(scan: ScanConfig, workers: { count: number; queueTimeoutMs: number }): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  if (!scan.enabled) return warnings;
  if (scan.concurrency > workers.count) {
    warnings.push({ code: 'CONFIG_ADJUSTED', path: 'scan.concurrency', message: 'above workers.numworkers: scans run inside finalization workers, so at most numworkers run at once' });
  }
  if (scan.timeoutMs >= workers.queueTimeoutMs) {
    warnings.push({ code: 'CONFIG_ADJUSTED', path: 'scan.timeout', message: 'not below workers.queue_timeout: a slow scan ends the whole finalization job first' });
  }
  return warnings;
}
