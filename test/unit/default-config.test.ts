/**
 * config/default.toml documents every key with its default: checked against the schema so the two
 * cannot drift (a new key without its line here fails; so does a default changed in one place).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseTomlText, resolveConfig } from '../../src/config/index.js';
import { knownKeys } from '../../src/config/schema.js';
import { REPO_ROOT } from '../helpers/server.js';

/** Test-only keys, set through the environment by the crash-recovery tests. */
const UNDOCUMENTED_SECTIONS = new Set(['testing']);

const text = readFileSync(join(REPO_ROOT, 'config/default.toml'), 'utf8');
const lines = text.split('\n');

/** The lines of each `[section]`, in order. */
function sections(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of lines) {
    const header = /^\[([a-z0-9_.]+)\]\s*$/.exec(line); // [storage.s3]: a nested table, a key of [storage]
    if (header) out.set(header[1]!, (current = []));
    else current?.push(line);
  }
  return out;
}

describe('config/default.toml', () => {
  it('spells out exactly the defaults: reading it gives the same config as an empty file, with no warning', () => {
    const fromFile = resolveConfig(parseTomlText(text, 'config/default.toml'), {});
    assert.deepEqual(fromFile.warnings, []);
    assert.deepEqual(fromFile.config, resolveConfig({}, {}).config);
  });

  it('has every section of the schema, in its own [section]', () => {
    const documented = [...sections().keys()].filter((s) => !s.includes('.')).sort();
    const schema = [...knownKeys().keys()].filter((s) => !UNDOCUMENTED_SECTIONS.has(s)).sort();
    assert.deepEqual(documented, schema);
  });

  for (const [section, keys] of knownKeys()) {
    if (UNDOCUMENTED_SECTIONS.has(section)) continue;
    it(`[${section}]: every key is set (or shown commented out when it has no value) under a one-line comment`, () => {
      const body = sections().get(section) ?? [];
      for (const key of keys) {
        const table = sections().get(`${section}.${key}`);
        if (table !== undefined) {
          assert.ok(table.some((l) => /^[a-z_]+ = \S/.test(l)), `[${section}.${key}] lists its keys`);
          continue;
        }
        const at = body.findIndex((l) => new RegExp(`^(# )?${key} = \\S`).test(l));
        assert.ok(at >= 0, `${section}.${key} is missing from config/default.toml`);
        const line = body[at]!;
        const commented = line.startsWith('# ') || /\s#\s\S/.test(line) || (at > 0 && body[at - 1]!.startsWith('#'));
        assert.ok(commented, `${section}.${key} has no comment saying what it does`);
      }
    });
  }
});
