// The GPU pool admin page: reads and changes everything through the service's REST API.
// A browser ES module without a build step of its own; the grid, formatting and states come from
// the UI kit the lab panel is built from (static/kit/, compiled from extensions/jupyterlab_gpupool/src/kit).
import { clock, duration, fillTable, gpuCount, h, heldGpuHours, legend, placement, poolGrid, poolSummary, since, untilText } from './kit/index.js';

{

  const body = document.body;
  const PREFIX = body.dataset.prefix;
  const XSRF = body.dataset.xsrf;
  const REFRESH_MS = 4000;
  const HISTORY_REFRESH_MS = 60000;
  const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

  const $ = (sel, root) => (root || document).querySelector(sel);

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

  // ------------------------------------------------------------------ words and numbers (the kit's)

  const gpus = n => gpuCount(n);
  const until = iso => untilText(iso) || '';

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

  // Large pools collapse into one bar per node; the admin opens the nodes they want to see.
  const COLLAPSE_ABOVE = 64;
  // An agent that has not reported for this long is shown as silent (IdleReclaim.stale_after_seconds).
  const SILENT_AFTER_SECONDS = Number(body.dataset.silentAfter) || 120;
  const expanded = new Set();
  let lastPool = null;

  function renderPool(pool) {
    lastPool = pool;
    const nodes = listOf(pool, 'nodes');
    $('#simulated-banner').hidden = !(pool.simulated || nodes.some(n => n.simulated));
    $('#pool-totals').textContent = nodes.length ? poolSummary(pool) : '';
    if (!nodes.length) {
      $('#pool').replaceChildren(h('p', { className: 'muted' }, 'No nodes in the pool yet.'));
      return;
    }
    const withErrors = Object.assign({}, pool, { nodes: nodes.map(n => Object.assign({}, n, { errors: n.agent_errors })) });
    $('#pool').replaceChildren(
      ...poolGrid(withErrors, {
        detailed: true,
        collapseAbove: COLLAPSE_ABOVE,
        expanded,
        silentAfterSeconds: SILENT_AFTER_SECONDS,
        onToggle: node => {
          if (!expanded.delete(node)) expanded.add(node);
          renderPool(lastPool);
        }
      })
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
      const past = row.querySelector('.decayed');
      past.textContent = t.decayed_usage === null || t.decayed_usage === undefined ? '–' : t.decayed_usage.toFixed(1);
      past.title = t.quota > 0 && t.decayed_usage ? `${(t.decayed_usage / t.quota).toFixed(1)} times its quota` : '';
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
      h('td', { className: 'decayed' }),
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

  // ------------------------------------------------------------------ quotas against the pool

  // A quota the pool cannot honour: one team's above the pool, or all of them together.
  function quotaWarnings(teams, poolGpus) {
    if (!poolGpus) return [];
    const out = [];
    for (const t of teams) {
      if (t.quota > poolGpus) out.push(`Team ${t.name} has a quota of ${gpus(t.quota)}, more than the pool's ${gpus(poolGpus)}: it can never all be honoured.`);
    }
    const sum = teams.reduce((n, t) => n + (t.quota || 0), 0);
    if (sum > poolGpus + 1e-9) {
      out.push(`The quotas add up to ${gpus(sum)}, more than the pool's ${gpus(poolGpus)}: when every team wants its quota at once, some must wait.`);
    }
    return out;
  }

  function renderQuotaWarnings(warnings) {
    const el = $('#quota-warnings');
    el.hidden = !warnings.length;
    el.replaceChildren(...warnings.map(w => h('div', { className: 'quota-warning' }, w)));
  }

  // ------------------------------------------------------------------ queue and running work

  // GPU-hours a workload has held so far (attained service), from the kit as the lab panel shows it.
  const heldHours = w => heldGpuHours(w.attained_gpu_s);

  function workloadCell(w) {
    const held = heldHours(w);
    return h('td', {}, h('b', {}, w.name || w.id), h('div', { className: 'muted' }, `${w.kind} ${w.id}`,
      held ? h('span', { className: 'attained', title: 'GPU-hours held so far, over all its runs (attained service)' }, ` · held ${held} GPU-h`) : null));
  }

  function act(button, what, call) {
    return async () => {
      button.disabled = true;
      try {
        notice(await call());
        await refresh();
      } catch (e) {
        notice(`${what} failed: ${e.message}`, true);
      } finally {
        button.disabled = false;
      }
    };
  }

  // The actions on one workload: change its priority, preempt it (running), stop or cancel it.
  function actionCells(w) {
    const input = h('input', { type: 'number', step: 1, name: 'priority', value: String(w.priority ?? 0), 'aria-label': `priority of ${w.id}`, className: 'priority' });
    const setPriority = h('button', { 'data-action': 'set-priority' }, 'Set');
    setPriority.addEventListener('click', act(setPriority, `Priority of ${w.id}`, async () => {
      const n = Number(input.value);
      if (!Number.isInteger(n)) throw new ApiError('the priority is a whole number');
      await api('workloads/' + encodeURIComponent(w.id), { method: 'PATCH', body: { priority: n } });
      return `Priority of ${w.name || w.id} set to ${n}.`;
    }));
    const buttons = [];
    if (w.state === 'running') {
      const preempt = h('button', { 'data-action': 'preempt' }, 'Preempt');
      preempt.addEventListener('click', () => {
        if (!window.confirm(`Preempt ${w.name || w.id} of ${w.user}? It gets its team's notice, then its GPUs go back to the pool (a job waits in the queue again; a session's server is stopped).`)) return;
        act(preempt, `Preempting ${w.id}`, async () => {
          await api('workloads/' + encodeURIComponent(w.id) + '/preempt', { method: 'POST' });
          return `Preempting ${w.name || w.id}: it has its notice, then goes back in the queue.`;
        })();
      });
      buttons.push(preempt);
    }
    const stop = h('button', { 'data-action': 'stop', className: 'danger' }, w.state === 'running' ? 'Stop' : 'Cancel');
    stop.addEventListener('click', () => {
      const verb = w.state === 'running' ? 'Stop' : 'Cancel';
      if (!window.confirm(`${verb} ${w.name || w.id} of ${w.user}? This cannot be undone.`)) return;
      act(stop, `${verb} ${w.id}`, async () => {
        await api('workloads/' + encodeURIComponent(w.id), { method: 'DELETE' });
        return `${verb === 'Stop' ? 'Stopped' : 'Cancelled'} ${w.name || w.id}.`;
      })();
    });
    buttons.push(stop);
    return [h('td', { className: 'nowrap' }, input, setPriority), h('td', { className: 'nowrap actions' }, buttons)];
  }

  // Rows are rebuilt only when what they show changed, so an admin typing a priority is not interrupted.
  function keyed(tbody, items, key, build, columns, empty) {
    const signature = JSON.stringify(items.map(key));
    const active = document.activeElement;
    const focused = active && active.tagName === 'INPUT' && tbody.contains(active);
    if (tbody.dataset.signature === signature || (focused && tbody.dataset.signature)) return;
    tbody.dataset.signature = signature;
    fillTable(tbody, columns, items.map(build), empty);
  }

  function renderQueue(queue, byId) {
    $('#queue-count').textContent = queue.length ? `${queue.length} waiting` : '';
    keyed(
      $('#queue tbody'),
      queue,
      w => [w.id, w.queue_position, w.reason, w.expected_start, (byId[w.id] || w).priority, Math.round((Date.now() - Date.parse(w.submitted_at || 0)) / 60000), heldHours(byId[w.id] || w)],
      q => {
        const w = Object.assign({}, q, byId[q.id] || {});
        return h(
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
            w.expected_start ? until(w.expected_start) + ' (estimate)' : w.expected_start_basis ? 'not known' : ''),
          ...actionCells(w)
        );
      },
      10,
      'Nobody is waiting.'
    );
  }

  function renderRunning(running) {
    $('#running-count').textContent = running.length ? `${running.length} workloads` : '';
    keyed(
      $('#running tbody'),
      running,
      w => [w.id, w.allocation && w.allocation.gpus, w.over_quota, w.reason, w.priority, Math.round((Date.now() - Date.parse(w.started_at || 0)) / 60000), heldHours(w)],
      w =>
        h(
          'tr',
          { 'data-workload-id': w.id, 'data-team': w.team },
          workloadCell(w),
          h('td', {}, w.user),
          h('td', {}, w.team),
          h('td', {}, gpus(w.allocation ? w.allocation.gpus : w.gpus), w.over_quota ? h('span', { className: 'badge over' }, 'borrowed') : null),
          h('td', {}, placement(w.allocation && w.allocation.shares)),
          h('td', {}, since(w.started_at)),
          h('td', { className: 'reason' }, w.reason || ''),
          ...actionCells(w)
        ),
      9,
      'Nothing is running.'
    );
  }

  // ------------------------------------------------------------------ events: live, searched, paged

  const EVENTS_PAGE = 50;
  // Live: the latest events, newest first, growing as they happen. Search: one query's pages.
  let events = [];
  let lastEventId = null;
  let nextBefore = null;
  let search = '';

  function eventRow(e) {
    return h(
      'tr',
      { className: 'event-' + e.kind, 'data-kind': e.kind, 'data-event-id': e.id },
      h('td', { className: 'nowrap' }, clock(e.at)),
      h('td', {}, h('span', { className: 'kind' }, e.kind)),
      h('td', {}, e.workload_id || ''),
      h('td', {}, e.user || ''),
      h('td', {}, e.team || ''),
      h('td', {}, e.message || '')
    );
  }

  function renderEvents() {
    fillTable($('#events tbody'), 6, events.map(eventRow), search ? `No event matches “${search}”.` : 'No events yet.');
    $('#older-events').hidden = nextBefore === null;
    $('#events-status').textContent = search ? `${events.length} shown matching “${search}”` : `latest ${events.length}`;
  }

  function eventsQuery(extra) {
    const params = new URLSearchParams(Object.assign({ order: 'desc', limit: String(EVENTS_PAGE) }, extra));
    if (search) params.set('q', search);
    return 'events?' + params.toString();
  }

  async function firstEventsPage() {
    const page = await api(eventsQuery({}));
    events = listOf(page, 'events');
    nextBefore = page.next_before ?? null;
    lastEventId = page.last_id ?? (events.length ? events[0].id : 0);
    renderEvents();
  }

  async function olderEvents() {
    if (nextBefore === null) return;
    const page = await api(eventsQuery({ before: String(nextBefore) }));
    events = events.concat(listOf(page, 'events'));
    nextBefore = page.next_before ?? null;
    renderEvents();
  }

  async function newEvents() {
    if (search || lastEventId === null) return; // a search stays as it was asked
    const page = await api('events?since=' + lastEventId);
    const fresh = listOf(page, 'events');
    if (!fresh.length) return;
    lastEventId = fresh[fresh.length - 1].id;
    events = fresh.slice().reverse().concat(events);
    renderEvents();
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

  // Per team: GPUs held (allocation, from the event log) against GPUs busy (measured by the agents).
  function renderBusyCharts(el, history) {
    const W = 360, H = 140, L = 30, R = 8, T = 8, B = 20;
    const teams = Array.from(new Set(Object.keys(history.teams).concat(Object.keys(history.busy || {})))).sort();
    if (!teams.length) {
      el.replaceChildren(h('p', { className: 'muted' }, 'No GPUs were held in the last day.'));
      return;
    }
    const n = history.times.length;
    el.replaceChildren(
      ...teams.map((team, k) => {
        const held = history.teams[team] || new Array(n).fill(0);
        const busy = (history.busy || {})[team] || new Array(n).fill(0);
        const top = Math.max(1, Math.ceil(Math.max(...held, ...busy)));
        const x = i => L + (i / Math.max(1, n - 1)) * (W - L - R);
        const y = v => T + (1 - v / top) * (H - T - B);
        const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
        svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
        svg.setAttribute('role', 'img');
        svg.setAttribute('aria-label', `${team}: GPUs held and busy over the last day`);
        const add = (tag, attrs, text) => {
          const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
          for (const [a, v] of Object.entries(attrs)) e.setAttribute(a, v);
          if (text !== undefined) e.textContent = text;
          svg.appendChild(e);
          return e;
        };
        [0, top].forEach(v => add('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, v));
        add('line', { x1: L, x2: W - R, y1: y(0), y2: y(0), class: 'gridline' });
        const heldPoints = held.map((v, i) => `${x(i)},${y(v)}`);
        add('polygon', { points: [`${x(0)},${y(0)}`].concat(heldPoints, [`${x(n - 1)},${y(0)}`]).join(' '), fill: COLORS[k % COLORS.length], 'fill-opacity': 0.3, 'data-series': 'held' });
        add('polyline', { points: busy.map((v, i) => `${x(i)},${y(v)}`).join(' '), fill: 'none', stroke: COLORS[k % COLORS.length], 'stroke-width': 2, 'data-series': 'busy' });
        const total = a => a.reduce((s, v) => s + v, 0);
        const percent = total(held) > 0 ? Math.round((100 * total(busy)) / total(held)) : null;
        return h(
          'figure',
          { className: 'busy-chart', 'data-team': team },
          h('figcaption', {}, h('b', {}, team), percent !== null ? ` · busy ${percent}% of the GPU time held` : ' · nothing measured'),
          svg,
          h('div', { className: 'chart-legend' }, h('span', {}, h('i', { className: 'sw', style: `background:${COLORS[k % COLORS.length]};opacity:.35` }), 'held'), h('span', {}, h('i', { className: 'sw line', style: `background:${COLORS[k % COLORS.length]}` }), 'busy (measured)'))
        );
      })
    );
  }

  // ------------------------------------------------------------------ the usage report

  function reportRange() {
    const form = $('#report-form');
    return { start: form.start.value, end: form.end.value };
  }

  function updateReportLink() {
    const { start, end } = reportRange();
    $('#report-csv').href = PREFIX + 'api/report?' + new URLSearchParams({ start, end, format: 'csv' }).toString();
  }

  async function showReport() {
    const { start, end } = reportRange();
    try {
      const data = await api('report?' + new URLSearchParams({ start, end }).toString());
      const minutes = m => (m === null || m === undefined ? '–' : duration(m * 60));
      fillTable(
        $('#report tbody'),
        9,
        listOf(data, 'teams').map(r =>
          h(
            'tr',
            { 'data-team': r.team },
            h('td', {}, r.team),
            h('td', { className: 'held' }, r.gpu_hours_held.toFixed(2)),
            h('td', { className: 'busy' }, r.gpu_hours_busy.toFixed(2)),
            h('td', {}, r.busy_percent_of_held === null ? '–' : r.busy_percent_of_held + '%'),
            h('td', {}, r.reclaims),
            h('td', {}, r.preemptions),
            h('td', {}, r.starts),
            h('td', {}, minutes(r.mean_wait_minutes)),
            h('td', {}, minutes(r.max_wait_minutes))
          )
        ),
        'No team held GPUs in this period.'
      );
    } catch (e) {
      notice('Could not make the report: ' + e.message, true);
    }
  }

  let capacity = 0;

  async function loadHistory() {
    for (const window of ['day', '40d']) {
      const el = $('#chart-' + window);
      try {
        const history = await api('history?window=' + window);
        renderChart(el, history, capacity);
        if (window === 'day') renderBusyCharts($('#busy-charts'), history);
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
      const [pool, teams, queue, running, pending] = await Promise.all([
        api('pool'),
        api('teams'),
        api('queue'),
        api('workloads?state=running'),
        api('workloads?state=pending')
      ]);
      capacity = pool.totals ? pool.totals.gpus : 0;
      const teamList = listOf(teams, 'teams');
      const byId = {};
      for (const w of listOf(pending, 'workloads')) byId[w.id] = w;
      renderPool(pool);
      renderTeams(teamList);
      renderQuotaWarnings(quotaWarnings(teamList, capacity));
      renderQueue(listOf(queue, 'queue'), byId);
      renderRunning(listOf(running, 'workloads'));
      await newEvents();
      showError('');
      $('#refreshed').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      showError('The GPU pool reported a problem: ' + e.message);
    } finally {
      busy = false;
    }
  }

  $('#pool-legend').replaceChildren(legend());
  $('button[data-action="create-team"]').addEventListener('click', createTeam);
  $('#event-search').addEventListener('submit', e => {
    e.preventDefault();
    search = $('#event-search').q.value.trim();
    firstEventsPage().catch(err => notice('Could not search the events: ' + err.message, true));
  });
  $('button[data-action="clear-search"]').addEventListener('click', () => {
    $('#event-search').q.value = '';
    search = '';
    firstEventsPage().catch(err => notice('Could not read the events: ' + err.message, true));
  });
  $('#older-events').addEventListener('click', () => olderEvents().catch(err => notice('Could not read older events: ' + err.message, true)));
  const today = new Date();
  const weekAgo = new Date(today.getTime() - 7 * 86400 * 1000);
  $('#report-form').start.value = weekAgo.toISOString().slice(0, 10);
  $('#report-form').end.value = new Date(today.getTime() + 86400 * 1000).toISOString().slice(0, 10);
  updateReportLink();
  $('#report-form').addEventListener('input', updateReportLink);
  $('#report-form').addEventListener('submit', e => {
    e.preventDefault();
    showReport();
  });
  firstEventsPage()
    .catch(err => showError('The GPU pool reported a problem: ' + err.message))
    .then(refresh)
    .then(() => Promise.all([loadHistory(), showReport()]));
  setInterval(refresh, REFRESH_MS);
  setInterval(loadHistory, HISTORY_REFRESH_MS);
}
