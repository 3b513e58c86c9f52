// `npm start` runs this first: it builds only when dist/ is missing or older than a source file
// (e.g. after a `git pull` without `npm install`), so a start normally costs no compilation.
// The regular build happens once, at `npm install` (the "prepare" script).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const built = (() => {
  try {
    return statSync('dist/src/cli.js').mtimeMs;
  } catch {
    return -1;
  }
})();

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

const stale = built < 0 || Math.max(newestSource('src'), statSync('tsconfig.json').mtimeMs) > built;
if (stale) {
  process.stderr.write(built < 0 ? 'dist/ is missing: building once\n' : 'sources changed since the last build: rebuilding\n');
  const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  process.exit(tsc.status ?? 1);
}
