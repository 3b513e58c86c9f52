/**
 * A throw-away Ceph cluster answering S3 on 127.0.0.1 (field-notes.md, "A real S3 server on this
 * machine: Ceph RadosGW"): one mon, one memstore OSD and radosgw, each in the foreground under
 * startService, in a temp dir of their own. Start it once per test file (about 2 s); every test
 * uses its own bucket or key prefix. Debian packages: ceph-mon ceph-osd radosgw ceph-common
 * (scripts/ensure-system-deps.sh).
 *
 * The daemons run with `-d` (foreground like `-f`, and the log on stderr) so that startService
 * sees their ready lines instead of polling.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { freePort } from './ops.js';
import { missingBinaryError, startService, withTimeout, type RunningService } from './service.js';

const run = promisify(execFile);

/** The fixed keys of the one S3 user (`radosgw-admin user create`). */
export const RGW_ACCESS_KEY = 'HFSTESTACCESSKEY000';
export const RGW_SECRET_KEY = 'hfs-test-secret-key-not-a-secret-0000000';
const RGW_NAME = 'client.rgw.a';
/** Each step (a ceph command, a daemon's ready line) has this long. */
const STEP_TIMEOUT_MS = 30_000;

export interface RadosGw {
  /** `http://127.0.0.1:PORT`, for the S3 client's `endpoint` (path-style). */
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** How long start-up took, for the report (not asserted anywhere). */
  readonly startMs: number;
  /** Kills radosgw only (mon and OSD keep every object and multipart upload): S3 is unreachable. */
  stopGateway(): Promise<void>;
  /** Starts radosgw again on the same port (under a second); resolves once it serves. */
  startGateway(): Promise<void>;
  /** Runs `radosgw-admin` on this cluster (e.g. `quota set …`); resolves its stdout. */
  admin(args: string[]): Promise<string>;
  /** Stops every daemon and removes the temp dir; the data is gone. */
  stop(): Promise<void>;
}

export interface RadosGwOptions {
  /** The OSD's RAM cap (memstore keeps every object in memory); a full OSD blocks writes. Default 1 GiB. */
  readonly memstoreBytes?: number;
}

export async function startRadosGw(options: RadosGwOptions = {}): Promise<RadosGw> {
  const t0 = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'hfs-rgw-'));
  const [monPort, rgwPort] = [await freePort(), await freePort()];
  const fsid = randomUUID();
  const conf = join(dir, 'ceph.conf');
  const env = { ...process.env, CEPH_CONF: conf };
  const daemons: RunningService[] = [];
  let gateway: RunningService | null = null;

  const ceph = async (cmd: string, pkg: string, args: string[]): Promise<string> => {
    try {
      const { stdout } = await withTimeout(run(cmd, args, { env, timeout: STEP_TIMEOUT_MS }), STEP_TIMEOUT_MS + 1_000, `${cmd} ${args[0]}`);
      return stdout;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw missingBinaryError(cmd, pkg);
      throw err;
    }
  };
  const daemon = (cmd: string, pkg: string, args: string[], ready: RegExp) =>
    startService({ cmd, pkg, args: [...args, '-d'], ready, readyTimeoutMs: STEP_TIMEOUT_MS, spawnOptions: { env } });
  const startGateway = async () => {
    gateway = await daemon('radosgw', 'radosgw', ['-n', RGW_NAME], /frontend listening on/);
    daemons.push(gateway);
  };
  // The cluster is a memstore: nothing to flush, so SIGKILL (a SIGTERMed OSD waits for the mon).
  const kill = async (s: RunningService) => {
    s.proc.kill('SIGKILL');
    await s.exited;
  };

  try {
    await mkdir(join(dir, 'mon'));
    await mkdir(join(dir, 'osd'));
    await writeFile(conf, cephConf({ dir, fsid, monPort, rgwPort, memstoreBytes: options.memstoreBytes ?? 1024 * 1024 * 1024 }));
    // mkfs still wants a `mon.` key, though every auth is off.
    await ceph('ceph-authtool', 'ceph-common', ['--create-keyring', join(dir, 'keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    // --addv: with a non-default port, --add would write a v2 address the mon host line must match.
    await ceph('monmaptool', 'ceph-base', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, join(dir, 'monmap')]);
    await ceph('ceph-mon', 'ceph-mon', ['--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--keyring', join(dir, 'keyring')]);
    daemons.push(await daemon('ceph-mon', 'ceph-mon', ['-i', 'a'], /mon\.a is new leader/));

    const osdUuid = randomUUID();
    const osdId = (await ceph('ceph', 'ceph-common', ['osd', 'new', osdUuid])).trim();
    await ceph('ceph-osd', 'ceph-osd', ['--mkfs', '-i', osdId, '--osd-uuid', osdUuid]);
    daemons.push(await daemon('ceph-osd', 'ceph-osd', ['-i', osdId], /state: booting -> active/));

    await startGateway();
    await ceph('radosgw-admin', 'ceph-common', [
      'user', 'create', '--uid=hfs-test', '--display-name=hfs test',
      `--access-key=${RGW_ACCESS_KEY}`, `--secret-key=${RGW_SECRET_KEY}`,
    ]);
  } catch (err) {
    await Promise.all(daemons.map(kill));
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    endpoint: `http://127.0.0.1:${rgwPort}`,
    region: 'us-east-1',
    accessKeyId: RGW_ACCESS_KEY,
    secretAccessKey: RGW_SECRET_KEY,
    startMs: performance.now() - t0,
    async stopGateway() {
      if (gateway === null) return;
      const g = gateway;
      gateway = null;
      daemons.splice(daemons.indexOf(g), 1);
      await kill(g);
    },
    async startGateway() {
      if (gateway !== null) return;
      await startGateway();
    },
    admin: (args) => ceph('radosgw-admin', 'ceph-common', args),
    async stop() {
      // radosgw first, then the OSD, then the mon: each one's clients go before it does.
      for (const s of daemons.reverse()) await kill(s);
      daemons.length = 0;
      gateway = null;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function cephConf(o: { dir: string; fsid: string; monPort: number; rgwPort: number; memstoreBytes: number }): string {
  return `[global]
fsid = ${o.fsid}
mon host = [v2:127.0.0.1:${o.monPort}]
auth cluster required = none
auth service required = none
auth client required = none
osd objectstore = memstore
# The RAM cap of the OSD (memstore keeps every object in memory).
memstore device bytes = ${o.memstoreBytes}
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
# From about 13 s of start-up to about 2 s.
paxos propose interval = 0.01
paxos min wait = 0.01
run dir = ${o.dir}/run
admin socket = ${o.dir}/run/$name.asok
log file = ${o.dir}/$name.log
keyring = ${o.dir}/keyring
# Level 4 logs "frontend listening on", the ready line.
debug rgw = 4/4
debug ms = 0/0

[mon.a]
mon data = ${o.dir}/mon

[osd.0]
osd data = ${o.dir}/osd

[${RGW_NAME}]
rgw frontends = beast endpoint=127.0.0.1:${o.rgwPort}
rgw data = ${o.dir}/rgw
# Without it radosgw never authenticates to the mon (get_initial_auth_request returned -13).
ms mon client mode = crc secure
`;
}
