/**
 * A RadosGW for e2e tests that need to reach below the server (stop the gateway, put a proxy in
 * front of it, change an object): the gateway, an S3 client on it, and the `[storage]` TOML of a
 * server on a new bucket of its own. Suites that only upload use backends.ts instead.
 */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startRadosGw, type RadosGw } from './rgw.js';

export interface RgwForServers {
  readonly rgw: RadosGw;
  readonly client: S3Client;
  /** A new bucket and the TOML serving from it below key prefix `hfs/`; `endpoint` defaults to the gateway (a proxy's URL otherwise). */
  serverConfig(options?: { endpoint?: string; s3Extra?: string; extra?: string }): Promise<{ toml: string; bucket: string; prefix: string }>;
  stop(): Promise<void>;
}

export async function startRgwForServers(): Promise<RgwForServers> {
  const rgw = await startRadosGw();
  const client = new S3Client({
    region: rgw.region,
    endpoint: rgw.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    rgw,
    client,
    async serverConfig(options = {}) {
      const bucket = `hfs-${randomBytes(6).toString('hex')}`;
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      const toml = [
        '[storage]',
        'backend = "s3"',
        '[storage.s3]',
        `bucket = "${bucket}"`,
        `endpoint = "${options.endpoint ?? rgw.endpoint}"`,
        'force_path_style = true',
        `access_key_id = "${rgw.accessKeyId}"`,
        `secret_access_key = "${rgw.secretAccessKey}"`,
        'key_prefix = "hfs/"',
        'part_size = "5MiB"',
        options.s3Extra ?? '',
        options.extra ?? '',
        '',
      ].join('\n');
      return { toml, bucket, prefix: 'hfs/' };
    },
    async stop() {
      client.destroy();
      await rgw.stop();
    },
  };
}
