/**
 * Whether the `104 Upload Resumption Supported` may go to a request ([rufh] interim_responses).
 * A reverse proxy that does not pass 1xx responses breaks on it: nginx takes the 104 for the
 * final answer and hangs the request until its read timeout (docs/deployment.md). So by default
 * the 104 goes only to clients that reach us directly, and through proxies declared to pass 1xx.
 * Never over HTTP/1.0 (RFC 9110 15.2: a server MUST NOT send a 1xx response to an HTTP/1.0
 * client; nginx talks HTTP/1.0 to its upstreams unless told otherwise).
 */
import type { IncomingMessage } from 'node:http';
import { BlockList } from 'node:net';
import type { AddressRange, InterimPolicy } from '../config/index.js';

export interface InterimRules {
  readonly policy: InterimPolicy;
  /** Peers that are reverse proxies. */
  readonly proxies: readonly AddressRange[];
  /** Reverse proxies that pass 1xx on to their clients. */
  readonly passing1xx: readonly AddressRange[];
  /** [server] trust_proxy: every request comes through a proxy. */
  readonly trustProxy: boolean;
}

/** What decides it about one request. */
export interface InterimRequest {
  readonly httpVersion: string;
  /** The TCP peer's address (undefined: unknown, e.g. a closed socket). */
  readonly peer: string | undefined;
  /** The request carries a header a proxy adds (Forwarded, X-Forwarded-*, X-Real-IP, Via). */
  readonly forwarded: boolean;
}

export type InterimVerdict = { readonly send: true; readonly via: 'direct' | 'proxy' } | { readonly send: false; readonly reason: 'disabled' | 'http/1.0' | 'proxy' };

/** Headers by which a request shows it came through a proxy. */
export const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'via'] as const;

export class InterimDecider {
  readonly #proxies: BlockList;
  readonly #passing: BlockList;

  constructor(private readonly rules: InterimRules) {
    this.#proxies = blockListOf(rules.proxies);
    this.#passing = blockListOf(rules.passing1xx);
  }

  decide(req: InterimRequest): InterimVerdict {
    if (this.rules.policy === 'never') return { send: false, reason: 'disabled' };
    if (!/^(1\.[1-9]|[2-9])/.test(req.httpVersion)) return { send: false, reason: 'http/1.0' };
    const peer = req.peer === undefined ? undefined : plainAddress(req.peer);
    const fromProxy = this.rules.trustProxy || req.forwarded || (peer !== undefined && matches(this.#proxies, peer));
    if (!fromProxy) return { send: true, via: 'direct' };
    if (this.rules.policy === 'always' || (peer !== undefined && matches(this.#passing, peer))) return { send: true, via: 'proxy' };
    return { send: false, reason: 'proxy' };
  }
}

function blockListOf(ranges: readonly AddressRange[]): BlockList {
  const list = new BlockList();
  for (const r of ranges) list.addSubnet(r.address, r.prefix, r.family);
  return list;
}

/** An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d; match it as the IPv4 address it is. */
function plainAddress(address: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;
}

function matches(list: BlockList, address: string): boolean {
  return list.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
}

/** The facts of a Node request the decision needs. */
export function interimRequestOf(req: IncomingMessage): InterimRequest {
  return { httpVersion: req.httpVersion, peer: req.socket?.remoteAddress, forwarded: FORWARDING_HEADERS.some((h) => req.headers[h] !== undefined) };
}
