/**
 * The listener's lifecycle: the main HTTP server (timeouts, 100-continue, TCP keep-alive, open
 * sockets), the admin and metrics side listeners, the expiry sweep, and the graceful stop:
 * refuse new uploads, let running ones finish within the grace period, end the rest (bytes
 * kept), close, then drain finalization.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Context } from 'koa';
import type Koa from 'koa';
import type { Config } from '../config/index.js';
import { AppError, ERRORS } from '../errors.js';
import type { UploadLifecycle } from '../intake/index.js';
import { metrics, type Logger } from '../observability/index.js';
import { PerClientCount } from '../transfer/index.js';
import { answerClientErrors, answerConnect } from './client-errors.js';
import { lingerAfterLastAnswer } from './lingering-close.js';
import { limitConnections } from './connection-limit.js';
import { inOrderPerConnection, MAX_PIPELINED } from './pipelining.js';
import { trackResponses } from './response-drain.js';
import { serveMetrics } from './router.js';
import { addressOf, sideListener } from './side-services.js';

export interface RunningApp {
  /** Where the listener is bound, e.g. http://0.0.0.0:8080. */
  listenUrl: string;
  /** What clients are told: [server] public_url, else the listen URL. */
  baseUrl: string;
  tusUrl: string;
  uploadUrl: string;
  /** Refuses new uploads, lets running ones go on for up to `graceMs`, then ends them (bytes kept) and closes. */
  stop(graceMs?: number): Promise<void>;
}

/** Where a running server can be reached from this host (for the server lock file). */
export interface LocalAddresses {
  readonly baseUrl: string;
  readonly adminUrl: string | null;
}

export interface ListenerParts {
  readonly config: Config;
  readonly log: Logger;
  readonly koa: Koa;
  /** The admin API, for its own listener when [admin] listen is set. */
  readonly admin: ((ctx: Context) => Promise<void>) | null;
  readonly lifecycle: UploadLifecycle;
  /** Started once the ports are bound, before any request is handled (recovery), stopped once the listener closed (finalization). */
  readonly background: { start(): Promise<void>; stop(graceMs: number): Promise<void> };
  /** Removes expired unfinished uploads; run every min(expiry, 1 h) when uploads expire. */
  readonly sweepExpired: () => Promise<number>;
  /** Listening: announce it (the server lock file); called again with nothing on stop. */
  readonly announce: { up(addresses: LocalAddresses): Promise<void>; down(): Promise<void> };
}

