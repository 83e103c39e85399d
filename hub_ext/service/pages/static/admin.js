// The GPU pool admin page: reads and changes everything through the service's REST API.
// Plain browser JavaScript (no build step), so the service ships it as it is.
(function () {
  'use strict';

  const body = document.body;
  const PREFIX = body.dataset.prefix;
  const XSRF = body.dataset.xsrf;
  const REFRESH_MS = 4000;
  const HISTORY_REFRESH_MS = 60000;
  const EVENTS_KEPT = 60;
  const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

  const $ = (sel, root) => (root || document).querySelector(sel);

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'className') el.className = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // ------------------------------------------------------------------ the API

  class ApiError extends Error {}

  async function api(path, options) {
    options = options || {};
    const init = {
      method: options.method || 'GET',
      credentials: 'same-origin',
      headers: { Accept: 'application/json', 'X-XSRFToken': XSRF }
    };
    if (options.body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    }
    let r;
    try {
      r = await fetch(PREFIX + 'api/' + path, init);
    } catch (e) {
      throw new ApiError('The GPU pool service cannot be reached (' + e.message + ').');
    }
    const text = await r.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = null;
    }
    if (!r.ok) {
      const said = data && (data.error || data.message);
      if (r.status === 403 && !said) throw new ApiError('Not allowed: this needs the GPU pool admin scope.');
      throw new ApiError(said || 'The GPU pool service answered ' + r.status + ' for ' + path + '.');
    }
    return data;
  }

  // The contract allows a bare list or an object holding it.
  const listOf = (data, key) => (Array.isArray(data) ? data : (data && data[key]) || []);

  // ------------------------------------------------------------------ words and numbers

  function gpus(n) {
    if (n === null || n === undefined) return '';
    const r = Math.round(n * 100) / 100;
    return r + (r === 1 ? ' GPU' : ' GPUs');
  }

  function since(iso) {
    if (!iso) return '';
    const s = (Date.now() - Date.parse(iso)) / 1000;
    return duration(s);
  }

  function until(iso) {
    if (!iso) return '';
    const s = (Date.parse(iso) - Date.now()) / 1000;
    return s <= 30 ? 'any moment' : 'in ' + duration(s);
  }

  function duration(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + ' s';
    const m = Math.round(s / 60);
    if (m < 60) return m + ' min';
    const hours = Math.floor(m / 60);
    if (hours < 48) return hours + ' h ' + (m % 60) + ' min';
    return Math.round(hours / 24) + ' days';
  }

  function clock(iso) {
    const d = new Date(iso);
    return d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  // ------------------------------------------------------------------ messages

  function showError(text) {
    const el = $('#error');
    el.textContent = text || '';
    el.hidden = !text;
  }

  function notice(text, isError) {
    const el = $('#notice');
    el.textContent = text;
    el.className = isError ? 'notice notice-error' : 'notice';
    el.hidden = false;
  }

  // ------------------------------------------------------------------ pool

  function renderPool(pool) {
    const nodes = listOf(pool, 'nodes');
    $('#simulated-banner').hidden = !(pool.simulated || nodes.some(n => n.simulated));
    const t = pool.totals;
    $('#pool-totals').textContent = t ? `${Math.round(t.used * 100) / 100} of ${t.gpus} GPUs in use, ${t.idle || 0} held but idle` : '';
    if (!nodes.length) {
      $('#pool').replaceChildren(h('p', { className: 'muted' }, 'No nodes in the pool yet.'));
      return;
    }
    $('#pool').replaceChildren(
      ...nodes.map(node =>
        h(
          'div',
          { className: 'node', 'data-node': node.name },
          h(
            'div',
            { className: 'node-name' },
            node.name,
            node.simulated ? h('span', { className: 'badge simulated' }, 'simulated') : null,
            node.schedulable === false ? h('span', { className: 'badge' }, 'not schedulable') : null,
            node.last_reading_at ? h('span', { className: 'muted' }, 'reading ' + since(node.last_reading_at) + ' ago') : null
          ),
          h('div', { className: 'gpus' }, node.gpus.map(gpuCell))
        )
      )
    );
  }

  function gpuCell(g) {
    const held = (g.holders || []).length > 0;
    const idle = held && g.idle_seconds !== null && g.idle_seconds !== undefined && g.idle_seconds >= 60;
    const look = !held ? 'free' : g.state === 'partial' ? 'partial' : 'used';
    const util = g.utilization !== null && g.utilization !== undefined ? 'busy ' + Math.round(g.utilization) + '%' : 'no reading';
    const mem =
      g.memory_used_mib !== null && g.memory_used_mib !== undefined
        ? `${Math.round(g.memory_used_mib / 1024)}/${Math.round(g.memory_mib / 1024)} GiB`
        : `${Math.round(g.memory_mib / 1024)} GiB`;
    return h(
      'div',
      { className: `gpu ${look}${idle ? ' idle' : ''}`, 'data-gpu-uuid': g.uuid, 'data-look': look, title: g.uuid },
      h('div', { className: 'gpu-head' }, h('b', {}, 'GPU ' + g.index), h('span', {}, g.model)),
      h('div', { className: 'gpu-use' }, `${util} · ${mem}`),
      look === 'partial' ? h('div', { className: 'bar' }, h('span', { style: `width:${Math.round(g.used_fraction * 100)}%` })) : null,
      h(
        'div',
        { className: 'holders' },
        held
          ? g.holders.map(x =>
              h('div', {}, `${x.user} (${x.team}) ${x.workload_id}${x.fraction < 1 ? ' ×' + x.fraction : ''}`)
            )
          : 'free'
      ),
      idle ? h('div', { className: 'idle-mark' }, 'idle ' + duration(g.idle_seconds)) : null
    );
  }

  // ------------------------------------------------------------------ teams

  const TEAM_FIELDS = ['quota', 'over_quota_weight', 'limit'];

  function renderTeams(teams) {
    const tbody = $('#teams tbody');
    const seen = new Set();
    for (const t of teams) {
      seen.add(t.name);
      let row = tbody.querySelector(`tr[data-team="${CSS.escape(t.name)}"]`);
      if (!row) {
        row = teamRow(t.name);
        tbody.appendChild(row);
      }
      for (const f of TEAM_FIELDS) {
        const input = row.querySelector(`input[name="${f}"]`);
        const value = t[f] === null || t[f] === undefined ? '' : String(t[f]);
        // Do not overwrite what an admin is typing.
        if (input.value === input.defaultValue && document.activeElement !== input) input.value = value;
        input.defaultValue = value;
      }
      row.querySelector('.usage').textContent = gpus(t.usage);
      row.querySelector('.borrowed').textContent = t.borrowed > 0 ? gpus(t.borrowed) : '–';
      row.querySelector('.pending').textContent = t.pending ? String(t.pending) : '–';
      row.classList.toggle('over', t.borrowed > 0);
    }
    for (const row of Array.from(tbody.querySelectorAll('tr[data-team]'))) {
      if (!seen.has(row.dataset.team)) row.remove();
    }
  }

  function teamRow(name) {
    const input = f =>
      h('input', {
        name: f,
        type: 'number',
        min: 0,
        step: 'any',
        placeholder: f === 'limit' ? 'none' : '',
        'aria-label': `${f.replace(/_/g, ' ')} of ${name}`
      });
    const row = h(
      'tr',
      { 'data-team': name },
      h('td', { className: 'team-name' }, name),
      TEAM_FIELDS.map(f => h('td', {}, input(f))),
      h('td', { className: 'usage' }),
      h('td', { className: 'borrowed' }),
      h('td', { className: 'pending' }),
      h('td', {}, h('button', { 'data-action': 'save-team', onclick: () => saveTeam(name, row) }, 'Save'))
    );
    row.addEventListener('keydown', e => {
      if (e.key === 'Enter') saveTeam(name, row);
    });
    return row;
  }

  function teamBody(row) {
    const out = {};
    for (const f of TEAM_FIELDS) {
      const raw = row.querySelector(`input[name="${f}"]`).value.trim();
      if (raw === '') {
        if (f === 'limit') out.limit = null;
        continue;
      }
      const n = Number(raw);
      if (!Number.isFinite(n) || n < 0) throw new ApiError(`${f.replace(/_/g, ' ')} must be a number of GPUs, 0 or more`);
      out[f] = n;
    }
    return out;
  }

  async function saveTeam(name, row) {
    try {
      const change = teamBody(row);
      const t = await api('teams/' + encodeURIComponent(name), { method: 'PATCH', body: change });
      for (const f of TEAM_FIELDS) row.querySelector(`input[name="${f}"]`).defaultValue = row.querySelector(`input[name="${f}"]`).value;
      notice(`Saved team ${name}: quota ${t && t.quota !== undefined ? t.quota : change.quota}.`);
      await refresh();
    } catch (e) {
      notice(`Could not save team ${name}: ${e.message}`, true);
    }
  }

  async function createTeam() {
    const row = $('#new-team');
    const name = row.querySelector('input[name="name"]').value.trim();
    if (!name) {
      notice('Give the new team a name.', true);
      return;
    }
    try {
      await api('teams/' + encodeURIComponent(name), { method: 'PUT', body: teamBody(row) });
      row.querySelector('input[name="name"]').value = '';
      notice(`Created team ${name}.`);
      await refresh();
    } catch (e) {
      notice(`Could not create team ${name}: ${e.message}`, true);
    }
  }

  // ------------------------------------------------------------------ queue and running work

  function workloadCell(w) {
    return h('td', {}, h('b', {}, w.name || w.id), h('div', { className: 'muted' }, `${w.kind} ${w.id}`));
  }

  function renderQueue(queue) {
    $('#queue-count').textContent = queue.length ? `${queue.length} waiting` : '';
    const tbody = $('#queue tbody');
    if (!queue.length) {
      tbody.replaceChildren(h('tr', {}, h('td', { colspan: 8, className: 'muted' }, 'Nobody is waiting.')));
      return;
    }
    tbody.replaceChildren(
      ...queue.map(w =>
        h(
          'tr',
          { 'data-workload-id': w.id, 'data-team': w.team },
          h('td', { className: 'position' }, w.queue_position || ''),
          workloadCell(w),
          h('td', {}, w.user),
          h('td', {}, w.team),
          h('td', {}, gpus(w.gpus)),
          h('td', {}, since(w.submitted_at)),
          h('td', { className: 'reason' }, w.reason || ''),
          // An estimate, labelled so, with its basis on hover; "not known" rather than an invented time.
          h('td', { className: 'expected', title: w.expected_start_basis || '' },
            w.expected_start ? until(w.expected_start) + ' (estimate)' : w.expected_start_basis ? 'not known' : '')
        )
      )
    );
  }

  function renderRunning(running) {
    $('#running-count').textContent = running.length ? `${running.length} workloads` : '';
    const tbody = $('#running tbody');
    if (!running.length) {
      tbody.replaceChildren(h('tr', {}, h('td', { colspan: 7, className: 'muted' }, 'Nothing is running.')));
      return;
    }
    tbody.replaceChildren(
      ...running.map(w => {
        const shares = (w.allocation && w.allocation.shares) || [];
        return h(
          'tr',
          { 'data-workload-id': w.id, 'data-team': w.team },
          workloadCell(w),
          h('td', {}, w.user),
          h('td', {}, w.team),
          h('td', {}, gpus(w.allocation ? w.allocation.gpus : w.gpus), w.over_quota ? h('span', { className: 'badge over' }, 'borrowed') : null),
          h('td', {}, shares.map(s => `${s.node}:${s.index}${s.fraction < 1 ? '×' + s.fraction : ''}`).join(', ')),
          h('td', {}, since(w.started_at)),
          h('td', { className: 'reason' }, w.reason || '')
        );
      })
    );
  }

  // ------------------------------------------------------------------ events

  let events = [];

  function renderEvents() {
    const tbody = $('#events tbody');
    if (!events.length) {
      tbody.replaceChildren(h('tr', {}, h('td', { colspan: 6, className: 'muted' }, 'No events yet.')));
      return;
    }
    tbody.replaceChildren(
      ...events
        .slice()
        .reverse()
        .map(e =>
          h(
            'tr',
            { className: 'event-' + e.kind, 'data-kind': e.kind },
            h('td', { className: 'nowrap' }, clock(e.at)),
            h('td', {}, h('span', { className: 'kind' }, e.kind)),
            h('td', {}, e.workload_id || ''),
            h('td', {}, e.user || ''),
            h('td', {}, e.team || ''),
            h('td', {}, e.message || '')
          )
        )
    );
  }

  async function loadEvents() {
    const last = events.length ? events[events.length - 1].id : null;
    const fresh = listOf(await api('events' + (last !== null ? '?since=' + last : '')), 'events');
    events = events.concat(fresh).slice(-EVENTS_KEPT);
  }

  // ------------------------------------------------------------------ usage charts

  function renderChart(el, history, capacity) {
    const W = 560, H = 220, L = 40, R = 10, T = 10, B = 28;
    // Bucket averages, then one last point: what each team holds right now.
    const now = history.now || {};
    const times = history.times.map(t => Date.parse(t)).concat([Date.parse(history.end)]);
    const teams = Array.from(new Set(Object.keys(history.teams).concat(Object.keys(now)))).sort();
    const n = times.length;
    const stacks = teams.map(() => new Array(n).fill(0));
    let top = capacity || 0;
    for (let i = 0; i < n; i++) {
      let sum = 0;
      teams.forEach((team, k) => {
        sum += i === n - 1 ? now[team] || 0 : (history.teams[team] || [])[i] || 0;
        stacks[k][i] = sum;
      });
      top = Math.max(top, sum);
    }
    top = Math.max(1, Math.ceil(top));
    const x = i => L + (i / Math.max(1, n - 1)) * (W - L - R);
    const y = v => T + (1 - v / top) * (H - T - B);
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('role', 'img');
    const add = (tag, attrs, text) => {
      const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.textContent = text;
      svg.appendChild(e);
      return e;
    };
    for (let g = 0; g <= 4; g++) {
      const v = (top * g) / 4;
      add('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'gridline' });
      add('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, Math.round(v * 10) / 10);
    }
    // Stacked areas, topmost team drawn first so lower ones sit on it.
    for (let k = teams.length - 1; k >= 0; k--) {
      const upper = stacks[k].map((v, i) => `${x(i)},${y(v)}`);
      const lower = (k > 0 ? stacks[k - 1] : new Array(n).fill(0)).map((v, i) => `${x(i)},${y(v)}`).reverse();
      const area = add('polygon', { points: upper.concat(lower).join(' '), fill: COLORS[k % COLORS.length], 'fill-opacity': 0.75, 'data-team': teams[k] });
      const t = document.createElementNS('http://www.w3.org/2000/svg', 'title');
      t.textContent = teams[k];
      area.appendChild(t);
    }
    if (capacity) {
      add('line', { x1: L, x2: W - R, y1: y(capacity), y2: y(capacity), class: 'capacity' });
      add('text', { x: W - R, y: y(capacity) - 3, 'text-anchor': 'end', class: 'axis' }, `pool: ${capacity} GPUs`);
    }
    const label = i => {
      const d = new Date(times[i]);
      return history.window === 'day' ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleDateString([], { month: 'short', day: 'numeric' });
    };
    if (n) {
      [0, Math.floor((n - 1) / 2), n - 1].forEach((i, j) =>
        add('text', { x: x(i), y: H - 8, 'text-anchor': ['start', 'middle', 'end'][j], class: 'axis' }, label(i))
      );
    }
    const legend = h(
      'div',
      { className: 'chart-legend' },
      teams.length
        ? teams.map((team, k) => h('span', {}, h('i', { className: 'sw', style: `background:${COLORS[k % COLORS.length]}` }), team))
        : h('span', { className: 'muted' }, 'No GPUs were in use in this window.')
    );
    el.replaceChildren(svg, legend);
    el.dataset.teams = teams.join(',');
  }

  let capacity = 0;

  async function loadHistory() {
    for (const window of ['day', '40d']) {
      const el = $('#chart-' + window);
      try {
        renderChart(el, await api('history?window=' + window), capacity);
      } catch (e) {
        el.replaceChildren(h('p', { className: 'error' }, 'Usage history is not available: ' + e.message));
      }
    }
  }

  // ------------------------------------------------------------------ the loop

  let busy = false;

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const [pool, teams, queue, running] = await Promise.all([
        api('pool'),
        api('teams'),
        api('queue'),
        api('workloads?state=running')
      ]);
      capacity = pool.totals ? pool.totals.gpus : 0;
      renderPool(pool);
      renderTeams(listOf(teams, 'teams'));
      renderQueue(listOf(queue, 'queue'));
      renderRunning(listOf(running, 'workloads'));
      await loadEvents();
      renderEvents();
      showError('');
      $('#refreshed').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      showError('The GPU pool reported a problem: ' + e.message);
    } finally {
      busy = false;
    }
  }

  $('button[data-action="create-team"]').addEventListener('click', createTeam);
  refresh().then(loadHistory);
  setInterval(refresh, REFRESH_MS);
  setInterval(loadHistory, HISTORY_REFRESH_MS);
})();
