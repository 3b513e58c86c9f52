import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface SecretSource {
  secret: string;
  /** Where it came from: 'config' or the file it was read from / written to. */
  origin: 'config' | { file: string; generated: boolean; loosePermissions: boolean };
}

export const SECRET_FILE = 'secret';

/**
 * The configured secret, or the one stored in the data dir, or a new 256-bit one written there
 * with mode 0600 on first start. Never returns a secret shorter than one character.
 */
export async function resolveSecret(configured: string, dataDir: string): Promise<SecretSource> {
  if (configured !== '') return { secret: configured, origin: 'config' };
  const file = join(dataDir, SECRET_FILE);
  const stored = await readStoredSecret(dataDir);
  if (stored !== null) {
    const mode = (await stat(file)).mode & 0o777;
    return { secret: stored, origin: { file, generated: false, loosePermissions: (mode & 0o077) !== 0 } };
  }
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  await chmod(file, 0o600); // an existing empty file keeps its old mode otherwise
  return { secret, origin: { file, generated: true, loosePermissions: false } };
}

/** The secret kept in the data dir by an earlier start, or null when there is none. */
export async function readStoredSecret(dataDir: string): Promise<string | null> {
  try {
    const secret = (await readFile(join(dataDir, SECRET_FILE), 'utf8')).trim();
    return secret === '' ? null : secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
