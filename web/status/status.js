// Operator status page: read-only, refreshes itself. The token stays in this tab's
// sessionStorage and travels only as a bearer header to the admin API's status/data.
'use strict';
(() => {
  const script = document.currentScript;
  const dataUrl = new URL('data', script.src).href;
  const KEY = 'hfs-admin-token';
  const $ = (sel) => document.querySelector(sel);
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has('token')) {
    sessionStorage.setItem(KEY, params.get('token'));
    params.delete('token');
    history.replaceState(null, '', location.pathname + location.search + (params.toString() ? `#${params}` : ''));
  }
  const refreshS = Number(params.get('refresh') ?? new URLSearchParams(location.search).get('refresh') ?? 5);
  let timer;

  const setState = (state) => (document.body.dataset.state = state);
  const text = (testid, value) => {
    const el = document.querySelector(`[data-testid="${testid}"]`);
    if (el) el.textContent = String(value);
  };
  const cell = (value, cls) => {
    const td = document.createElement('td');
    td.textContent = value === null || value === undefined ? '–' : String(value);
    if (cls) td.className = cls;
    return td;
  };
  const badge = (value, prefix) => {
    const td = document.createElement('td');
    td.className = 'text';
    const span = document.createElement('span');
    span.className = `badge ${prefix}-${value}`;
    span.textContent = value;
    td.append(span);
    return td;
  };
  const row = (tbody, cells, testid) => {
    const tr = document.createElement('tr');
    if (testid) tr.dataset.testid = testid;
    tr.append(...cells);
    tbody.append(tr);
  };
  const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '–');

  function showLogin(message) {
    setState('login');
    $('#status').hidden = true;
    $('#login').hidden = false;
    $('#login-error').textContent = message || '';
  }

  function render(d) {
    const q = d.queue;
    for (const tier of ['high', 'medium', 'low']) {
      text(`queued-${tier}`, q.counts.queued[tier]);
      text(`leased-${tier}`, q.counts.leased[tier]);
      text(`queue-${tier}`, q.pending[tier]);
    }
    text('dead-letters', q.deadLetters);
    const pressure = $('#pressure');
    pressure.textContent = q.pressure ? q.pressure.level : 'unknown';
    pressure.className = `badge level-${q.pressure ? q.pressure.level : 'unknown'}`;
    text('uploads-streaming', d.uploads.streaming);
    text('uploads-incomplete', d.uploads.incomplete);

    const breakers = $('#breakers');
    breakers.replaceChildren();
    for (const b of q.breakers || []) row(breakers, [cell(b.dependency, 'text'), badge(b.state, 'state'), cell(b.retryAtMs ? time(b.retryAtMs) : null)], `breaker-${b.dependency}`);
    if (!(q.breakers || []).length) row(breakers, [cell('circuit breakers are disabled', 'text')]);

    const workers = $('#workers');
    workers.replaceChildren();
    for (const w of q.workers || []) {
      row(workers, [cell(w.id, 'text'), badge(w.status, 'status'), cell(w.processed), cell(w.errors), cell(w.avgMs === null ? null : Math.round(w.avgMs)), cell(w.busy ? 'yes' : 'no')], `worker-${w.id}`);
    }

    const dead = $('#dead-letters');
    dead.replaceChildren();
    for (const x of d.recentDeadLetters) {
      const last = x.errors[x.errors.length - 1];
      row(dead, [cell(x.id, 'text'), cell(x.slotPath, 'text'), cell(last ? `${last.code}: ${last.message}` : null, 'text'), cell(x.attempts), cell(time(x.buriedAtMs))], 'dead-letter');
    }
    if (!d.recentDeadLetters.length) row(dead, [cell('none', 'text')]);

    $('#updated').textContent = `updated ${time(d.generatedAtMs)}${refreshS > 0 ? `, every ${refreshS}s` : ''}`;
    document.body.dataset.updated = String(d.generatedAtMs);
    $('#login').hidden = true;
    $('#status').hidden = false;
    setState('ok');
  }

  async function load() {
    clearTimeout(timer);
    const token = sessionStorage.getItem(KEY);
    if (!token) return showLogin();
    try {
      const res = await fetch(dataUrl, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
      if (res.status === 401) {
        sessionStorage.removeItem(KEY);
        return showLogin('That token was not accepted.');
      }
      if (!res.ok) throw new Error(`status ${res.status}`);
      render(await res.json());
    } catch (err) {
      setState('error');
      $('#updated').textContent = `update failed (${err.message}); retrying`;
    }
    if (refreshS > 0) timer = setTimeout(load, refreshS * 1000);
  }

  $('#login').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $('#token').value);
    $('#token').value = '';
    void load();
  });
  void load();
})();
