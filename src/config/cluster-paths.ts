/**
 * Where each kind of state lives, single-node or in cluster mode. Pure.
 * Shared by every instance (the data directory): tus uploads, published files and their
 * records, content store, PUT staging and temp files (one sub-folder per instance).
 * Per instance (the state directory): the local journal (SQLite queue), the server lock file.
 * Single-node, both are the data directory, exactly as before cluster mode existed.
 */
import { join } from 'node:path';
import type { Config } from './schema.js';

type PathConfig = Pick<Config, 'redis' | 'cluster' | 'storage'>;

/** `[redis] url` is set. */
export function isClusterMode(config: Pick<Config, 'redis'>): boolean {
  return config.redis.url !== '';
}

/** The directory of this instance's own state: the data directory single-node, the instance directory in cluster mode. */
export function stateDirOf(config: PathConfig): string {
  if (!isClusterMode(config)) return config.storage.dataDir;
  return config.cluster.instanceDir !== '' ? config.cluster.instanceDir : join(config.storage.dataDir, 'instances', config.cluster.instanceId);
}

/**
 * A folder of the shared data directory that holds per-request files of this instance (PUT temp
 * files, staged PUT bodies): `<shared>/<instance id>` in cluster mode, so an instance that starts
 * cleans only what it left itself; `<shared>` single-node.
 */
export function ownSubdir(config: PathConfig, shared: string): string {
  return isClusterMode(config) ? join(shared, config.cluster.instanceId) : shared;
}
