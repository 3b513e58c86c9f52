/**
 * `[rufh]`: IETF Resumable Uploads (docs/rufh.md). Only where the `104 Upload Resumption
 * Supported` interim response may be sent is configurable: a reverse proxy that does not pass
 * 1xx responses hangs or desynchronises the request (nginx), so by default it goes only to
 * clients that reach this server directly (src/http/rufh-interim.ts decides per request).
 */
import { isIP } from 'node:net';
import { z } from 'zod';

export const INTERIM_POLICIES = ['direct', 'always', 'never'] as const;
export type InterimPolicy = (typeof INTERIM_POLICIES)[number];

/** An address or a network as `[rufh]` lists them: "10.0.0.7", "10.0.0.0/8", "::1", "fd00::/8". */
export interface AddressRange {
  readonly address: string;
  readonly family: 'ipv4' | 'ipv6';
  readonly prefix: number;
}

/** Parses "address" or "address/prefix"; throws with the reason for anything else. */
export function parseAddressRange(text: string): AddressRange {
  const [address = '', prefixText, extra] = text.trim().split('/');
  const version = isIP(address);
  if (version === 0 || extra !== undefined) throw new Error(`"${text}" is not an IP address or network (e.g. "10.0.0.7", "10.0.0.0/8", "::1")`);
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) throw new Error(`"${text}": the prefix length must be 0 to ${max}`);
  return { address, family: version === 4 ? 'ipv4' : 'ipv6', prefix };
}

const addressList = (def: string[]) =>
  z
    .array(z.string())
    .default(def)
    .transform((list, ctx) => {
      const out: AddressRange[] = [];
      for (const [i, text] of list.entries()) {
        try {
          out.push(parseAddressRange(text));
        } catch (e) {
          ctx.addIssue({ code: 'custom', message: (e as Error).message, path: [i] });
          return z.NEVER;
        }
      }
      return out;
    });

export const rufhSection = z
  .object({
    /**
     * "direct": to clients that reach this server directly, and through the proxies listed in
     * proxies_passing_1xx; "always": to every client that asks; "never": to none.
     */
    interim_responses: z.enum(INTERIM_POLICIES).default('direct'),
    /** Peers that are reverse proxies. Loopback: a proxy on the same host is the usual deployment. */
    proxy_addresses: addressList(['127.0.0.0/8', '::1']),
    /** Reverse proxies known to pass 1xx responses on to their clients (Caddy, HAProxy; not nginx). */
    proxies_passing_1xx: addressList([]),
  })
  .prefault({})
  .transform((s) => ({ interimResponses: s.interim_responses, proxyAddresses: s.proxy_addresses, proxiesPassing1xx: s.proxies_passing_1xx }));
