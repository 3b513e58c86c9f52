import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration, parseListen, parseSize, parseSizeOrPercent } from '../../src/config/index.js';

describe('parseDuration', () => {
  const ok: [input: string, ms: number][] = [
    ['300s', 300_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['0s', 0],
    ['1.5s', 1500],
    ['1d', 86_400_000],
    ['1m30s', 90_000],
    ['1s500ms', 1500],
    ['  5m  ', 300_000], // surrounding whitespace is trimmed
    ['5M', 300_000], // units are case-insensitive: "M" is minutes, not months or mega
    ['10MS', 10],
  ];
  for (const [input, ms] of ok) it(`${JSON.stringify(input)} -> ${ms} ms`, () => assert.equal(parseDuration(input), ms));

  const bad: [name: string, input: unknown][] = [
    ['bare number 30', 30],
    ['numeric string "30"', '30'],
    ['"abc"', 'abc'],
    ['empty string', ''],
    ['whitespace only', '   '],
    ['space between number and unit "5 m"', '5 m'],
    ['space between parts "1h 30m"', '1h 30m'],
    ['trailing number "1m30"', '1m30'],
    ['unit alone "s"', 's'],
    ['unknown unit "5w"', '5w'],
    ['negative "-5s"', '-5s'],
    ['two dots "1.5.5s"', '1.5.5s'],
    ['null', null],
    ['boolean', true],
    ['array', ['5s']],
  ];
  for (const [name, input] of bad) it(`refuses ${name}`, () => assert.throws(() => parseDuration(input), Error));

  it('the error message names the expected form', () => {
    assert.throws(() => parseDuration('30'), /not a duration.*unit/);
  });
});

describe('parseSize', () => {
  const ok: [input: unknown, bytes: number][] = [
    ['10MB', 10e6],
    ['1GiB', 2 ** 30],
    ['512', 512],
    [1048576, 1048576],
    [0, 0],
    ['1.5KiB', 1536],
    ['1.5KB', 1500],
    ['10mb', 10e6],
    ['10 MB', 10e6],
    ['1k', 1000],
    ['2G', 2e9],
    ['1TiB', 2 ** 40],
    ['100B', 100],
    ['0', 0],
  ];
  for (const [input, bytes] of ok) it(`${JSON.stringify(input)} -> ${bytes}`, () => assert.equal(parseSize(input), bytes));

  const bad: [name: string, input: unknown][] = [
    ['-1', -1],
    ['"-1"', '-1'],
    ['"10XB"', '10XB'],
    ['"abc"', 'abc'],
    ['1.5 (fractional number)', 1.5],
    ['empty string', ''],
    ['"1e3"', '1e3'],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['unsafe integer', 2 ** 53],
    ['too large "99999999TiB"', '99999999TiB'],
    ['boolean', true],
    ['null', null],
  ];
  for (const [name, input] of bad) it(`refuses ${name}`, () => assert.throws(() => parseSize(input), Error));
});

describe('parseListen', () => {
  const ok: [input: unknown, host: string, port: number][] = [
    ['127.0.0.1:8080', '127.0.0.1', 8080],
    ['[::1]:9000', '::1', 9000],
    ['[::]:80', '::', 80],
    [':8080', '', 8080],
    ['8080', '', 8080],
    [8080, '', 8080],
    ['localhost:3000', 'localhost', 3000],
    ['0.0.0.0:0', '0.0.0.0', 0],
    ['  10.0.0.1:65535  ', '10.0.0.1', 65535],
  ];
  for (const [input, host, port] of ok) {
    it(`${JSON.stringify(input)} -> host ${JSON.stringify(host)} port ${port}`, () => assert.deepEqual(parseListen(input), { host, port }));
  }

  const bad: [name: string, input: unknown][] = [
    ['"host" (no port)', 'host'],
    ['port out of range "1.2.3.4:99999"', '1.2.3.4:99999'],
    ['port 65536', '1.2.3.4:65536'],
    ['six-digit port', '123456'],
    ['empty port "host:"', 'host:'],
    ['unbracketed IPv6 "::1:80"', '::1:80'],
    ['bracketed IPv6 without port', '[::1]'],
    ['negative port', 'host:-1'],
    ['empty string', ''],
    ['boolean', true],
    ['null', null],
  ];
  for (const [name, input] of bad) it(`refuses ${name}`, () => assert.throws(() => parseListen(input), /not a listen address|expected "host:port"/));
});

describe('formatDuration', () => {
  const cases: [ms: number, text: string][] = [
    [7_200_000, '2h'],
    [300_000, '5m'],
    [90_000, '90s'],
    [0, '0s'],
    [250, '250ms'],
    [1500, '1500ms'],
  ];
  for (const [ms, text] of cases) {
    it(`${ms} -> ${text} (and back)`, () => {
      assert.equal(formatDuration(ms), text);
      assert.equal(parseDuration(text), ms);
    });
  }
});

describe('parseSizeOrPercent (storage.min_free_space)', () => {
  const ok: [input: unknown, expected: ReturnType<typeof parseSizeOrPercent>][] = [
    ['64MiB', { bytes: 64 * 2 ** 20 }],
    [0, { bytes: 0 }],
    ['2%', { percent: 2 }],
    [' 0.5 % ', { percent: 0.5 }],
    ['100%', { percent: 100 }],
  ];
  for (const [input, expected] of ok) it(`${JSON.stringify(input)}`, () => assert.deepEqual(parseSizeOrPercent(input), expected));
  for (const bad of ['150%', '-1%', 'x%', '%', 'lots', -1, true]) {
    it(`${JSON.stringify(bad)} is refused`, () => assert.throws(() => parseSizeOrPercent(bad)));
  }
});
