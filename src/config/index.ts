export { loadConfig, resolveConfig, parseTomlText, DEFAULT_CONFIG_PATH, type LoadedConfig, type Env } from './load.js';
export { configSchema, SCHEMES, type Config, type Scheme } from './schema.js';
export { ConfigError, type ConfigWarning, type ConfigIssue, type RawConfig } from './types.js';
export { parseDuration, parseSize, parseSizeOrPercent, parseListen, formatDuration, type SizeOrPercent } from './units.js';
export { parseRedisUrl, redactRedisUrl, type RedisNode, type RedisTarget } from './redis-url.js';
export { isClusterMode, ownSubdir, stateDirOf } from './cluster-paths.js';
export { parseClamdAddress, describeClamdAddress, type ClamdAddress } from './clamd-address.js';
export { parseAddressRange, INTERIM_POLICIES, type AddressRange, type InterimPolicy } from './rufh-schema.js';
