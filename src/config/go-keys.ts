/**
 * What becomes of each key of a Go HMAC File Server 3.x config (PlusOne/hmac-file-server,
 * internal/config/types.go and the shipped examples/templates). Keys are lower case: Go reads
 * them through viper, which ignores case. Each row is one of:
 *
 * - `rename`: the same meaning under another name here; moved, with a line `→ new = value`.
 * - `unenforced`: Go enforced a restriction this server cannot: the start is refused while
 *   `when(value)` holds, unless the admin lists the key in `[migration] accept_unenforced`.
 * - `ignored`: nothing to do here, with the reason (tuning, log files, or a key Go 3.4 reads
 *   but never enforces, so dropping it keeps Go's effective policy).
 *
 * Keys that need more than one row's logic (listen + bind_ip, metrics port, Redis, v3 grace,
 * size limits) are handled in legacy.ts. Other owners add their rows here (e.g. `[clamav]`
 * with the scanning step); a Go key in no row is reported as unknown.
 *
 * `key` is "section.key", "key" for the pre-3.x flat layout, "section.*" for a whole section
 * or "section.prefix*" for keys starting with a prefix.
 */

export type GoKeyRule =
  | { key: string; kind: 'rename'; to: string; note?: string }
  | { key: string; kind: 'unenforced'; when: (value: unknown) => boolean; reason: string }
  | { key: string; kind: 'ignored'; reason: string | ((value: unknown) => string) };

/** A Go switch that is on: Go read quoted and numeric booleans too (viper, strconv.ParseBool). */
export const on = (v: unknown) => v === true || (typeof v === 'number' && v !== 0) || (typeof v === 'string' && /^(1|t|true)$/i.test(v.trim()));
/** A Go switch that is plainly off. A value Go could not read ("yes") stopped Go from starting: a restriction switch so written is refused, never read as off. */
const off = (v: unknown) => v === false || v === 0 || (typeof v === 'string' && /^(0|f|false)$/i.test(v.trim()));
const notOff = (v: unknown) => !off(v);
const nonEmpty = (v: unknown) => (Array.isArray(v) ? v.length > 0 : v !== undefined && v !== '' && v !== false);

const NETWORK_TUNING = 'network tuning: a tus upload resumes from its stored offset on any network, until [tus] expiration';
const WORKER_TUNING = 'worker scaling: the worker count is fixed ([workers] numworkers)';
const NOT_ENFORCED_BY_GO = 'Go 3.4 reads it but never enforces it, so ignoring it keeps the same behaviour';
const NOT_READ_BY_GO = 'Go 3.4 does not read this key either';
const NO_EFFECT_WITHOUT_SWITCH = 'the other keys of this section change nothing here';
const RESUMABLE_ALWAYS = 'resumable uploads (tus) are always on here';

