/**
 * Child process of finalize-s3-crash.test.ts: a FinalizationService on storage.backend = "s3"
 * with testing.crash_at armed, handed one PUT whose body is already an incoming object. It kills
 * itself with SIGKILL at the named step (exit by signal); reaching the end without the crash
 * exits 3. Input: HFS_S3_CHILD (JSON).
 */
import { resolveConfig } from '../../src/config/index.js';
import { finalizationFromConfig } from '../../src/finalize/index.js';
import { s3StoresFromConfig } from '../../src/finalize/s3-stores.js';
import { createLogger } from '../../src/observability/index.js';
import { objectSource } from '../../src/storage/s3.js';

interface ChildInput {
  readonly s3: Record<string, unknown>;
  readonly dataDir: string;
  readonly crashAt: string;
  readonly upload: { uploadId: string; slotPath: string; key: string; size: number; sha256?: string };
}

const input = JSON.parse(process.env['HFS_S3_CHILD'] ?? '{}') as ChildInput;
const { config } = resolveConfig({ storage: { backend: 's3', data_dir: input.dataDir, s3: input.s3 }, finalize: { dedup: true }, testing: { crash_at: input.crashAt } }, {});
const stores = s3StoresFromConfig(config);
const log = createLogger({ level: 'warn', format: 'json' }, process.stderr);
const service = finalizationFromConfig(config, { published: stores.published, tusStore: stores.tusStore, content: stores.content, sources: stores.sources, log });
await service.start();
const { uploadId, slotPath, key, size, sha256 } = input.upload;
await service.finalize({
  protocol: 'put',
  uploadId,
  slotPath,
  contentType: 'application/octet-stream',
  size,
  source: objectSource(stores.client, config.storage.s3.bucket, key, size),
  ...(sha256 !== undefined && { sha256 }),
});
// Not killed at admission: the workers reach the crash point (the process dies there), or this ends it.
setTimeout(() => process.exit(3), 60_000);
