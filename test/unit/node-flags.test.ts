/**
 * The server's Node flags (src/node-flags.ts) reach every way of starting it that this
 * repository ships: `npm start` and the `hmac-file-server` bin's shebang.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { missingServerNodeFlags, SERVER_NODE_FLAGS } from '../../src/node-flags.js';
import { REPO_ROOT } from '../helpers/server.js';

describe('server Node flags', () => {
  it('npm start passes every flag to node', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const start = pkg.scripts.start!.split(/\s+/);
    assert.equal(start[0], 'node');
    assert.deepEqual(missingServerNodeFlags(start), []);
    assert.ok(start.indexOf('dist/src/cli.js') > Math.max(...SERVER_NODE_FLAGS.map((f) => start.indexOf(f))), 'flags come before the script');
  });

  it("the bin's shebang passes every flag to node (env -S splits them)", () => {
    const shebang = readFileSync(join(REPO_ROOT, 'src/cli.ts'), 'utf8').split('\n')[0]!;
    assert.match(shebang, /^#!\/usr\/bin\/env -S node /);
    assert.deepEqual(missingServerNodeFlags(shebang.split(/\s+/)), []);
  });

  it('names the flags a process was started without', () => {
    assert.deepEqual(missingServerNodeFlags([]), [...SERVER_NODE_FLAGS]);
    assert.deepEqual(missingServerNodeFlags(['--inspect', ...SERVER_NODE_FLAGS]), []);
  });
});
