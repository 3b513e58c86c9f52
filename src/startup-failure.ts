/**
 * Turns an error that stopped `serve` from starting into one line an operator can act on: what
 * failed, and which setting or permission to change. Pure: the caller passes the config and the
 * user the process runs as.
 */
import { resolve } from 'node:path';
import type { Config } from './config/index.js';
import { unreachableReason } from './storage/index.js';

export interface StartupContext {
  config: Pick<Config, 'server' | 'storage' | 'metrics' | 'admin'>;
  user: { name: string; uid: number };
}

type SystemError = Error & { code?: string; syscall?: string; path?: string; address?: string; port?: number };

/** The line to print, or null when the error is not one of the known start-up failures. */
export function describeStartupFailure(err: unknown, ctx: StartupContext): string | null {
  if (!(err instanceof Error)) return null;
  const e = err as SystemError;
  if (e.syscall === 'listen') return listenFailure(e, ctx.config);
  if (e.syscall === 'getaddrinfo') {
    const host = (e as { hostname?: string }).hostname ?? '';
    return `cannot listen on ${host}: the host name does not resolve to an address of this machine; check ${hostSetting(host, ctx.config)}`;
  }
  if (e.code?.startsWith('ERR_OSSL') || /PEM routines|bad decrypt|key values mismatch/.test(e.message)) {
    return 'cannot use [server] tls_certificate / tls_key: not a PEM certificate chain and its matching private key';
  }
  const dataDir = resolve(ctx.config.storage.dataDir);
  if (e.code === 'ENOENT' && typeof e.path === 'string' && (resolve(e.path) === dataDir || resolve(e.path).startsWith(`${dataDir}/`))) {
    return `cannot use the data dir ${dataDir}: a part of its path does not exist (a dangling symbolic link or an unmounted volume?); fix it, or set HFS_DATA_DIR or [storage] data_dir`;
  }
  const fsCodes = ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'ENOSPC', 'EEXIST'];
  if (e.code && fsCodes.includes(e.code) && typeof e.path === 'string') {
    const where = resolve(e.path) === dataDir ? '' : ` (${e.path})`;
    return `cannot use the data dir ${dataDir}${where}: ${FS_REASONS[e.code] ?? e.code} for user ${ctx.user.name} (uid ${ctx.user.uid}); fix its owner or permissions, or set HFS_DATA_DIR or [storage] data_dir`;
  }
  if (e.name === 'CredentialsProviderError') {
    return 'cannot use S3: no credentials found; set [storage.s3] access_key_id and secret_access_key, or give the AWS credential chain one (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, an instance role)';
  }
  if (ctx.config.storage.backend === 's3' && '$metadata' in e) return s3Failure(e, ctx.config.storage.s3.requestTimeoutMs);
  if (e.code === 'SQLITE_CANTOPEN' || e.code === 'SQLITE_READONLY') {
    return `cannot open the queue database in the data dir ${dataDir}: not writable for user ${ctx.user.name} (uid ${ctx.user.uid}); fix its owner or permissions, or set HFS_DATA_DIR or [storage] data_dir`;
  }
  return null;
}

/** An S3 request that failed (the SDK's errors carry `$metadata`): /ready's reason, and the key to fix. */
function s3Failure(e: Error, timeoutMs: number): string {
  const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const keys = status === 403 ? 'access_key_id and secret_access_key' : status === 404 ? 'bucket' : status === undefined ? 'endpoint' : 'endpoint, region and bucket';
  return `cannot use S3: ${unreachableReason(e, timeoutMs)}; check [storage.s3] ${keys}`;
}

const FS_REASONS: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file, not a directory',
  ENOSPC: 'no space left on the device',
  EEXIST: 'a file is in the way',
};

function listenFailure(e: SystemError, config: StartupContext['config']): string {
  const address = `${e.address ?? ''}:${e.port ?? ''}`;
  const setting = settingFor(e.port, config);
  switch (e.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${address}: the address is already in use (is another server running?); choose another with ${setting}`;
    case 'EACCES':
      return `cannot listen on ${address}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE); choose another with ${setting}`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${address}: no network interface has this address; choose another with ${setting}`;
    default:
      return `cannot listen on ${address}: ${e.code ?? e.message}; check ${setting}`;
  }
}

/** Which key names host `host` (the main listener unless only a side listener has it). */
function hostSetting(host: string, config: StartupContext['config']): string {
  if (config.server.listen.host === host) return 'HFS_LISTEN or [server] listen';
  if (config.metrics.listen?.host === host) return '[metrics] listen';
  if (config.admin.listen?.host === host) return '[admin] listen';
  return 'HFS_LISTEN or [server] listen';
}

/** Which key sets the listener that failed (the main one unless a side listener has that port). */
function settingFor(port: number | undefined, config: StartupContext['config']): string {
  if (port !== undefined && port !== 0) {
    if (config.metrics.listen?.port === port && config.server.listen.port !== port) return '[metrics] listen';
    if (config.admin.listen?.port === port && config.server.listen.port !== port) return '[admin] listen';
  }
  return 'HFS_LISTEN or [server] listen';
}
