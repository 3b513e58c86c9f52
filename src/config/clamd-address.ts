/** Where clamd listens (scan.clamd): a unix socket path or a TCP host and port. Pure. */
export type ClamdAddress = { readonly path: string } | { readonly host: string; readonly port: number };

/**
 * Reads "/run/clamav/clamd.ctl", "unix:/run/clamav/clamd.ctl", "unix:///run/clamav/clamd.ctl",
 * "127.0.0.1:3310", "tcp://clamav:3310" or "[::1]:3310" (the forms the Go server's go-clamd
 * accepts). Throws Error with a reason for anything else.
 */
export function parseClamdAddress(text: string): ClamdAddress {
  const value = text.trim();
  const unix = /^unix:(?:\/\/)?(\/.*)$/.exec(value);
  if (unix) return { path: unix[1]! };
  if (value.startsWith('/')) return { path: value };
  const hostPort = value.replace(/^tcp:\/\//, '');
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(hostPort);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new Error(`"${text}" is neither a unix socket path (absolute, or unix:/path) nor host:port (or tcp://host:port)`);
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function describeClamdAddress(address: ClamdAddress): string {
  return 'path' in address ? `unix:${address.path}` : `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}
