/**
 * Just enough PromQL and Prometheus exposition parsing for "every metric our dashboard and
 * alert rules query is exposed": metric names out of expressions, sample names out of /metrics.
 */

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan', 'atan2']);

/** Metric names an expression selects (functions, keywords, label names and variables dropped). */
export function metricNamesIn(expr: string): string[] {
  let s = expr;
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""'); // string literals
  s = s.replace(/\{[^{}]*\}/g, ''); // label matchers (may hold $variables)
  s = s.replace(/\[[^\]]*\]/g, ''); // range and subquery selectors
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // grouping labels
  s = s.replace(/\$\{?\w+\}?/g, ' '); // dashboard variables outside braces
  const names = new Set<string>();
  for (const m of s.matchAll(/(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (call || KEYWORDS.has(name!.toLowerCase())) continue;
    names.add(name!);
  }
  return [...names];
}

/** Expressions of a Grafana dashboard: every target's expr (rows' nested panels too) and label_values() queries. */
export function dashboardExprs(dashboard: unknown): string[] {
  const out: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'expr' && typeof x === 'string') out.push(x);
        else if ((k === 'query' || k === 'definition') && typeof x === 'string') {
          const m = /label_values\(\s*([^,)]+)\s*(,|\))/.exec(x);
          if (m) out.push(m[1]!);
        } else visit(x);
      }
    }
  };
  visit(dashboard);
  return out;
}

/**
 * `expr:` values of a Prometheus rules file: plain one-line values and block scalars (`|`, `>-`,
 * …, folded into one line). The file is ours, so this subset of YAML is enough.
 */
export function ruleExprs(yaml: string): Array<{ alert: string; expr: string }> {
  const lines = yaml.split('\n');
  const out: Array<{ alert: string; expr: string }> = [];
  let alert = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const a = /^\s*-\s*alert:\s*(\S+)/.exec(line);
    if (a) alert = a[1]!;
    const m = /^(\s*)expr:\s*(.*)$/.exec(line);
    if (!m) continue;
    const indent = m[1]!.length;
    const value = m[2]!.trim();
    if (/^[|>][-+]?$/.test(value)) {
      const block: string[] = [];
      while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || lines[i + 1]!.search(/\S/) > indent)) block.push(lines[++i]!.trim());
      out.push({ alert, expr: block.join(' ').trim() });
    } else out.push({ alert, expr: value.replace(/^(['"])(.*)\1$/, '$2') });
  }
  return out;
}

/** Names of the samples in a Prometheus text exposition. */
export function exposedSampleNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (m) names.add(m[1]!);
  }
  return names;
}

/** Parenthesis/brace/bracket balance, a cheap syntax check for hand-written expressions. */
export function balanced(expr: string): boolean {
  const pairs: Record<string, string> = { ')': '(', '}': '{', ']': '[' };
  const stack: string[] = [];
  for (const ch of expr.replace(/"(?:[^"\\]|\\.)*"/g, '')) {
    if ('({['.includes(ch)) stack.push(ch);
    else if (ch in pairs && stack.pop() !== pairs[ch]) return false;
  }
  return stack.length === 0;
}