export const GO_KEY_RULES: readonly GoKeyRule[] = [
  // [server]
  { key: 'server.storage_path', kind: 'rename', to: 'storage.data_dir' },
  { key: 'server.storagepath', kind: 'rename', to: 'storage.data_dir' },
  { key: 'server.metrics_enabled', kind: 'rename', to: 'metrics.enabled' },
  { key: 'server.metricsenabled', kind: 'rename', to: 'metrics.enabled' },
  { key: 'server.metrics_path', kind: 'rename', to: 'metrics.path' },
  { key: 'server.deduplication_enabled', kind: 'rename', to: 'finalize.dedup' },
  { key: 'server.log_level', kind: 'rename', to: 'logging.level' },
  { key: 'server.log_file', kind: 'ignored', reason: 'logs are JSON lines on stdout: redirect them or read the journal' },
  // Go 2.x spellings under [server]
  { key: 'server.deduplicationenabled', kind: 'rename', to: 'finalize.dedup' },
  { key: 'server.loglevel', kind: 'rename', to: 'logging.level' },
  { key: 'server.logfile', kind: 'ignored', reason: 'logs are JSON lines on stdout: redirect them or read the journal' },
  { key: 'server.minfreebytes', kind: 'ignored', reason: 'no free-space check at start here; GET /ready reports whether the data dir is writable' },
  { key: 'server.pid_file', kind: 'ignored', reason: 'no PID file: the service manager tracks the process; the running server is named in <data_dir>/server.json' },
  { key: 'server.pidfilepath', kind: 'ignored', reason: 'no PID file: the service manager tracks the process; the running server is named in <data_dir>/server.json' },
  { key: 'server.min_free_bytes', kind: 'ignored', reason: 'no free-space check at start here; GET /ready reports whether the data dir is writable' },
  {
    key: 'server.file_naming',
    kind: 'unenforced',
    when: (v) => v === 'HMAC',
    reason: 'Go stored files under an HMAC of their path; here a file keeps its slot path',
  },
  { key: 'server.file_naming', kind: 'ignored', reason: 'files keep their slot path here, as with "original"' },
  {
    key: 'server.unixsocket',
    kind: 'unenforced',
    when: notOff,
    reason: 'Go listened on a Unix socket only; this server listens on TCP ([server] listen)',
  },
  { key: 'server.unixsocket', kind: 'ignored', reason: 'off: TCP, as here' },
  {
    key: 'server.unix_socket',
    kind: 'unenforced',
    when: notOff,
    reason: 'a Unix socket instead of TCP is not available; this server listens on TCP ([server] listen)',
  },
  { key: 'server.unix_socket', kind: 'ignored', reason: 'off: TCP, as here' },
  {
    key: 'server.filettlenabled',
    kind: 'unenforced',
    when: notOff,
    reason: 'Go deleted published files after filettl (or max_file_age); this server keeps them until an admin removes them',
  },
  { key: 'server.filettlenabled', kind: 'ignored', reason: 'off: published files are kept, as here' },
  { key: 'server.filettl', kind: 'ignored', reason: 'only used with filettlenabled = true' },
  { key: 'server.max_file_age', kind: 'ignored', reason: 'only used with filettlenabled = true' },
  { key: 'server.cleanup_interval', kind: 'ignored', reason: 'only used with filettlenabled = true' },
  { key: 'server.global_extensions', kind: 'ignored', reason: `${NOT_ENFORCED_BY_GO}; [uploads] allowed_extensions restricts uploads` },
  { key: 'server.max_header_bytes', kind: 'ignored', reason: "Node's own header limit (16 KiB) applies" },
  { key: 'server.force_protocol', kind: 'ignored', reason: 'Go used it for its outgoing connections; this server makes none but the webhook' },
  { key: 'server.pre_cache*', kind: 'ignored', reason: 'pre-caching was a stub in Go 3.4' },
  { key: 'server.precaching', kind: 'ignored', reason: 'pre-caching was a stub in Go 3.4' },
  { key: 'server.enable_dynamic_workers', kind: 'ignored', reason: WORKER_TUNING },
  { key: 'server.worker_scale_*', kind: 'ignored', reason: WORKER_TUNING },
  { key: 'server.autoadjustworkers', kind: 'ignored', reason: WORKER_TUNING },
  { key: 'server.auto_adjust_workers', kind: 'ignored', reason: WORKER_TUNING },
  { key: 'server.networkevents', kind: 'ignored', reason: NETWORK_TUNING },
  { key: 'server.network_events', kind: 'ignored', reason: NETWORK_TUNING },
  { key: 'server.client_multi_interface', kind: 'ignored', reason: NETWORK_TUNING },
  { key: 'server.clean_upon_exit', kind: 'ignored', reason: 'nothing is left to clean: interrupted PUTs are removed at start' },

  // [security]
  {
    key: 'security.enablejwt',
    kind: 'ignored',
    reason: (v) => (v === true ? 'JWT uploads are not available: such clients get 403; HMAC slots work as before' : 'off, as here'),
  },
  { key: 'security.jwt*', kind: 'ignored', reason: 'JWT uploads are not available here' },
  { key: 'security.bearer_tokens_enabled', kind: 'ignored', reason: `${NOT_READ_BY_GO}; bearer tokens are not available here` },
  { key: 'security.hmac_enabled', kind: 'ignored', reason: `${NOT_READ_BY_GO}; HMAC slots are always on` },
  { key: 'security.enhanced_security', kind: 'ignored', reason: NOT_ENFORCED_BY_GO },
  { key: 'security.challenge_on_network_change', kind: 'ignored', reason: NOT_ENFORCED_BY_GO },
  { key: 'security.reauth_on_long_standby', kind: 'ignored', reason: NOT_ENFORCED_BY_GO },
  { key: 'security.standby_threshold_minutes', kind: 'ignored', reason: NOT_ENFORCED_BY_GO },
  { key: 'security.long_standby_threshold_hours', kind: 'ignored', reason: NOT_ENFORCED_BY_GO },

  // [uploads]
  { key: 'uploads.allowedextensions', kind: 'rename', to: 'uploads.allowed_extensions' },
  { key: 'uploads.max_resumable_age', kind: 'rename', to: 'tus.expiration', note: 'unfinished uploads are removed this long after creation' },
  { key: 'uploads.dedupe', kind: 'rename', to: 'finalize.dedup' },
  { key: 'uploads.chunked_uploads_enabled', kind: 'ignored', reason: RESUMABLE_ALWAYS },
  { key: 'uploads.chunkeduploadsenabled', kind: 'ignored', reason: RESUMABLE_ALWAYS },
  { key: 'uploads.resumable_uploads_enabled', kind: 'ignored', reason: RESUMABLE_ALWAYS },
  { key: 'uploads.resumableuploadsenabled', kind: 'ignored', reason: RESUMABLE_ALWAYS },
  { key: 'uploads.chunk_size', kind: 'ignored', reason: 'the client picks its tus chunk size (the upload page: [upload_page] chunk_size)' },
  { key: 'uploads.chunksize', kind: 'ignored', reason: 'the client picks its tus chunk size (the upload page: [upload_page] chunk_size)' },
  { key: 'uploads.ttl_enabled', kind: 'ignored', reason: `${NOT_READ_BY_GO}; published files are kept` },
  { key: 'uploads.ttl', kind: 'ignored', reason: NOT_READ_BY_GO },
  { key: 'uploads.sessiontimeout', kind: 'ignored', reason: `${NOT_ENFORCED_BY_GO}; unfinished uploads expire after [tus] expiration` },
  ...[
    'session_recovery_timeout', 'client_reconnect_window', 'upload_timeout', 'maxretries', 'max_upload_retries',
    'retry_failed_uploads', 'allow_ip_changes', 'allow_session_resume', 'network_change_grace_period',
    'upload_pause_timeout', 'min_chunk_size', 'max_chunk_size', 'chunk_adaptation_algorithm',
    'concurrent_chunk_uploads', 'adaptive_compression', 'compression_threshold', 'networkevents',
  ].map((k): GoKeyRule => ({ key: `uploads.${k}`, kind: 'ignored', reason: NETWORK_TUNING })),

  // [workers]
  { key: 'workers.num_workers', kind: 'rename', to: 'workers.numworkers' },
  { key: 'workers.uploadqueuesize', kind: 'rename', to: 'workers.queue_size' },
  { key: 'workers.upload_queue_size', kind: 'rename', to: 'workers.queue_size' },
  { key: 'workers.autoscaling', kind: 'ignored', reason: WORKER_TUNING },
  { key: 'workers.auto_scaling', kind: 'ignored', reason: WORKER_TUNING },
  { key: 'workers.max_workers', kind: 'ignored', reason: WORKER_TUNING },

  // Spellings of the Go installer that Go 3.4 never read: what they meant is set elsewhere.
  ...['tls.enabled', 'tls.cert_file', 'tls.key_file'].map((key) => ({ key, kind: 'ignored' as const, reason: `${NOT_READ_BY_GO} (Go served plain HTTP); for HTTPS here set [server] tls_certificate and tls_key` })),
  ...['clamav.enabled', 'clamav.socket', 'clamav.timeout'].map((key) => ({ key, kind: 'ignored' as const, reason: `${NOT_READ_BY_GO} (it reads clamavenabled and clamavsocket), so nothing was scanned; to scan here set [scan] enabled and clamd` })),
  ...['redis.host', 'redis.port', 'redis.database', 'redis.password', 'redis.timeout'].map((key) => ({ key, kind: 'ignored' as const, reason: `${NOT_READ_BY_GO} (it reads redisaddr, redispassword and redisdbindex)` })),
  // [clamav] -> [scan] (docs/scanning.md); maxscansize and scanfileextensions: legacy.ts mapClamav.
  { key: 'clamav.clamavenabled', kind: 'rename', to: 'scan.enabled' },
  { key: 'clamav.clamavsocket', kind: 'rename', to: 'scan.clamd', note: 'a path, unix:/path or tcp://host:port, as go-clamd read it' },
  { key: 'clamav.numscanworkers', kind: 'rename', to: 'scan.concurrency' },
  { key: 'workers.numscanworkers', kind: 'rename', to: 'scan.concurrency' },

  // [timeouts]: Go's hard read/write deadlines would cut long uploads.
  ...['readtimeout', 'writetimeout', 'idletimeout', 'read_timeout', 'write_timeout', 'idle_timeout'].map(
    (k): GoKeyRule => ({
      key: `timeouts.${k}`,
      kind: 'ignored',
      reason: 'a hard timeout would cut long uploads; uploads here end on stalls (server.upload_stall_timeout) and per-size deadlines ([timeouts])',
    }),
  ),
  { key: 'timeouts.shutdown', kind: 'rename', to: 'server.graceful_shutdown_timeout' },
  { key: 'timeouts.shutdown_timeout', kind: 'rename', to: 'server.graceful_shutdown_timeout' },
  { key: 'timeouts.handshake_timeout', kind: 'ignored', reason: 'TLS ends at the reverse proxy' },
  { key: 'timeouts.keep_alive_timeout', kind: 'ignored', reason: 'idle keep-alive connections close after 65 s; TCP probes: [timeouts] keep_alive_probe_interval' },

  // [logging]
  { key: 'logging.file', kind: 'ignored', reason: 'logs are JSON lines on stdout: redirect them or read the journal' },
  { key: 'logging.max_size', kind: 'ignored', reason: 'log rotation belongs to the journal or logrotate' },
  { key: 'logging.max_backups', kind: 'ignored', reason: 'log rotation belongs to the journal or logrotate' },
  { key: 'logging.max_age', kind: 'ignored', reason: 'log rotation belongs to the journal or logrotate' },
  { key: 'logging.compress', kind: 'ignored', reason: 'log rotation belongs to the journal or logrotate' },
  { key: 'logging.log_*', kind: 'ignored', reason: 'requests, refusals (with their error code) and uploads are always logged' },

  // [metrics] (port: legacy.ts)
  { key: 'metrics.expose_*', kind: 'ignored', reason: 'every metric is always exposed' },
  { key: 'metrics.track_*', kind: 'ignored', reason: 'every metric is always exposed' },

  // [deduplication]
  { key: 'deduplication.enabled', kind: 'rename', to: 'finalize.dedup' },
  { key: 'deduplication.directory', kind: 'ignored', reason: 'duplicates are hard-linked inside the data dir' },
  { key: 'deduplication.maxsize', kind: 'ignored', reason: 'every published file takes part in dedup' },

  // [admin]: Go's admin API differs from this one.
  { key: 'admin.enabled', kind: 'ignored', reason: 'the admin API is on when [admin] token is set' },
  { key: 'admin.bind', kind: 'ignored', reason: 'the admin API listens on [admin] listen (or /admin on the main listener)' },
  { key: 'admin.path_prefix', kind: 'ignored', reason: 'the admin API is at /admin, or on [admin] listen' },
  { key: 'admin.auth', kind: 'ignored', reason: 'the admin API takes a bearer token: [admin] token' },

  // Restrictions Go enforced in whole sections.
  { key: 'iso.enabled', kind: 'unenforced', when: notOff, reason: 'Go stored files inside an ISO container; here they are plain files in the data dir' },
  { key: 'iso.*', kind: 'ignored', reason: NO_EFFECT_WITHOUT_SWITCH },
  { key: 'validation.check_magic_bytes', kind: 'unenforced', when: notOff, reason: 'content sniffing of uploads is not available; served types follow a fixed policy (images, audio, video, text inline; the rest as attachment)' },
  { key: 'validation.allowed_types', kind: 'unenforced', when: nonEmpty, reason: 'uploads are not checked by content type here; [uploads] allowed_extensions checks names' },
  { key: 'validation.blocked_types', kind: 'unenforced', when: nonEmpty, reason: 'uploads are not checked by content type here; [uploads] blocked_extensions checks names' },
  { key: 'validation.*', kind: 'ignored', reason: NO_EFFECT_WITHOUT_SWITCH },
  { key: 'quotas.enabled', kind: 'unenforced', when: notOff, reason: 'per-user quotas are not available' },
  { key: 'quotas.*', kind: 'ignored', reason: NO_EFFECT_WITHOUT_SWITCH },
  { key: 'rate_limit.enabled', kind: 'unenforced', when: notOff, reason: 'per-user request rate limits are not available' },
  { key: 'rate_limit.*', kind: 'ignored', reason: NO_EFFECT_WITHOUT_SWITCH },
  { key: 'audit.enabled', kind: 'unenforced', when: notOff, reason: 'a separate audit log is not available (every request is one log line)' },
  { key: 'audit.*', kind: 'ignored', reason: NO_EFFECT_WITHOUT_SWITCH },
  { key: 'key_rotation.enabled', kind: 'unenforced', when: notOff, reason: 'automatic secret rotation is not available ([security] previous_secrets supports manual rotation)' },
  { key: 'key_rotation.*', kind: 'ignored', reason: NO_EFFECT_WITHOUT_SWITCH },

  // Sections with no effect on what is accepted or served.
  { key: 'downloads.*', kind: 'ignored', reason: 'Go 3.4 enforces none of these for downloads; published files are served with Range support' },
  { key: 'versioning.*', kind: 'ignored', reason: 'files are never overwritten here (a taken slot answers 409), so there are no versions to keep' },
  { key: 'network_resilience.*', kind: 'ignored', reason: NETWORK_TUNING },
  { key: 'network_interfaces.*', kind: 'ignored', reason: NETWORK_TUNING },
  { key: 'handoff.*', kind: 'ignored', reason: NETWORK_TUNING },
  { key: 'client_network.*', kind: 'ignored', reason: NETWORK_TUNING },
  { key: 'client_network_support.*', kind: 'ignored', reason: NETWORK_TUNING },
  { key: 'session_store.*', kind: 'ignored', reason: `${NOT_READ_BY_GO}; a tus upload URL is its own session` },
  { key: 'sessionstore.*', kind: 'ignored', reason: `${NOT_READ_BY_GO}; a tus upload URL is its own session` },
  { key: 'performance.*', kind: 'ignored', reason: 'buffer tuning of the Go server' },
  { key: 'compression.*', kind: 'ignored', reason: 'transfer compression is left to the reverse proxy' },
  { key: 'metadata.*', kind: 'ignored', reason: 'upload metadata lives in the data dir' },
  { key: 'ejabberd.*', kind: 'ignored', reason: "settings of the ejabberd module, not of the server: set them in ejabberd's config" },
  { key: 'build.*', kind: 'ignored', reason: 'build metadata: see hmac-file-server --version' },
  { key: 'file.*', kind: 'ignored', reason: 'an empty section in Go 3.x' },
];
