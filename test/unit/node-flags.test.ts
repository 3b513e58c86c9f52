/**
 * The server's Node flags (src/node-flags.ts) reach `npm start`. (The bin keeps a plain
 * `#!/usr/bin/env node`: `env -S` is missing from BusyBox, so Alpine images could not start it;
 * started that way the server warns, test/e2e/logs-and-startup.test.ts.)
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

  it('names the flags a process was started without', () => {
    assert.deepEqual(missingServerNodeFlags([]), [...SERVER_NODE_FLAGS]);
    assert.deepEqual(missingServerNodeFlags(['--inspect', ...SERVER_NODE_FLAGS]), []);
  });
});
