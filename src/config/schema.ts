/**
 * The config schema: every key, its default, its check. TOML keys are snake_case as operators
 * write them; the typed Config the program reads uses camelCase with units in the name
 * (`…Ms`, `…Bytes`). Every key is optional: the defaults are the embedded single-node mode.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { parseRedisUrl } from './redis-url.js';
import { directoryModeFor, EXTENSION_ENTRY, EXTENSION_ENTRY_MESSAGE, normalizeExtension, parseDuration, parseFileMode, parseListen, parseSize, parseSizeOrPercent } from './units.js';
import { scanSection } from './scan-schema.js';
import { rufhSection } from './rufh-schema.js';

const anyDuration = (def: string) =>
  z.unknown().default(def).transform((v, ctx) => {
    try {
      return parseDuration(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

/** The longest wait a Node timer holds (2^31-1 ms, about 24.8 days); a longer one fires after 1 ms. */
const TIMER_MAX_MS = 2 ** 31 - 1;
/** A duration the server waits with a timer (timeouts, intervals, delays): at most TIMER_MAX_MS. */
const duration = (def: string) => anyDuration(def).refine((ms) => ms <= TIMER_MAX_MS, 'must be at most 24d (the server waits with timers, which hold no longer)');
/** A duration only compared with timestamps (ages, lifetimes), never waited for: any length. */
const longDuration = anyDuration;

/** A duration that must be above zero (0 has no meaning for it). */
const positiveDuration = (def: string) => duration(def).refine((ms) => ms > 0, 'must be above 0');

