/** Operator output: tables, sizes, ages, the progress bar, and the PromQL helpers the dashboard test uses. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressBar, renderBar } from '../../src/ops/cli/progress.js';
import { fields, formatAge, formatBytes, formatTime, percent, table } from '../../src/ops/cli/render.js';
import { queueProblems, queueStatus, selector } from '../../src/ops/cli/commands.js';
import type { OpsApi, QueueStatusView } from '../../src/ops/types.js';
import { OpsFailure } from '../../src/ops/types.js';
import { balanced, dashboardExprs, exposedSampleNames, metricNamesIn, ruleExprs } from '../helpers/promql.js';

describe('table', () => {
  it('aligns columns, numbers right, text left, and cuts long cells', () => {
    const out = table(['ID', 'N', 'NAME'], [['a', 1, 'x'.repeat(70)], ['bbb', 200, null]]);
    assert.deepEqual(out.split('\n'), ['ID     N  NAME', `a      1  ${'x'.repeat(59)}…`, 'bbb  200  -']);
  });
  it('prints the empty text for no rows', () => {
    assert.equal(table(['A'], [], {}, 'nothing'), 'nothing');
  });
  it('fields aligns keys', () => {
    assert.equal(fields([['id', 'x'], ['long key', null]]), 'id:       x\nlong key: -');
  });
});

describe('units', () => {
  const cases: Array<[number | null, string]> = [[null, '-'], [0, '0 B'], [1023, '1023 B'], [1024, '1.0 KiB'], [10 * 1024 * 1024, '10 MiB'], [3.5 * 2 ** 30, '3.5 GiB']];
  for (const [n, s] of cases) it(`formatBytes(${n}) = ${s}`, () => assert.equal(formatBytes(n), s));
  const ages: Array<[number | null, string]> = [[null, '-'], [0, '0s'], [59.4, '59s'], [60, '1m'], [3599, '59m'], [3660, '1h01m'], [90_000, '1d01h']];
  for (const [s, t] of ages) it(`formatAge(${s}) = ${t}`, () => assert.equal(formatAge(s), t));
  it('formatTime and percent', () => {
    assert.equal(formatTime(0), '-');
    assert.equal(formatTime(Date.UTC(2024, 0, 2, 3, 4, 5, 678)), '2024-01-02T03:04:05Z');
    assert.equal(formatTime('not a date'), '-');
    assert.equal(percent(1, 3), '33%');
    assert.equal(percent(5, null), '-');
  });
});

describe('progress bar', () => {
  it('shows fraction, amount and an ETA from the elapsed time', () => {
    const line = renderBar('verifying', { done: 25 * 2 ** 20, total: 100 * 2 ** 20, unit: 'bytes' }, 10_000, 80);
    assert.match(line, /^verifying \[#+\.+\]  25%  25 MiB\/100 MiB  ETA 30s$/);
    assert.ok(line.length <= 80);
  });
  it('says done at the end and has no ETA at the start', () => {
    assert.match(renderBar('x', { done: 3, total: 3, unit: 'items' }, 5, 60), /100%  3\/3 items  done$/);
    assert.match(renderBar('x', { done: 0, total: 3, unit: 'items' }, 0, 60), /ETA -$/);
  });
  it('draws only on a terminal, and clears itself', () => {
    const writes: string[] = [];
    let t = 0;
    const pipe = progressBar('x', { isTTY: false, write: (s) => writes.push(s) });
    pipe.update({ done: 1, total: 2, unit: 'items' });
    pipe.end();
    assert.equal(writes.length, 0);
    const tty = progressBar('x', { isTTY: true, columns: 60, write: (s) => writes.push(s) }, () => t);
    tty.update({ done: 1, total: 4, unit: 'items' });
    t += 10;
    tty.update({ done: 2, total: 4, unit: 'items' }); // throttled: within 100 ms
    tty.update({ done: 4, total: 4, unit: 'items' }); // the last one always draws
    tty.end();
    assert.equal(writes.length, 3);
    assert.match(writes[1]!, /100%/);
    assert.equal(writes[2], '\r\x1b[2K');
  });
});

describe('command helpers', () => {
  it('selector: exactly one of an id and --all', () => {
    assert.deepEqual(selector('a', undefined), { id: 'a' });
    assert.equal(selector(undefined, true), 'all');
    assert.throws(() => selector(undefined, undefined), (e: unknown) => e instanceof OpsFailure && e.exitCode === 2);
    assert.throws(() => selector('a', true), (e: unknown) => e instanceof OpsFailure && e.exitCode === 2);
  });
  it('queueProblems names emergency mode, open breakers and failed workers', () => {
    const zero = { high: 0, medium: 0, low: 0 };
    const base = { counts: { queued: zero, leased: zero, done: zero, dead: zero }, pending: zero, deadLetters: 0 };
    assert.deepEqual(queueProblems({ ...base, pressure: null, workers: null, breakers: null }), []);
    const w = (id: number, status: 'healthy' | 'failed') => ({ id, status, processed: 0, errors: 0, avgMs: null, busy: false, replacements: 0 });
    assert.deepEqual(
      queueProblems({
        ...base,
        pressure: { level: 'emergency', fill: 0.97 },
        workers: [w(1, 'healthy'), w(2, 'failed')],
        breakers: [{ dependency: 'webhook', state: 'open', retryAtMs: 1 }, { dependency: 'storage', state: 'closed', retryAtMs: null }],
      }),
      ['queue in emergency mode', 'circuit breaker webhook open', 'worker 2 failed'],
    );
  });
});

describe('queue status in cluster mode', () => {
  it('shows each instance with its workers, breakers, journal and the dead letters only its journal holds', async () => {
    const zero = { high: 0, medium: 0, low: 0 };
    const w = (id: number, busy: boolean) => ({ id, status: 'healthy' as const, processed: 3, errors: 0, avgMs: 12, busy, replacements: 0 });
    const instance = (id: string, dead: number) => ({
      id,
      mode: 'clustered' as const,
      host: 'h',
      pid: 1,
      baseUrl: null,
      startedAtMs: 0,
      seenAtMs: Date.now(),
      workers: [w(1, true), w(2, false)],
      breakers: [{ dependency: 'storage' as const, state: 'closed' as const, retryAtMs: null }],
      journal: { queued: 1, leased: 1, dead },
    });
    const status: QueueStatusView = {
      counts: { queued: { ...zero, high: 2 }, leased: zero, done: zero, dead: zero },
      pending: { ...zero, high: 2 },
      deadLetters: 0,
      pressure: { level: 'normal', fill: 0 },
      workers: null,
      breakers: null,
      cluster: { reachable: true, instances: [instance('node-a', 0), instance('node-b', 2)] },
    };
    const printed: string[] = [];
    const code = await queueStatus({ mode: 'online', queueStatus: async () => status } as unknown as OpsApi, { json: false, print: (t) => printed.push(t), error: (t) => printed.push(t) });
    assert.equal(code, 0);
    const text = printed.join('\n');
    assert.match(text, /^INSTANCE\s+MODE\s+HOST\s+BUSY\s+FAILED\s+BREAKERS\s+JOURNAL\s+JOURNAL DEAD\s+SEEN/m);
    assert.match(text, /^node-b\s+clustered\s+h\s+1\/2\s+0\s+closed\s+2\s+2\s/m);
    assert.match(text, /local journal; list, replay or purge them through its admin API/);
    assert.match(text, /^node-a\s+1\s+healthy/m, 'workers per instance');
  });
});

describe('PromQL helpers (test/helpers/promql.ts)', () => {
  const cases: Array<[string, string[]]> = [
    ['sum by (status) (rate(hmac_http_requests_total{instance=~"$instance"}[$__rate_interval]))', ['hmac_http_requests_total']],
    ['histogram_quantile(0.95, sum by (le, route) (rate(x_seconds_bucket{a="b"}[5m])))', ['x_seconds_bucket']],
    ['a > 0.05 and b > 3 * sum by (instance) (rate(c{type="upload"}[1h] offset 5m))', ['a', 'b', 'c']],
    ['max by (dependency, state) (hmac_circuit_breaker_state) > 0', ['hmac_circuit_breaker_state']],
    ['topk(10, sum without (code) (m1)) / on (instance) group_left m2', ['m1', 'm2']],
  ];
  for (const [expr, names] of cases) it(expr, () => assert.deepEqual(metricNamesIn(expr).sort(), names.sort()));

  it('finds exprs in dashboards (nested rows, label_values) and rule files (block scalars)', () => {
    const dash = { panels: [{ targets: [{ expr: 'a' }] }, { type: 'row', panels: [{ targets: [{ expr: 'b' }] }] }], templating: { list: [{ query: { query: 'label_values(c, instance)' } }] } };
    assert.deepEqual(dashboardExprs(dash).sort(), ['a', 'b', 'c']);
    const yaml = 'groups:\n  - rules:\n      - alert: One\n        expr: up == 0\n      - alert: Two\n        expr: >-\n          x > 1\n          and y\n        for: 1m\n';
    assert.deepEqual(ruleExprs(yaml), [{ alert: 'One', expr: 'up == 0' }, { alert: 'Two', expr: 'x > 1 and y' }]);
  });

  it('reads sample names from an exposition and checks balance', () => {
    const text = '# HELP a x\n# TYPE a counter\na{b="c"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\n';
    assert.deepEqual([...exposedSampleNames(text)].sort(), ['a', 'h_bucket', 'h_sum']);
    assert.equal(balanced('sum(rate(a{b="c)"}[5m]))'), true);
    assert.equal(balanced('sum(rate(a[5m])'), false);
  });
});