export async function startListener(parts: ListenerParts): Promise<RunningApp> {
  const { config, log, koa, admin, lifecycle } = parts;
  // Logged at most once a minute: a flood of such connections must not flood the log as well.
  let pipeliningWarnedAtMs = -Infinity;
  const handler = inOrderPerConnection(koa.callback(), (req) => {
    if (Date.now() - pipeliningWarnedAtMs < 60_000) return;
    pipeliningWarnedAtMs = Date.now();
    log.warn({ client: req.socket.remoteAddress, limit: MAX_PIPELINED }, 'Connection closed: too many pipelined requests waiting for their answers');
  });
  // The ports are bound before the queue is opened, so a start that cannot listen leaves the
  // queue untouched; requests that arrive meanwhile wait until recovery is done (issue 9.7).
  let recovered = false;
  let settleRecovery!: (err?: unknown) => void;
  const recovery = new Promise<void>((resolve, reject) => (settleRecovery = (err) => (err === undefined ? resolve() : reject(err))));
  recovery.catch(() => {}); // the waiting requests see a failure; nothing else must
  const gated = (req: IncomingMessage, res: ServerResponse) => {
    lingerAfterLastAnswer(req); // a closing answer does not reset a client still sending its body
    if (recovered) handler(req, res);
    else void recovery.then(() => handler(req, res), () => res.destroy());
  };
  const options: ServerOptions = {
    // Node's defaults would cut long uploads (requestTimeout is 300 s): no overall request
    // deadline here; a dead client is caught by the socket idle timeout below.
    requestTimeout: 0,
    headersTimeout: config.server.headersTimeoutMs,
    // Node checks the headers deadline on this interval (30 s by default): a short deadline needs a short interval.
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(config.server.headersTimeoutMs / 4))),
    keepAliveTimeout: 65_000,
    requireHostHeader: false, // answered by requestTarget, as JSON with a log line
  };
  const { tls } = config.server;
  // [server] tls_certificate/tls_key: HTTPS on the same listener (an https.Server is an
  // http.Server underneath: every event and timeout below applies, the sockets it reports are
  // the TCP ones under TLS). HTTP/1.1 only, announced by ALPN.
  const server: HttpServer = tls
    ? createHttpsServer({ ...options, ...readTls(tls), ALPNProtocols: ['http/1.1'] }, gated)
    : createServer(options, gated);
  // Idle socket (no byte either way) for this long: destroyed. Only for requests that no
  // watchdog owns: upload bodies, permit waits and lock waits switch it off for their duration
  // (intake/body-guard.ts, tus-endpoint.ts), so it never fires before their own timers (issue 9.5).
  server.setTimeout(config.server.uploadStallMs);
  if (config.server.uploadStallMs < config.tus.lockDrainMs) {
    log.warn({ uploadStallMs: config.server.uploadStallMs, lockDrainMs: config.tus.lockDrainMs }, 'upload_stall_timeout is shorter than lock_drain_timeout');
  }
  const responses = trackResponses(server);
  // Answer `Expect: 100-continue` only after the request is authorized (see allowBody).
  server.on('checkContinue', (req, res) => {
    (req as { expectsContinue?: boolean }).expectsContinue = true;
    gated(req, res);
  });
  // Any other expectation: requestTarget answers 417 as JSON (Node's own answer is bare, unlogged).
  server.on('checkExpectation', gated);
  answerClientErrors(server, log);
  answerConnect(server, gated);
  // Every code has its series from the start (at 0), so a rate or an alert on one has data before its first error.
  for (const code of Object.keys(ERRORS)) metrics.errorsByCode.inc({ code }, 0);
  const sockets = new Set<Socket>();
  const connectionLimit = limitConnections(server, config.server.connectionPoolSize, log, () => sockets.size);
  const perClient = limitClientConnections(config, log);
  server.on('connection', (socket: Socket) => {
    const leave = perClient(socket);
    if (leave === null) return;
    if (!connectionLimit.admit(socket)) return leave();
    // Probes find peers that vanished without FIN/RST (WiFi -> 4G). Node sets the idle time;
    // the probe interval and count come from the kernel (net.ipv4.tcp_keepalive_intvl/_probes).
    socket.setKeepAlive(true, config.timeouts.keepAliveProbeIntervalMs);
    sockets.add(socket);
    metrics.openConnections.inc();
    socket.once('close', () => {
      leave();
      sockets.delete(socket);
      metrics.openConnections.dec();
      connectionLimit.onClose();
    });
  });
  const side: HttpServer[] = [];
  try {
    await listen(server, config.server.listen.host, config.server.listen.port, config.server.listenBacklog);
    if (admin && config.admin.listen) {
      side.push(await sideListener(config.admin.listen, log, (ctx) => recovery.then(() => admin(ctx))));
      log.info({ address: addressOf(side.at(-1)!) }, 'Admin API listening');
    }
    if (config.metrics.enabled && config.metrics.listen) {
      side.push(await sideListener(config.metrics.listen, log, async (ctx) => {
        if (ctx.path !== config.metrics.path || ctx.method !== 'GET') throw new AppError('ERR_NOT_FOUND');
        await serveMetrics(ctx);
      }));
      log.info({ address: addressOf(side.at(-1)!) }, 'Metrics listening');
    }
    await parts.background.start(); // recovers the queue and reconciles files before any request is handled
    recovered = true;
    settleRecovery();
  } catch (err) {
    settleRecovery(err ?? new Error('start failed'));
    for (const x of [server, ...side]) x.close();
    for (const s of sockets) s.destroy();
    throw err;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const scheme = tls ? 'https' : 'http';
  const listenUrl = `${scheme}://${host}:${address.port}`;
  const baseUrl = config.server.publicUrl || listenUrl;
  // ops: server lock file, so offline commands refuse this data dir and online ones find the admin API.
  const localUrl = `${scheme}://${address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '[::1]' : host}:${address.port}`;
  const adminUrl = !admin ? null : config.admin.listen ? addressOf(side[0]!) : `${localUrl}/admin`;
  await parts.announce.up({ baseUrl: localUrl, adminUrl });
  const sweep = () =>
    parts.sweepExpired().then(
      (n) => n > 0 && log.info({ removed: n }, 'Expired unfinished uploads removed'),
      (err: unknown) => log.warn({ err }, 'Expired upload cleanup failed'),
    );
  const expiry = config.tus.expirationMs > 0 ? setInterval(sweep, Math.min(config.tus.expirationMs, 3_600_000)).unref() : undefined;
  const { tusPath, uploadPath } = config.server;
  return {
    listenUrl,
    baseUrl,
    tusUrl: `${baseUrl}${tusPath}`,
    uploadUrl: `${baseUrl}${uploadPath}`,
    async stop(graceMs = 0) {
      clearInterval(expiry);
      // New uploads are refused (503) from here; running ones may finish within graceMs.
      // The listener stays open meanwhile, so late clients get a 503 + Retry-After rather
      // than a refused connection, and HEAD/GET keep working.
      lifecycle.state = 'draining';
      const left = await lifecycle.waitIdle(graceMs);
      if (left > 0) {
        log.warn({ uploads: left }, 'Shutdown grace period over: ending running uploads, received bytes kept');
        lifecycle.endAll('shutdown');
        await lifecycle.waitIdle(config.tus.lockDrainMs + 2_000);
      }
      lifecycle.state = 'stopped';
      for (const x of side) x.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Every request that completed before the grace period ended gets its answer (a PUT's
      // 201) before its socket closes (issue 9.6); idle keep-alive sockets close at once.
      server.closeIdleConnections();
      const unanswered = await responses.waitAnswered(RESPONSE_DRAIN_MS);
      if (unanswered > 0) log.warn({ requests: unanswered }, 'Shutdown: closing connections with requests still unanswered');
      for (const s of sockets) s.destroy();
      await closed;
      // No upload can complete any more: drain the finalization workers (unfinished jobs stay queued).
      await parts.background.stop(Math.min(graceMs, 10_000));
      await parts.announce.down();
    },
  };
}

/**
 * [limits] max_connections_per_client on the main listener: a function counting each new
 * connection, which closes one over the client's cap at once (null) and otherwise returns what to
 * call when it closes. Without it one client, with a few hundred idle or trickling connections,
 * fills connection_pool_size and every other client is refused (issue 9). An IPv6 client counts
 * by its prefix. Not applied behind a trusted proxy: every connection then comes from the proxy,
 * which must bound its clients. Logged at most once a minute (the count is in the metric).
 */
function limitClientConnections(config: Config, log: Logger): (socket: Socket) => (() => void) | null {
  const max = config.limits.maxConnectionsPerClient;
  if (max === 0 || config.server.trustProxy) return () => () => {};
  const clients = new PerClientCount(max, config.limits.ipv6ClientPrefix);
  let loggedAtMs = -Infinity;
  metrics.connectionsRefused.inc({ limit: 'client' }, 0);
  return (socket) => {
    const leave = clients.enter(socket.remoteAddress ?? 'unknown');
    if (leave !== null) return leave;
    metrics.connectionsRefused.inc({ limit: 'client' });
    socket.destroy();
    if (Date.now() - loggedAtMs >= 60_000) {
      loggedAtMs = Date.now();
      log.warn({ limit: max, client: socket.remoteAddress }, 'Client connection limit reached: its new connections are refused ([limits] max_connections_per_client)');
    }
    return null;
  };
}

/** How long shutdown waits for answers still being written once no body streams any more. */
const RESPONSE_DRAIN_MS = 10_000;

/** The PEM files of [server] tls_certificate/tls_key; a file that cannot be read fails the start naming its key. */
function readTls(tls: { certificateFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  const read = (file: string, key: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`server.${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  return { cert: read(tls.certificateFile, 'tls_certificate'), key: read(tls.keyFile, 'tls_key') };
}

function listen(server: HttpServer, host: string, port: number, backlog: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: host || undefined, port, backlog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