/** A duration that may be left out: null then means "derived from another key". */
const optionalDuration = () =>
  z.unknown().optional().transform((v, ctx) => {
    if (v === undefined || v === '') return null;
    try {
      return parseDuration(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

const size = (def: string | number) =>
  z.unknown().default(def).transform((v, ctx) => {
    try {
      return parseSize(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

const listen = (def: string) =>
  z.unknown().default(def).transform((v, ctx) => {
    if (v === '') return null; // empty = off / same listener
    try {
      return parseListen(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

const urlPath = (def: string) =>
  z
    .string()
    .default(def)
    .refine((p) => /^\/([A-Za-z0-9._~-]+\/)*$/.test(p), 'must start and end with "/" and hold only URL-safe segments, e.g. "/upload/"');

const fraction = (def: number) => z.number().min(0).max(1).default(def);
const count = (def: number, min = 0) => z.number().int().min(min).default(def);

export const SCHEMES = ['v', 'v2', 'token', 'v3'] as const;
export type Scheme = (typeof SCHEMES)[number];

const server = z
  .object({
    listen: listen('127.0.0.1:8080'),
    public_url: z.union([z.literal(''), z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://files.example.org, or empty' })]).default(''),
    tus_path: urlPath('/files/'),
    upload_path: urlPath('/upload/'),
    max_upload_size: size('10GB').refine((n) => n > 0, 'must be above 0'),
    graceful_shutdown_timeout: duration('300s'),
    request_timeout: duration('7200s'),
    upload_stall_timeout: positiveDuration('60s'),
    /** A request's header block must be complete within this; else 408 and the connection closes. */
    headers_timeout: positiveDuration('60s'),
    max_concurrent_uploads: count(100, 1),
    connection_pool_size: count(200, 1),
    /** Connections the kernel holds for accept() (Node's default 511; Linux caps it at net.core.somaxconn). */
    listen_backlog: count(4096, 1),
    trust_proxy: z.boolean().default(false),
    /** PEM files: when set, the listener speaks HTTPS itself (HTTP/1.1; listener.ts). */
    tls_certificate: z.string().default(''),
    tls_key: z.string().default(''),
  })
  .refine((s) => (s.tls_certificate === '') === (s.tls_key === ''), { message: 'tls_certificate and tls_key are set together', path: ['tls_key'] })
  .prefault({})
  .transform((s) => ({
    listen: s.listen ?? { host: '127.0.0.1', port: 8080 },
    publicUrl: s.public_url.replace(/\/+$/, ''),
    tusPath: s.tus_path,
    uploadPath: s.upload_path,
    maxUploadBytes: s.max_upload_size,
    gracefulShutdownMs: s.graceful_shutdown_timeout,
    requestTimeoutMs: s.request_timeout,
    uploadStallMs: s.upload_stall_timeout,
    headersTimeoutMs: s.headers_timeout,
    maxConcurrentUploads: s.max_concurrent_uploads,
    connectionPoolSize: s.connection_pool_size,
    listenBacklog: s.listen_backlog,
    trustProxy: s.trust_proxy,
    tls: s.tls_certificate === '' ? null : { certificateFile: s.tls_certificate, keyFile: s.tls_key },
  }));

const security = z
  .object({
    secret: z.string().default(''),
    previous_secrets: z.array(z.string().min(1, 'must not be empty')).default([]),
    schemes: z.array(z.enum(SCHEMES)).min(1, 'at least one scheme must be accepted').default([...SCHEMES]),
    /** v3 slots stay usable this long after `expires` (risk: so does a leaked URL). */
    expiry_grace: longDuration('0s'),
    /** Tolerated difference between the signer's clock and ours, added to the v3 expiry too. */
    clock_skew: longDuration('0s'),
  })
  .prefault({})
  .transform((s) => ({
    secret: s.secret,
    previousSecrets: s.previous_secrets,
    schemes: s.schemes,
    expiryGraceMs: s.expiry_grace,
    clockSkewMs: s.clock_skew,
  }));

/**
 * Which files a slot may carry, by the end of its name (case-insensitive; ".tar.gz" matches
 * "a.TAR.GZ"). Empty allowed list: any name. A blocked suffix wins over an allowed one.
 */
const extensionList = z
  .array(z.string().regex(EXTENSION_ENTRY, EXTENSION_ENTRY_MESSAGE))
  .default([])
  .transform((list) => [...new Set(list.map(normalizeExtension))]);

const uploads = z
  .object({
    allowed_extensions: extensionList,
    blocked_extensions: extensionList,
  })
  .prefault({})
  .transform((s) => ({ allowedExtensions: s.allowed_extensions, blockedExtensions: s.blocked_extensions }));

/**
 * Migrating from the Go HMAC File Server: Go 3.x keys that restrict uploads and that this server
 * cannot enforce refuse the start, unless listed here (the admin accepts running without them).
 */
const migration = z
  .object({ accept_unenforced: z.array(z.string().min(1)).default([]) })
  .prefault({})
  .transform((s) => ({ acceptUnenforced: s.accept_unenforced }));

const fileMode = (def: string) =>
  z.unknown().default(def).transform((v, ctx) => {
    try {
      return parseFileMode(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

/**
 * min_free_space: the reserve kept free for the queue journal, upload records and published-file
 * records (docs/storage-space.md). 64 MiB by default: what it protects does not grow with the
 * disk (a job row is under 1 KiB, the SQLite WAL about 4 MiB between checkpoints, a record one
 * block), so a fixed size fits small and large disks alike, where 1 % would be 10 GiB of a 1 TiB
 * disk held back for nothing, and 0.1 % of a 20 GiB VPS disk too little for a WAL checkpoint.
 */
const minFreeSpace = (def: string) =>
  z.unknown().default(def).transform((v, ctx) => {
    try {
      return parseSizeOrPercent(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

/**
 * [storage.s3]: used when storage.backend = "s3". Credentials left empty come from the standard
 * AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, instance roles).
 */
const storageS3 = z
  // Strict: a nested table's misspelt key would otherwise vanish (unknown-key warnings cover sections only).
  .strictObject({
    bucket: z.string().default(''),
    region: z.string().min(1).default('us-east-1'),
    /** Empty: AWS itself. Set for any S3-compatible server (Ceph RGW, MinIO, …). */
    endpoint: z
      .string()
      .default('')
      .refine((v) => v === '' || /^https?:\/\/[^/\s]+\/?$/.test(v), 'must be an http(s) URL without a path, e.g. "http://127.0.0.1:7480"'),
    force_path_style: z.boolean().default(false),
    access_key_id: z.string().default(''),
    secret_access_key: z.string().default(''),
    /** Prepended to every key: uploads/, files/ and cas/ live below it. */
    key_prefix: z
      .string()
      .default('')
      .refine((v) => v === '' || /^[A-Za-z0-9!_.*'()/-]*\/$/.test(v), 'must end with "/" and hold only S3-safe characters, e.g. "hfs/"')
      // With the longest slot path (900 bytes, auth/slot-path.ts) a key stays within S3's 1,024 bytes.
      .refine((v) => v.length <= 100, 'must be at most 100 characters (an S3 key is at most 1,024 bytes, and a slot path may take 900 of them)'),
    part_size: size('8MiB'),
    /** Downloads answer 302 to a presigned GET of the object instead of streaming it through the server. */
    presigned_downloads: z.boolean().default(false),
    /** How long a presigned download URL stays valid (S3 allows up to 7 days). */
    presigned_ttl: longDuration('5m'),
    /** A connection to S3 not made within this fails (and counts for the storage breaker). */
    connect_timeout: duration('5s'),
    /**
     * A request to S3 that sends and receives nothing for this long fails: a black-holed S3 cannot
     * hold a request or a worker for ever. Idle time, not total time: large parts may take long.
     */
    request_timeout: duration('60s'),
  })
  .prefault({})
  .refine((s) => (s.access_key_id === '') === (s.secret_access_key === ''), {
    message: 'access_key_id and secret_access_key are set together, or both left empty for the AWS credential chain',
    path: ['secret_access_key'],
  })
  .refine((s) => s.presigned_ttl >= 1000 && s.presigned_ttl <= 7 * 24 * 3600_000, { message: 'must be between 1s and 7 days (S3 presigned URL limits)', path: ['presigned_ttl'] })
  .refine((s) => s.connect_timeout >= 100 && s.connect_timeout <= 300_000, { message: 'must be between 100ms and 5m', path: ['connect_timeout'] })
  .refine((s) => s.request_timeout >= 1000 && s.request_timeout <= 3600_000, { message: 'must be between 1s and 1h', path: ['request_timeout'] })
  .refine((s) => s.part_size >= 5 * 1024 * 1024 && s.part_size <= 5 * 1024 * 1024 * 1024, {
    message: 'must be between 5MiB and 5GiB (S3 multipart limits)',
    path: ['part_size'],
  })
  .transform((s) => ({
    bucket: s.bucket,
    region: s.region,
    endpoint: s.endpoint.replace(/\/$/, ''),
    forcePathStyle: s.force_path_style,
    accessKeyId: s.access_key_id,
    secretAccessKey: s.secret_access_key,
    keyPrefix: s.key_prefix,
    partBytes: s.part_size,
    presignedDownloads: s.presigned_downloads,
    presignedTtlMs: s.presigned_ttl,
    connectTimeoutMs: s.connect_timeout,
    requestTimeoutMs: s.request_timeout,
  }));

const storage = z
  .object({
    backend: z.enum(['file', 's3'], { error: 'must be "file" or "s3"' }).default('file'),
    data_dir: z.string().min(1).default('./data'),
    min_free_space: minFreeSpace('64MiB'),
    /** Mode of uploaded files; directories get the matching x bits (0640 -> 0750). */
    file_mode: fileMode('0640'),
    s3: storageS3,
  })
  .prefault({})
  .refine((s) => s.backend !== 's3' || s.s3.bucket !== '', { message: 'must be set when storage.backend = "s3"', path: ['s3', 'bucket'] })
  .transform((s) => ({ backend: s.backend, dataDir: s.data_dir, minFreeSpace: s.min_free_space, fileMode: s.file_mode, dirMode: directoryModeFor(s.file_mode), s3: s.s3 }));

const tus = z
  .object({
    expiration: longDuration('24h'),
    lock_drain_timeout: duration('3s'),
    // A lock holder silent this long is ended at once when a newer request asks (issue 18).
    takeover_idle: duration('200ms'),
    /** DELETE on a finished upload's URL removes its published file for good (docs/tus.md). */
    allow_delete_finished: z.boolean().default(true),
    /** Partial uploads (Upload-Concat) one slot may hold at once. */
    max_concat_parts: count(16, 1),
  })
  .prefault({})
  .transform((s) => ({
    expirationMs: s.expiration,
    lockDrainMs: s.lock_drain_timeout,
    takeoverIdleMs: s.takeover_idle,
    allowDeleteFinished: s.allow_delete_finished,
    maxConcatParts: s.max_concat_parts,
  }));

/**
 * `url` switches cluster mode on (docs/cluster.md): locks, the finalization queue, pressure
 * numbers and publish notifications go to Redis; '' keeps the embedded single-node mode.
 */
const redis = z
  .object({
    url: z
      .string()
      .default('')
      .superRefine((url, ctx) => {
        if (url === '') return;
        try {
          parseRedisUrl(url);
        } catch (e) {
          ctx.addIssue({ code: 'custom', message: (e as Error).message });
        }
      }),
    /** Namespace of every key and channel; instances of one cluster share it. */
    key_prefix: z
      .string()
      .regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 : _ . - (hash tags are added where needed)')
      .default('hfs:'),
    /** Lifetime of an upload lock without renewal: how long a crashed instance's locks linger. */
    lock_ttl: positiveDuration('10s'),
    /** A Redis call slower than this counts as Redis being unreachable (degraded mode). */
    command_timeout: duration('2s'),
    /** How often each instance checks that Redis answers. */
    health_check_interval: positiveDuration('1s'),
  })
  .prefault({})
  .transform((s) => ({
    url: s.url,
    keyPrefix: s.key_prefix,
    lockTtlMs: s.lock_ttl,
    commandTimeoutMs: s.command_timeout,
    healthCheckIntervalMs: s.health_check_interval,
  }));

/**
 * Cluster mode only (ignored without `[redis] url`): who this instance is and where its own
 * state lives (the local journal, the server lock file), apart from the shared data directory.
 */
const cluster = z
  .object({
    /** Stable across restarts (the instance finds its journal again by it). '' = the host name. */
    instance_id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{0,64}$/, 'must be at most 64 characters of A-Z a-z 0-9 . _ -')
      .default(''),
    /** '' = <data_dir>/instances/<instance_id>. May be a local disk: nothing there is shared. */
    instance_dir: z.string().default(''),
    /** How often the instance publishes its workers and breakers for the admin API of every instance. */
    heartbeat_interval: duration('5s'),
  })
  .prefault({})
  .transform((s) => ({
    instanceId: s.instance_id === '' ? defaultInstanceId() : s.instance_id,
    instanceDir: s.instance_dir,
    heartbeatIntervalMs: s.heartbeat_interval,
  }));

/** The host name, cut to what an instance id may hold. */
function defaultInstanceId(): string {
  return hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64) || 'instance';
}

const workers = z
  .object({
    numworkers: count(4, 1),
    queue_size: count(1000, 1),
    queue_timeout: positiveDuration('300s'),
    priority_queue_enabled: z.boolean().default(true),
    large_file_queue_size: count(20, 1),
    circuit_breaker_enabled: z.boolean().default(true),
    queue_backpressure_threshold: fraction(0.8),
  })
  .prefault({})
  .transform((s) => ({
    count: s.numworkers,
    queueSize: s.queue_size,
    queueTimeoutMs: s.queue_timeout,
    priorityQueueEnabled: s.priority_queue_enabled,
    largeFileQueueSize: s.large_file_queue_size,
    circuitBreakerEnabled: s.circuit_breaker_enabled,
    backpressureThreshold: s.queue_backpressure_threshold,
  }));

const queueResilience = z
  .object({
    spillover_to_disk: z.boolean().default(true),
    persistent_queue: z.boolean().default(true),
    queue_recovery_enabled: z.boolean().default(true),
    dead_letter_queue_enabled: z.boolean().default(true),
    queue_health_check_interval: positiveDuration('15s'),
    emergency_mode_threshold: fraction(0.95),
    priority_levels: z.number().int().min(1).max(3).default(3),
    priority_aging_enabled: z.boolean().default(true),
    load_balancing_strategy: z.enum(['round_robin', 'least_loaded', 'random']).default('least_loaded'),
  })
  .prefault({})
  .transform((s) => ({
    spilloverToDisk: s.spillover_to_disk,
    persistentQueue: s.persistent_queue,
    recoveryEnabled: s.queue_recovery_enabled,
    deadLetterEnabled: s.dead_letter_queue_enabled,
    healthCheckIntervalMs: s.queue_health_check_interval,
    emergencyThreshold: s.emergency_mode_threshold,
    priorityLevels: s.priority_levels,
    priorityAgingEnabled: s.priority_aging_enabled,
    loadBalancingStrategy: s.load_balancing_strategy,
  }));

const timeouts = z
  .object({
    small_file_timeout: duration('60s'),
    medium_file_timeout: duration('600s'),
    large_file_timeout: duration('3600s'),
    huge_file_timeout: duration('7200s'),
    small_file_stall_timeout: optionalDuration(),
    medium_file_stall_timeout: optionalDuration(),
    large_file_stall_timeout: optionalDuration(),
    huge_file_stall_timeout: optionalDuration(),
    keep_alive_probe_interval: duration('30s'),
    keep_alive_probe_count: count(9, 1),
    retry_base_delay: duration('1s'),
    retry_max_delay: duration('60s'),
    max_retry_attempts: count(5, 0),
    // The one notion of "too slow" (issues 18.8, 9.1): bytes per second over the window, see body-meter.ts.
    min_upload_rate: size('8KiB'),
    min_upload_rate_window: duration('60s'),
  })
  .prefault({})
  .transform((s) => ({
    smallFileMs: s.small_file_timeout,
    mediumFileMs: s.medium_file_timeout,
    largeFileMs: s.large_file_timeout,
    hugeFileMs: s.huge_file_timeout,
    stallMs: {
      small: s.small_file_stall_timeout,
      medium: s.medium_file_stall_timeout,
      large: s.large_file_stall_timeout,
      huge: s.huge_file_stall_timeout,
    },
    keepAliveProbeIntervalMs: s.keep_alive_probe_interval,
    keepAliveProbeCount: s.keep_alive_probe_count,
    retryBaseDelayMs: s.retry_base_delay,
    retryMaxDelayMs: s.retry_max_delay,
    maxRetryAttempts: s.max_retry_attempts,
    minUploadRateBytesPerSec: s.min_upload_rate,
    minUploadRateWindowMs: s.min_upload_rate_window,
  }));

/** Per-client and per-slot bounds (issue 9.1, 9.2). 0 turns a cap off. */
/** A size or a percent of the data file system (the same reading as min_free_space). */
const sizeOrPercent = minFreeSpace;

const limits = z
  .object({
    // 32: a client (or many phones behind one carrier NAT) may hold a third of the 100 default permits.
    max_bodies_per_client: count(32),
    // 100: half the default connection_pool_size, so one client never fills the pool.
    max_connections_per_client: count(100),
    creations_per_minute_per_client: count(120),
    max_unfinished_bytes: size('100GB'),
    // "25%": of the free space above min_free_space; never below max_upload_size, so any one allowed upload fits. "0" = no cap.
    max_promised_bytes_per_client: sizeOrPercent('25%'),
    // 64: one IPv6 subscriber gets a /64 and may use any address in it; 128 = the exact address.
    ipv6_client_prefix: z.number().int().min(1).max(128).default(64),
  })
  .prefault({})
  .transform((s) => ({
    maxBodiesPerClient: s.max_bodies_per_client,
    maxConnectionsPerClient: s.max_connections_per_client,
    creationsPerMinutePerClient: s.creations_per_minute_per_client,
    maxUnfinishedBytes: s.max_unfinished_bytes,
    maxPromisedBytesPerClient: s.max_promised_bytes_per_client,
    ipv6ClientPrefix: s.ipv6_client_prefix,
  }));

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** Go's logrus names that pino spells differently. */
const LOG_LEVEL_ALIASES: Readonly<Record<string, string>> = { warning: 'warn', panic: 'fatal' };

const logging = z
  .object({
    // Any case, like the Go server ("INFO"), and logrus' names.
    level: z
      .preprocess((v) => (typeof v === 'string' ? (LOG_LEVEL_ALIASES[v.trim().toLowerCase()] ?? v.trim().toLowerCase()) : v), z.enum(LOG_LEVELS))
      .default('info'),
    format: z.enum(['json', 'pretty']).default('json'),
  })
  .prefault({})
  .transform((s) => ({ level: s.level, format: s.format }));

const metrics = z
  .object({
    enabled: z.boolean().default(true),
    path: z.string().regex(/^\/[A-Za-z0-9._~/-]*$/, 'must be an absolute URL path').default('/metrics'),
    listen: listen(''),
    public: z.boolean().default(false),
  })
  .prefault({})
  .transform((s) => ({ enabled: s.enabled, path: s.path, listen: s.listen, public: s.public }));

const admin = z
  .object({
    // Sent as "Authorization: Bearer <token>" (RFC 6750: no whitespace in it): a token with a space could never match.
    token: z.string().regex(/^\S*$/, 'must not contain spaces or other whitespace (it is sent as a Bearer token)').default(''),
    listen: listen(''),
  })
  .prefault({})
  .transform((s) => ({ token: s.token, listen: s.listen }));

const finalize = z
  .object({
    dedup: z.boolean().default(true),
    webhook_url: z
      .union([z.literal(''), z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })])
      .default('')
      // fetch refuses such URLs (no webhook could be sent) and they would reach logs: webhook_secret signs instead.
      .refine((u) => u === '' || !/^[a-z]+:\/\/[^/?#]*@/i.test(u), 'must not carry a user name or password (the webhook is signed with webhook_secret)'),
    webhook_secret: z.string().default(''),
    webhook_timeout: positiveDuration('10s'),
  })
  .prefault({})
  .transform((s) => ({
    dedup: s.dedup,
    webhookUrl: s.webhook_url,
    webhookSecret: s.webhook_secret,
    webhookTimeoutMs: s.webhook_timeout,
  }));

const cors = z
  .object({
    enabled: z.boolean().default(true),
    // Compared with the Origin header as sent: scheme://host[:port], nothing else ever matches.
    allowed_origins: z
      .array(
        z
          .string()
          // A browser never sends the scheme's default port: https://x:443 is written as https://x.
          .transform((o) => (o === '*' ? o : o.replace(/\/+$/, '').toLowerCase().replace(/^(https:\/\/[^/]+):443$|^(http:\/\/[^/]+):80$/, '$1$2')))
          .pipe(z.string().regex(/^(\*|https?:\/\/[^/\s?#@*]+)$/, 'must be "*" or an origin such as https://chat.example.org (scheme, host, optional port; no path, no wildcard inside: list each origin)')),
      )
      .default(['*']),
    allow_credentials: z.boolean().default(false),
    max_age: longDuration('10m'),
  })
  .prefault({})
  .superRefine((s, ctx) => {
    // "*" with credentials would echo any Origin and let every site read with the user's cookies.
    if (s.allow_credentials && s.allowed_origins.includes('*')) {
      ctx.addIssue({ code: 'custom', path: ['allow_credentials'], message: 'cannot be true while allowed_origins holds "*": list the allowed origins explicitly' });
    }
  })
  .transform((s) => ({
    enabled: s.enabled,
    allowedOrigins: s.allowed_origins,
    allowCredentials: s.allow_credentials,
    maxAgeMs: s.max_age,
  }));

/**
 * The browser upload page (web/). The page never mints slots itself: it asks the operator's
 * `signing_endpoint` (an app backend that authenticates its users) or takes a pasted slot URL.
 */
const uploadPage = z
  .object({
    enabled: z.boolean().default(true),
    path: urlPath('/'),
    /** URL the page POSTs {name, size, type} to for a slot; "" = the user pastes slot URLs. */
    signing_endpoint: z
      .union([z.literal(''), z.string().regex(/^(https?:\/\/[^\s]+|\/[^\s]*)$/, 'must be an http(s) URL or an absolute path')])
      .default(''),
    chunk_size: size('8MiB').refine((n) => n > 0, 'must be above 0'),
    /** Parts sent at once per file (tus concatenation); 1 sends one part after another. */
    parallel_uploads: count(1, 1),
  })
  .prefault({})
  .transform((s) => ({ enabled: s.enabled, path: s.path, signingEndpoint: s.signing_endpoint, chunkBytes: s.chunk_size, parallelUploads: s.parallel_uploads }));

/**
 * Test-only. crash_at names a finalization step (src/finalize/finalization-service.ts,
 * FinalizeStep) at which the server kills itself with SIGKILL, for the crash-recovery tests.
 * Set through HFS_TEST_CRASH_AT; never in production. skip_intake_checksum leaves a tus
 * upload's declared sha256 to finalization (a dead letter, as for bytes that changed on disk
 * after the last PATCH), for the operations tests that need dead letters.
 */
const testing = z
  .object({
    crash_at: z.string().default(''),
    skip_intake_checksum: z.boolean().default(false),
    /** Test-only: jobs reaching this finalization step wait there until the process first gets SIGUSR2. */
    hold_at: z.string().default(''),
  })
  .prefault({})
  .transform((s) => ({
    crashAt: s.crash_at === '' ? null : s.crash_at,
    skipIntakeChecksum: s.skip_intake_checksum,
    holdAt: s.hold_at === '' ? null : s.hold_at,
  }));

export const configSchema = z.object({
  server,
  security,
  storage,
  tus,
  redis,
  cluster,
  workers,
  queue_resilience: queueResilience,
  timeouts,
  logging,
  metrics,
  admin,
  finalize,
  cors,
  upload_page: uploadPage,
  limits,
  uploads,
  migration,
  scan: scanSection,
  rufh: rufhSection,
  testing,
});

/** The one typed, validated config the program reads. */
export type Config = z.output<typeof configSchema>;

/** Known TOML keys per section, derived from the schema so the two never drift. */
export function knownKeys(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const [section, sectionSchema] of Object.entries(configSchema.shape)) {
    out.set(section, new Set(Object.keys(objectShapeOf(sectionSchema))));
  }
  return out;
}

function objectShapeOf(schema: z.ZodType): Record<string, unknown> {
  // Each section is object().prefault().transform(): unwrap to the inner object.
  let s: unknown = schema;
  for (let i = 0; i < 5 && s && typeof s === 'object'; i++) {
    const def = (s as { def?: { shape?: Record<string, unknown>; in?: unknown; innerType?: unknown } }).def;
    if (def?.shape) return def.shape;
    s = def?.in ?? def?.innerType;
  }
  throw new Error('config schema section is not an object');
}
