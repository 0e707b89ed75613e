// weft dashboard. Plain JavaScript, no dependencies, no build step.
// Every value from the API is inserted as text (never as HTML).
'use strict';

(function () {
  // ---------- small helpers ----------
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else e.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const arr = (v) => (Array.isArray(v) ? v : []);
  const has = (v) => v !== undefined && v !== null && v !== '';

  function fmtBytes(n) {
    if (typeof n === 'string' && /^-?\d+$/.test(n)) n = Number(n);
    if (typeof n === 'number' && n < 0) return '—'; // not measured
    if (!has(n) || typeof n !== 'number') return has(n) ? String(n) : '—';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let x = n;
    while (Math.abs(x) >= 1024 && i < u.length - 1) { x /= 1024; i++; }
    return (i === 0 ? String(x) : x.toFixed(x < 10 ? 1 : 0)) + ' ' + u[i];
  }
  function fmtMillis(ms) {
    if (typeof ms !== 'number') return has(ms) ? String(ms) : '—';
    if (ms < 1000) return ms.toFixed(0) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
    if (ms < 3600000) return (ms / 60000).toFixed(1) + ' min';
    return (ms / 3600000).toFixed(1) + ' h';
  }
  function fmtDuration(s) {
    if (typeof s !== 'number') return '—';
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    if (m) return m + 'm ' + r + 's';
    return r + 's';
  }
  function fmtCores(millis) {
    if (typeof millis !== 'number') return has(millis) ? String(millis) : '—';
    return (millis / 1000).toFixed(millis % 1000 === 0 ? 0 : 2);
  }
  // toDate accepts RFC 3339 strings and Unix times in s, ms or ns.
  function toDate(v) {
    if (!has(v)) return null;
    if (typeof v === 'number') {
      if (v > 1e17) return new Date(v / 1e6);
      if (v > 1e11) return new Date(v);
      return new Date(v * 1000);
    }
    const t = Date.parse(v);
    return Number.isNaN(t) ? null : new Date(t);
  }
  // fmtTime shows the time of day, with the date too when full is set or the
  // day is not today.
  function fmtTime(v, full) {
    const d = toDate(v);
    if (!d) return el('span', { class: 'muted' }, has(v) ? String(v) : '—');
    if (d.getUTCFullYear() < 1971) return el('span', { class: 'muted' }, '—');
    const today = new Date().toDateString() === d.toDateString();
    return el('time', { datetime: d.toISOString(), title: d.toISOString() }, full || !today ? d.toLocaleString() : d.toLocaleTimeString());
  }
  function shortID(id) {
    if (!has(id)) return '—';
    id = String(id);
    return id.length > 20 ? id.slice(0, 8) + '…' + id.slice(-6) : id;
  }
  let selfID = '';
  function peer(id) {
    if (!has(id)) return el('span', { class: 'muted' }, '—');
    const s = el('span', { class: 'peer', title: String(id) }, shortID(id));
    if (selfID && id === selfID) return el('span', null, s, el('span', { class: 'tag' }, 'this node'));
    return s;
  }
  // Money travels in one unit, integer pico-credits (1 credit = 1e12):
  // amounts, balances and prices alike.
  function fmtCredits(v) {
    if (typeof v === 'string' && /^-?\d+$/.test(v)) v = Number(v);
    if (typeof v !== 'number') return has(v) ? String(v) : '—';
    // Credits with six decimals everywhere, like the CLI (ledger.CreditDecimals).
    const s = (v / 1e12).toFixed(6);
    return el('span', { title: v + ' pico-credits' }, s + ' cr');
  }
  // A price is a number or an object of rates (per_core_hour, ...).
  function priceText(p) {
    if (isObj(p)) {
      const parts = Object.entries(p).filter(([, v]) => has(v) && v !== 0).map(([k, v]) => k.replace(/^per_/, '/').replace(/_/g, ' ') + ' ' + fmtCredits(v).textContent);
      return parts.length ? parts.join(', ') : '0';
    }
    return fmtCredits(p);
  }
  function priceKey(p) {
    if (typeof p === 'number') return p;
    if (isObj(p)) return Object.values(p).reduce((a, v) => a + (typeof v === 'number' ? v : 0), 0);
    return Number(p) || 0;
  }
  function badge(text, kind) { return el('span', { class: 'badge ' + kind }, text); }
  function stateBadge(state) {
    if (!has(state)) return badge('unknown', 'idle');
    const s = String(state).toLowerCase();
    const ok = ['alive', 'started', 'running', 'ok', 'serving', 'won', 'accepted', 'done', 'succeeded', 'completed', 'ready', 'acked', 'confirmed', 'passing'];
    const warn = ['suspect', 'starting', 'installing', 'pending', 'placing', 'stopping', 'restarting', 'open', 'bidding', 'awarding', 'awarded', 'replacing', 'unconfirmed', 'waiting', 'collecting'];
    const bad = ['dead', 'failed', 'error', 'crashed', 'disputed', 'destroyed', 'lost'];
    return badge(state, ok.includes(s) ? 'ok' : warn.includes(s) ? 'warn' : bad.includes(s) ? 'bad' : 'idle');
  }
  function chips(obj) {
    if (!isObj(obj) || Object.keys(obj).length === 0) return el('span', { class: 'muted' }, '—');
    return el('span', { class: 'chips' }, Object.entries(obj).sort().map(([k, v]) =>
      el('span', { class: 'chip', title: k + '=' + scalar(v) }, k + '=' + scalar(v))));
  }
  function scalar(v) {
    if (!has(v)) return '';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }
  function linkOrText(v) {
    const s = scalar(v);
    if (/^https?:\/\/[^\s]+$/i.test(s)) return el('a', { href: s, rel: 'noopener noreferrer', target: '_blank' }, s);
    return s;
  }

  // table builds an accessible table. cols: [{h, f(row) -> Node|string, num}]
  function table(caption, cols, rows, rowClass) {
    const t = tableEl(caption, cols, rows, rowClass);
    // Long tables scroll inside their section, so the page stays navigable.
    return rows.length > 15 ? el('div', { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': caption }, t) : t;
  }
  function tableEl(caption, cols, rows, rowClass) {
    return el('table', null,
      el('caption', null, caption),
      el('thead', null, el('tr', null, cols.map((c) => el('th', { scope: 'col', class: c.num ? 'num' : null }, c.h)))),
      el('tbody', null, rows.map((r) => el('tr', { class: rowClass ? rowClass(r) : null },
        cols.map((c) => {
          const v = c.f(r);
          return el('td', { class: c.num ? 'num' : c.wrap ? 'wrap' : null }, has(v) ? v : el('span', { class: 'muted' }, '—'));
        })))));
  }

  // generic renders any JSON value: arrays of objects as tables, objects as
  // key/value lists. Used where the shape is not fixed (statements, problems).
  function generic(v, caption, depth, limit) {
    depth = depth || 0;
    limit = limit || MAX_ROWS;
    if (Array.isArray(v)) {
      if (v.length === 0) return el('p', { class: 'empty' }, 'none');
      if (v.every(isObj)) {
        const keys = [];
        for (const row of v) for (const k of Object.keys(row)) if (!keys.includes(k)) keys.push(k);
        const rows = v.slice(0, limit);
        const cap = (caption || (v.length + ' rows')) + (v.length > rows.length ? ' — first ' + rows.length + ' of ' + v.length + ' shown' : '');
        return table(cap, keys.slice(0, 14).map((k) => ({
          h: k.replace(/_/g, ' '), num: v.every((r) => typeof r[k] === 'number' || !has(r[k])),
          wrap: true,
          f: (r) => cell(k, r[k]),
        })), rows);
      }
      return scalarList(v);
    }
    if (isObj(v)) {
      if (depth > 2) return compact(v);
      const dl = el('dl', { class: 'kv' });
      const nested = [];
      for (const [k, x] of Object.entries(v)) {
        if (Array.isArray(x) && x.length && x.every(isObj)) { nested.push([k, x]); continue; }
        dl.append(el('dt', null, k.replace(/_/g, ' ')), el('dd', null, isObj(x) ? generic(x, k, depth + 1) : Array.isArray(x) ? (x.length ? scalarList(x) : '—') : cell(k, x)));
      }
      return el('div', null, dl, nested.map(([k, x]) => generic(x, k + ' (' + x.length + ')', depth + 1)));
    }
    return el('span', null, scalar(v));
  }
  const MAX_ROWS = 100;
  // cell renders one value of a generic table according to its key.
  function cell(k, x) {
    if (isObj(x) || Array.isArray(x)) return compact(x);
    if (typeof x === 'string' && (k === 'status' || k === 'state')) return stateBadge(x);
    if (/(^|_)(amount|price|earned|spent|granted|balance)$|^price_per_hour$|^(per|cpu|mem|disk|net)_per_/.test(k) && (typeof x === 'number' || /^-?\d+$/.test(String(x)))) return fmtCredits(x);
    if (typeof x === 'string' && /peer|node|author|requester|provider|party/.test(k)) return peer(x);
    if (/(^|_)(at|time|from|to|start|end)$/.test(k) && toDate(x)) return fmtTime(x);
    if (typeof x === 'string' && /(^|_)(cid|receipt|contract|dispute|instance_id)$/.test(k)) return el('code', { title: x }, shortID(x));
    return linkOrText(x);
  }
  // scalarList shows a list of IDs or values, shortened, the first few only.
  function scalarList(v) {
    const shown = v.slice(0, 8).map((x) => (Array.isArray(x) ? '[' + x.map((y) => shortID(scalar(y))).join(' ≠ ') + ']' : shortID(scalar(x))));
    return el('span', { title: v.map(scalar).join('\n') }, shown.join(', ') + (v.length > shown.length ? ' … (+' + (v.length - shown.length) + ' more)' : ''));
  }
  // details renders an entry body (or any flat-ish object) as a compact
  // inline list, formatting what it recognises: CIDs ({"/": ...}), peers,
  // credits, nanosecond times and durations, usage vectors.
  function details(obj) {
    if (!isObj(obj)) return has(obj) ? compact(obj) : null;
    const parts = [];
    for (const [k, v] of Object.entries(obj)) {
      if (!has(v)) continue;
      let val;
      if (isObj(v) && typeof v['/'] === 'string') val = el('code', { title: v['/'] }, shortID(v['/']));
      else if (k === 'price') val = priceText(v);
      else if ((k === 'usage' || k === 'caps') && isObj(v)) val = Object.entries(v).filter(([, x]) => x).map(([uk, x]) => uk.replace(/_(bytes|ms)$/, '').replace(/_/g, ' ') + ' ' + (/bytes$/.test(uk) ? fmtBytes(x) : /_ms$/.test(uk) ? fmtMillis(x) : scalar(x))).join(', ') || '0';
      else if (/_ns$/.test(k) && typeof v === 'number') val = /^(slice|duration)/.test(k) ? fmtMillis(v / 1e6) : fmtTime(v);
      else if (isObj(v) || Array.isArray(v)) val = compact(v);
      else val = cell(k, v);
      parts.push(el('span', { class: 'kvi' }, el('span', { class: 'muted' }, k.replace(/_ns$/, '').replace(/_/g, ' ') + ' '), val));
    }
    return parts.length ? el('span', { class: 'kvs' }, parts) : null;
  }
  function compact(v) {
    let s = JSON.stringify(v);
    if (s.length > 160) s = s.slice(0, 157) + '…';
    return el('code', { title: JSON.stringify(v) }, s);
  }

  // ---------- fetching ----------
  class HTTPError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  let loggedOut = false;
  async function getJSON(path) {
    let resp;
    try {
      resp = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-store' });
    } catch (e) {
      throw new HTTPError(0, 'cannot reach the node (' + e.message + ')');
    }
    if (resp.status === 401) { showLoggedOut(); throw new HTTPError(401, 'not logged in'); }
    if (!resp.ok) {
      let msg = resp.status + ' ' + resp.statusText;
      try { const b = await resp.json(); if (b && b.error) msg = b.error; } catch (_) { /* not JSON */ }
      throw new HTTPError(resp.status, msg);
    }
    return resp.json();
  }
  const unavailable = (s) => s === 404 || s === 405 || s === 501;

  // setBody replaces a section body and records its state for tests and styling.
  function setBody(body, state, ...nodes) {
    body.dataset.state = state;
    body.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
  }
  function showProblem(body, path, err) {
    if (err.status === 401) return; // the login panel says it
    if (unavailable(err.status)) {
      setBody(body, 'unavailable', el('p', { class: 'unavailable' }, 'Not available on this node (', el('code', null, path), ' is not served).'));
    } else {
      setBody(body, 'error', el('p', { class: 'error' }, 'Could not load ', el('code', null, path), ': ' + err.message));
    }
  }

  // ---------- sections ----------
  let status = null;
  let statusAt = 0;

  function renderFacts() {
    const facts = $('node-facts');
    if (!status) { facts.replaceChildren(el('div', null, el('dt', null, 'status'), el('dd', { class: 'muted' }, 'not available on this node'))); return; }
    const up = typeof status.uptime_s === 'number' ? status.uptime_s + (Date.now() - statusAt) / 1000 : null;
    const items = [
      ['grid', status.grid], ['preset', status.preset], ['version', status.version],
      ['uptime', up === null ? null : fmtDuration(up)],
      ['members', status.members], ['connected peers', status.peers],
      ['partitions', typeof status.partitions === 'number' ? status.partitions
        : isObj(status.partitions) && has(status.partitions.total) ? scalar(status.partitions.free) + ' free of ' + scalar(status.partitions.total) : null],
    ];
    const nodes = items.filter(([, v]) => has(v)).map(([k, v]) =>
      el('div', null, el('dt', null, k), el('dd', { id: 'fact-' + k.replace(/ /g, '-') }, String(v))));
    if (isObj(status.limits)) {
      const ls = Object.entries(status.limits).sort();
      nodes.push(el('div', { class: 'limits' }, el('dt', null, 'host limits'), el('dd', null, ls.length ? el('span', { class: 'chips' }, ls.map(([k, v]) =>
        el('span', { class: 'chip', title: k + ' = ' + scalar(v) }, k.replace(/_bytes$/, '').replace(/_/g, ' ') + ' ' + (/bytes$/.test(k) ? fmtBytes(v) : scalar(v))))) : 'none enforced')));
    }
    facts.replaceChildren(...nodes);
  }

  // renderStatusNotes shows what /v1/status says about partitions' limits
  // and the market's counters under those sections.
  function renderStatusNotes() {
    const pl = $('partitions-limits');
    const parts = status && isObj(status.partitions) ? status.partitions : null;
    const lim = parts && isObj(parts.limits) ? parts.limits : null;
    const sb = status && isObj(status.sandbox) ? status.sandbox : null;
    const sandboxNote = () => {
      if (!sb) return null;
      const on = ['fs', 'bind_ports', 'scoped_signals', 'private_tmp', 'private_ipc', 'rlimits', 'disk_quota', 'disk_metered', 'promises']
        .filter((k) => sb[k] === true).map((k) => k.replace(/_/g, ' '));
      const all = sb.fs === true && sb.bind_ports === true && sb.scoped_signals === true && sb.private_tmp === true && sb.rlimits === true;
      return el('div', { id: 'partitions-sandbox' },
        badge(all ? 'sandboxed' : 'sandbox partial', all ? 'ok' : 'warn'), ' ',
        'Landlock ABI ' + scalar(sb.landlock_abi) + (on.length ? ': ' + on.join(', ') : ': nothing in force'),
        arr(sb.reasons).length ? el('ul', null, arr(sb.reasons).map((r) => el('li', null, scalar(r)))) : null);
    };
    if (lim) {
      const reasons = arr(lim.reasons);
      pl.replaceChildren(
        el('span', null, lim.enforced === false ? badge('limits not enforced', 'warn') : lim.enforced === true ? badge('limits enforced', 'ok') : null, ' ', scalar(lim.summary)),
        reasons.length ? el('ul', null, reasons.map((r) => el('li', null, scalar(r)))) : null,
        sandboxNote());
    } else {
      pl.replaceChildren(...(sb ? [sandboxNote()] : []));
    }
    const mc = $('market-counters');
    const m = status && isObj(status.market) ? status.market : null;
    if (m) {
      mc.replaceChildren(el('span', null, 'Market on this node: '), el('span', null,
        Object.entries(m).filter(([, v]) => typeof v === 'number' || typeof v === 'string').map(([k, v]) => k.replace(/_/g, ' ') + ' ' + scalar(v)).join(' · ')));
    } else {
      mc.replaceChildren();
    }
  }

  async function loadStatus() {
    try {
      status = await getJSON('/v1/status');
      statusAt = Date.now();
      selfID = status.peer_id || '';
      $('node-id').textContent = shortID(selfID);
      $('node-id').title = selfID;
      document.title = 'weft ' + shortID(selfID);
      const sp = $('statement-peer');
      if (!sp.value && selfID) sp.value = selfID;
    } catch (e) {
      if (e.status === 401) return;
      status = null;
      $('node-id').textContent = '';
    }
    renderFacts();
    renderStatusNotes();
  }

  async function loadGrid() {
    const body = document.querySelector('#grid .body');
    await loadStatus();
    let peers;
    try { peers = await getJSON('/v1/peers'); } catch (e) { showProblem(body, '/v1/peers', e); $('grid-summary').textContent = ''; return; }
    peers = arr(peers);
    const order = { alive: 0, suspect: 1, dead: 2 };
    peers.sort((a, b) => ((b.peer_id === selfID) - (a.peer_id === selfID)) ||
      ((order[a.state] ?? 3) - (order[b.state] ?? 3)) || String(a.peer_id).localeCompare(String(b.peer_id)));
    const alive = peers.filter((p) => p.state === 'alive').length;
    $('grid-summary').textContent = alive + ' alive of ' + peers.length + ' known';
    if (peers.length === 0) { setBody(body, 'empty', el('p', { class: 'empty' }, 'No members known yet.')); return; }
    const adv = (p) => (isObj(p.advert) ? p.advert : {});
    setBody(body, 'ok', table('Members as this node sees them: liveness from failure detection, capacity from each node\'s advert.', [
      { h: 'Peer', f: (p) => peer(p.peer_id) },
      { h: 'State', f: (p) => stateBadge(p.state) },
      { h: 'CPU (cores)', num: true, f: (p) => fmtCores(adv(p).cpu_millis) },
      { h: 'Memory', num: true, f: (p) => fmtBytes(adv(p).memory_bytes) },
      { h: 'Disk', num: true, f: (p) => fmtBytes(adv(p).disk_bytes) },
      { h: 'Free partitions', num: true, f: (p) => scalar(adv(p).free_partitions) },
      { h: 'Labels', f: (p) => chips(adv(p).labels) },
      { h: 'RTT', num: true, f: (p) => (typeof p.rtt_ms === 'number' ? p.rtt_ms.toFixed(1) + ' ms' : '—') },
      { h: 'Addresses', f: (p) => { const a = arr(p.addrs); return a.length ? el('span', { title: a.join('\n') }, a.length + ' addr' + (a.length > 1 ? 's' : '')) : '—'; } },
    ], peers, (p) => (p.peer_id === selfID ? 'self' : null)));
  }

  async function loadPartitions() {
    const body = document.querySelector('#partitions .body');
    let parts;
    try { parts = arr(await getJSON('/v1/partitions')); } catch (e) { showProblem(body, '/v1/partitions', e); $('partitions-summary').textContent = ''; return; }
    // What the market knows of the instances hosted here (name, requester,
    // fencing), when this node serves it.
    const hosted = {};
    try { for (const h of arr(await getJSON('/v1/hosted'))) if (has(h.instance_id)) hosted[h.instance_id] = h; } catch (_) { /* optional */ }
    parts.sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
    const used = parts.filter((p) => has(p.instance_id)).length;
    $('partitions-summary').textContent = used + ' in use of ' + parts.length;
    if (parts.length === 0) { setBody(body, 'empty', el('p', { class: 'empty' }, 'This node has no partitions.')); return; }
    const u = (p) => (isObj(p.usage) ? p.usage : {});
    setBody(body, 'ok', table('Local slots: what runs in each, its promises (health checks) and metered usage.', [
      { h: '#', num: true, f: (p) => scalar(p.index) },
      { h: 'Instance', f: (p) => {
        if (!has(p.instance_id)) return el('span', { class: 'muted' }, 'free');
        const h = hosted[p.instance_id];
        const id = el('span', { class: 'peer', title: p.instance_id }, shortID(p.instance_id));
        if (!h) return id;
        return el('span', null, el('strong', null, scalar(h.name)), ' ', id, h.fenced ? ' ' : null, h.fenced ? badge('fenced', 'bad') : null,
          has(h.requester) ? el('div', { class: 'muted small' }, 'for ', peer(h.requester)) : null);
      } },
      { h: 'State', f: (p) => stateBadge(p.state) },
      { h: 'Phase', f: (p) => scalar(p.phase) },
      { h: 'Promises', f: (p) => {
        const ps = arr(p.promises);
        if (!ps.length) return el('span', { class: 'muted' }, '—');
        return el('span', { class: 'chips' }, ps.map((x) => {
          const t = (x.ok ? 'passing' : 'failing') + (x.last_error ? ': ' + x.last_error : '') + (x.checked_at ? ' (checked ' + (toDate(x.checked_at) || x.checked_at).toLocaleString() + ')' : '');
          return el('span', { class: 'badge ' + (x.ok ? 'ok' : 'bad'), title: t }, (x.ok ? '✓ ' : '✗ ') + scalar(x.name));
        }));
      } },
      { h: 'CPU time', num: true, f: (p) => fmtMillis(u(p).cpu_ms) },
      { h: 'Mem avg / peak', num: true, f: (p) => fmtBytes(u(p).mem_avg_bytes) + ' / ' + fmtBytes(u(p).mem_peak_bytes) },
      { h: 'Disk', num: true, f: (p) => fmtBytes(u(p).disk_bytes) },
      { h: 'Net', num: true, f: (p) => fmtBytes(u(p).net_bytes) },
      { h: 'Ports', f: (p) => (Array.isArray(p.ports) && p.ports.length === 2 ? p.ports[0] + '–' + p.ports[1] : scalar(p.ports)) },
      { h: 'User', f: (p) => scalar(p.user) },
      { h: 'Limits', f: (p) => (p.limits_enforced === true ? badge('enforced', 'ok') : p.limits_enforced === false ? badge('not enforced', 'warn') : scalar(p.limits_enforced)) },
    ], parts, (p) => (has(p.instance_id) ? null : 'free')));
  }

  // The instances whose events and logs panel is open (kept across reloads).
  const openHistory = new Set();
  // historyPanel is an instance's "events & logs" panel: its timeline and
  // the last lines of its logs, read from its host, fetched when opened.
  function historyPanel(i) {
    const name = String(i.name);
    const ref = encodeURIComponent(i.mine === false ? String(i.instance_id) : name);
    const box = el('div', { class: 'history-body' }, el('p', { class: 'muted' }, 'Loading…'));
    const d = el('details', { class: 'history', 'data-instance': name }, el('summary', null, 'events & logs'), box);
    const load = async () => {
      const parts = [];
      try {
        const evs = arr(await getJSON('/v1/instances/' + encodeURIComponent(name) + '/events'));
        parts.push(el('h3', null, 'Events'), evs.length === 0 ? el('p', { class: 'muted' }, 'No events yet.')
          : el('ol', { class: 'plain events' }, evs.slice(-20).map((e) => el('li', null,
            has(e.time) ? fmtTime(e.time) : null, ' ', el('strong', null, scalar(e.kind)),
            has(e.node) ? el('span', null, ' on ', peer(e.node)) : null,
            has(e.detail) && e.detail !== '' ? el('span', { class: 'muted' }, ' — ' + String(e.detail)) : null))));
      } catch (e) { parts.push(el('p', { class: 'muted' }, 'Events: ' + e.message)); }
      try {
        const resp = await fetch('/v1/instances/' + ref + '/logs?tail=100', { credentials: 'same-origin', cache: 'no-store' });
        const text = await resp.text();
        let msg = text;
        if (!resp.ok) { try { msg = JSON.parse(text).error; } catch (_) { /* not JSON */ } }
        parts.push(el('h3', null, 'Logs (last 100 lines of each process, from its host)'),
          resp.ok ? el('pre', { class: 'logs' }, text === '' ? '(empty)' : text) : el('p', { class: 'muted' }, 'Logs: ' + msg));
      } catch (e) { parts.push(el('p', { class: 'muted' }, 'Logs: ' + e.message)); }
      box.replaceChildren(...parts);
    };
    d.addEventListener('toggle', () => { if (d.open) { openHistory.add(name); load(); } else openHistory.delete(name); });
    if (openHistory.has(name)) d.open = true;
    return d;
  }

  async function loadInstances() {
    const body = document.querySelector('#instances .body');
    let insts;
    try { insts = arr(await getJSON('/v1/instances')); } catch (e) { showProblem(body, '/v1/instances', e); $('instances-summary').textContent = ''; return; }
    insts.sort((a, b) => String(a.name).localeCompare(String(b.name)));
    $('instances-summary').textContent = insts.length + ' requested from this node';
    if (insts.length === 0) { setBody(body, 'empty', el('p', { class: 'empty' }, 'No instances requested from this node.')); return; }
    setBody(body, 'ok', table('Instances this node requested, where they run, and their connection parameters.', [
      { h: 'Name', f: (i) => el('span', null, el('strong', null, scalar(i.name)), i.mine === false ? el('span', { class: 'tag', title: 'this node guards it for its requester' }, 'guarding') : null, i.batch ? el('span', { class: 'tag' }, 'batch') : null) },
      { h: 'State', wrap: true, f: (i) => el('span', null, stateBadge(i.state),
        has(i.requested_state) && i.requested_state !== i.state ? el('span', { class: 'muted' }, ' → ' + i.requested_state) : null,
        has(i.reason) ? el('div', { class: 'muted small' }, scalar(i.reason)) : null) },
      { h: 'Host', f: (i) => peer(i.node) },
      { h: 'Epoch', num: true, f: (i) => scalar(i.epoch) },
      { h: 'Instance ID', f: (i) => el('span', { class: 'peer', title: scalar(i.instance_id) }, shortID(i.instance_id)) },
      { h: 'Updated', f: (i) => (has(i.updated_at) ? fmtTime(i.updated_at) : null) },
      { h: 'Connection', wrap: true, f: (i) => {
        if (!isObj(i.connection) || !Object.keys(i.connection).length) return el('span', { class: 'muted' }, '—');
        return el('ul', { class: 'plain' }, Object.entries(i.connection).map(([k, v]) => el('li', null, el('span', { class: 'muted' }, k + ': '), linkOrText(v))));
      } },
      { h: 'History', wrap: true, f: historyPanel },
    ], insts));
  }

  async function loadAuctions() {
    const body = document.querySelector('#auctions .body');
    let aucs;
    try { aucs = arr(await getJSON('/v1/auctions')); } catch (e) { showProblem(body, '/v1/auctions', e); $('auctions-summary').textContent = ''; return; }
    const t = (a) => { const d = toDate(a.opened_at); return d ? d.getTime() : 0; };
    aucs.sort((a, b) => t(b) - t(a));
    const shown = aucs.slice(0, 50);
    $('auctions-summary').textContent = aucs.length + ' auction' + (aucs.length === 1 ? '' : 's') + (aucs.length > shown.length ? ' (latest ' + shown.length + ' shown)' : '');
    if (aucs.length === 0) { setBody(body, 'empty', el('p', { class: 'empty' }, 'No auctions seen by this node yet.')); return; }
    setBody(body, 'ok', table('Auctions, newest first: the bids and declines each received and who won.', [
      { h: 'Request', wrap: true, f: (a) => el('span', null, el('strong', null, scalar(a.request)),
        has(a.epoch) ? el('span', { class: 'muted' }, ' epoch ' + a.epoch) : null,
        has(a.reason) ? el('div', { class: 'muted small' }, scalar(a.reason)) : null) },
      { h: 'Opened', f: (a) => fmtTime(a.opened_at) },
      { h: 'Took', num: true, f: (a) => { const o = toDate(a.opened_at), c = toDate(a.closed_at); return o && c ? fmtMillis(c - o) : has(a.phase) ? stateBadge(a.phase) : el('span', { class: 'muted' }, 'open'); } },
      { h: 'Bids', f: (a) => {
        const bs = arr(a.bids).slice().sort((x, y) => priceKey(x.price) - priceKey(y.price));
        if (!bs.length) return el('span', { class: 'muted' }, 'none');
        return el('ul', { class: 'plain' }, bs.map((b) => el('li', { class: has(a.winner) && b.node === a.winner ? 'winner' : null },
          peer(b.node), ' ', el('span', null, 'price ', priceText(b.price)), typeof b.fit === 'number' ? el('span', { class: 'muted' }, ' · fit ' + b.fit) : null, typeof b.rtt_ms === 'number' ? el('span', { class: 'muted' }, ' · ' + b.rtt_ms.toFixed(1) + ' ms') : null)));
      } },
      { h: 'Declines', wrap: true, f: (a) => {
        const ds = arr(a.declines);
        if (!ds.length) return el('span', { class: 'muted' }, 'none');
        return el('ul', { class: 'plain' }, ds.map((d) => el('li', null, peer(d.node), el('span', { class: 'muted' }, ': ' + scalar(d.reason)))));
      } },
      { h: 'Winner', f: (a) => (has(a.winner) ? peer(a.winner) : badge('no winner', 'warn')) },
      { h: 'Explanation', wrap: true, f: (a) => scalar(a.explanation) },
    ], shown));
  }

  async function loadAudit() {
    const body = $('audit-body');
    let a;
    try { a = await getJSON('/v1/ledger/audit'); } catch (e) { showProblem(body, '/v1/ledger/audit', e); $('ledger-summary').textContent = ''; return; }
    const problems = arr(a.problems);
    $('ledger-summary').textContent = scalar(a.entries) + ' entries · ' + scalar(a.receipts) + ' receipts';
    const head = el('div', { class: 'audit' },
      el('span', { class: 'big' }, a.ok ? badge('✓ audit clean', 'ok') : badge('✗ ' + problems.length + ' problem' + (problems.length === 1 ? '' : 's'), 'bad')),
      el('span', null, el('span', { class: 'muted' }, 'entries '), el('strong', { id: 'audit-entries' }, scalar(a.entries))),
      el('span', null, el('span', { class: 'muted' }, 'receipts '), el('strong', null, scalar(a.receipts))),
      ...Object.entries(a).filter(([k, v]) => !['ok', 'entries', 'receipts', 'root', 'problems'].includes(k) && (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean'))
        .map(([k, v]) => el('span', null, el('span', { class: 'muted' }, k.replace(/_/g, ' ') + ' '), el('strong', null, /amount$/.test(k) ? fmtCredits(v) : scalar(v)))));
    const root = el('p', null, el('span', { class: 'muted' }, 'root '), el('code', { class: 'root', id: 'audit-root' }, has(a.root) ? scalar(a.root) : '—'));
    const extra = Object.entries(a).filter(([k, v]) => !['problems'].includes(k) && Array.isArray(v) && v.length)
      .map(([k, v]) => (v.every(isObj) ? generic(v, k.replace(/_/g, ' ') + ' (' + v.length + ')', 0, 50)
        : el('p', null, el('span', { class: 'muted' }, k.replace(/_/g, ' ') + ' (' + v.length + '): '), scalarList(v))));
    const byCode = {};
    for (const p of problems) { const c = scalar(p.code || p.kind || 'problem'); byCode[c] = (byCode[c] || 0) + 1; }
    const codes = problems.length ? el('p', null, el('span', { class: 'muted' }, 'problems by kind: '),
      el('span', { class: 'chips' }, Object.entries(byCode).sort((x, y) => y[1] - x[1]).map(([c, n]) => el('span', { class: 'badge bad' }, c + ' × ' + n)))) : null;
    const probs = problems.length ? table('Problems found by the audit' + (problems.length > 50 ? ' — first 50 of ' + problems.length : ''), [
      { h: 'Entry', f: (p) => el('code', { title: scalar(p.cid) }, shortID(p.cid)) },
      { h: 'Kind', f: (p) => scalar(p.kind) },
      { h: 'Code', f: (p) => scalar(p.code) },
      { h: 'Author', f: (p) => peer(p.author) },
      { h: 'Problem', wrap: true, f: (p) => scalar(p.problem ?? p.error ?? p.reason ?? p.message ?? compact(p).textContent) },
    ], problems.slice(0, 50)) : null;
    setBody(body, a.ok ? 'ok' : 'problems', head, root, codes, probs, ...extra);
  }

  async function loadEntries() {
    const body = $('entries-body');
    const kind = $('entries-kind').value;
    const path = '/v1/ledger/entries?limit=50' + (kind ? '&kind=' + encodeURIComponent(kind) : '');
    let es;
    try { es = await getJSON(path); } catch (e) { showProblem(body, '/v1/ledger/entries', e); return; }
    if (isObj(es) && Array.isArray(es.entries)) es = es.entries;
    es = arr(es);
    if (es.length === 0) { setBody(body, 'empty', el('p', { class: 'empty' }, kind ? 'No ' + kind + ' entries.' : 'The ledger is empty.')); return; }
    const known = ['kind', 'cid', 'author', 'seq', 'time', 'at', 'created_at', 'sig', 'signature', 'prev'];
    const when = (e) => e.time ?? e.at ?? e.created_at;
    setBody(body, 'ok', table('The ' + es.length + ' latest ' + (kind || '') + ' entries, each signed by its author.', [
      { h: 'Kind', f: (e) => badge(e.kind === 'ack' ? 'acknowledgement' : scalar(e.kind) || '?', e.kind === 'dispute' ? 'bad' : e.kind === 'receipt' ? 'ok' : 'idle') },
      { h: 'Author', f: (e) => peer(e.author) },
      { h: 'Seq', num: true, f: (e) => scalar(e.seq) },
      { h: 'Time', f: (e) => (has(when(e)) ? fmtTime(when(e)) : null) },
      { h: 'CID', f: (e) => el('code', { title: scalar(e.cid) }, shortID(e.cid)) },
      { h: 'Details', wrap: true, f: (e) => {
        const rest = {};
        for (const [k, v] of Object.entries(isObj(e) ? e : {})) if (!known.includes(k) && k !== 'body') rest[k] = v;
        if (isObj(e.body)) Object.assign(rest, e.body); else if (has(e.body)) rest.body = e.body;
        return details(rest);
      } },
    ], es));
  }

  async function loadStatement() {
    const body = $('statement-body');
    const role = $('statement-role').value;
    const id = $('statement-peer').value.trim();
    if (!id) { setBody(body, 'idle', el('p', { class: 'muted' }, 'Enter a peer ID.')); return; }
    const path = '/v1/ledger/statement?' + role + '=' + encodeURIComponent(id) + '&format=json';
    let st;
    try { st = await getJSON(path); } catch (e) { showProblem(body, '/v1/ledger/statement', e); return; }
    if (isObj(st) && Array.isArray(st.lines) && isObj(st.total)) setBody(body, 'ok', ...statement(st, role, id));
    else setBody(body, 'ok', generic(st, 'Statement for ' + role + ' ' + shortID(id)));
  }

  // statement renders the ledger's statement: totals, periods, receipts.
  function statement(st, role, id) {
    const t = st.total;
    const other = role === 'provider' ? 'requester' : 'provider';
    const money = (k) => ({ h: k.charAt(0).toUpperCase() + k.slice(1), num: true, f: (r) => fmtCredits(r[k]) });
    const head = el('div', { class: 'audit' },
      el('span', null, el('span', { class: 'muted' }, scalar(st.role || role) + ' '), peer(st.party || id)),
      el('span', null, el('span', { class: 'muted' }, 'period '), el('strong', null, scalar(st.period) || '—')),
      el('span', null, el('span', { class: 'muted' }, 'receipts '), el('strong', null, scalar(t.receipts))),
      el('span', null, el('span', { class: 'muted' }, 'acked '), el('strong', null, fmtCredits(t.acked))),
      el('span', null, el('span', { class: 'muted' }, 'unconfirmed '), el('strong', null, fmtCredits(t.unconfirmed))),
      el('span', null, el('span', { class: 'muted' }, 'disputed '), el('strong', null, fmtCredits(t.disputed))));
    const periods = arr(st.periods);
    const lines = arr(st.lines);
    const shown = lines.slice(-MAX_ROWS).reverse();
    return [head,
      periods.length ? table('Totals per period', [
        { h: 'From', f: (p) => fmtTime(p.from, true) }, { h: 'To', f: (p) => fmtTime(p.to, true) },
        { h: 'Receipts', num: true, f: (p) => scalar(p.receipts) },
        money('acked'), money('unconfirmed'), money('disputed'),
      ], periods) : null,
      lines.length ? table('Receipts, newest first' + (lines.length > shown.length ? ' — latest ' + shown.length + ' of ' + lines.length : ''), [
        { h: 'Slice', num: true, f: (l) => scalar(l.slice) },
        { h: 'From', f: (l) => fmtTime(l.from) }, { h: 'To', f: (l) => fmtTime(l.to) },
        { h: 'Instance', f: (l) => (has(l.request) ? el('strong', null, l.request) : el('code', { title: scalar(l.instance_id) }, shortID(l.instance_id))) },
        { h: other.charAt(0).toUpperCase() + other.slice(1), f: (l) => peer(l[other]) },
        { h: 'Epoch', num: true, f: (l) => scalar(l.epoch) },
        { h: 'Usage', wrap: true, f: (l) => (isObj(l.usage) ? el('span', { class: 'chips' }, Object.entries(l.usage).map(([k, v]) =>
          el('span', { class: 'chip' }, k.replace(/_(bytes|ms)$/, '').replace(/_/g, ' ') + ' ' + (/bytes$/.test(k) ? fmtBytes(v) : /_ms$/.test(k) ? fmtMillis(v) : scalar(v))))) : null) },
        money('amount'),
        { h: 'Status', f: (l) => stateBadge(l.status) },
        { h: 'Receipt', f: (l) => el('code', { title: scalar(l.receipt) }, shortID(l.receipt)) },
      ], shown) : el('p', { class: 'empty' }, 'No receipts for this ' + role + '.')];
  }

  // ---------- refresh scheduling ----------
  // A section reloads at most once at a time; a change during a load queues
  // one more. Reloads are spaced by at least minGap and by five times the
  // last load's duration, so that a costly route (the audit verifies every
  // signature) never keeps the node busy.
  const sections = {
    grid: { topic: 'peers', load: loadGrid, minGap: 0 },
    partitions: { topic: 'partitions', load: loadPartitions, minGap: 0 },
    instances: { topic: 'instances', load: loadInstances, minGap: 0 },
    auctions: { topic: 'auctions', load: loadAuctions, minGap: 0 },
    audit: { topic: 'ledger', load: loadAudit, minGap: 3000 },
    entries: { topic: 'ledger', load: loadEntries, minGap: 1000 },
    statement: { topic: 'ledger', load: loadStatement, minGap: 2000, manual: true },
  };
  for (const s of Object.values(sections)) Object.assign(s, { running: false, again: false, last: 0, took: 0, timer: 0 });

  function refresh(name) {
    const s = sections[name];
    if (s.running) { s.again = true; return; }
    const wait = s.last + Math.max(s.minGap, 5 * s.took) - Date.now();
    if (wait > 0) {
      if (!s.timer) s.timer = setTimeout(() => { s.timer = 0; refresh(name); }, wait);
      return;
    }
    s.running = true;
    s.last = Date.now();
    s.load().catch((e) => console.warn('weft dashboard: ' + name + ': ' + e.message)).finally(() => {
      s.running = false;
      s.took = Date.now() - s.last;
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      if (s.again) { s.again = false; refresh(name); }
    });
  }
  // While the tab is hidden, changes are only noted; they load when it shows.
  const hiddenChanges = new Set();
  function refreshTopic(topic) {
    if (document.hidden) { hiddenChanges.add(topic); return; }
    for (const [name, s] of Object.entries(sections)) {
      if (s.topic !== topic) continue;
      if (s.manual && $('statement-body').dataset.state === 'idle') continue;
      refresh(name);
    }
  }
  function refreshAll() { for (const t of new Set(Object.values(sections).map((s) => s.topic))) refreshTopic(t); }

  // ---------- live updates ----------
  let es = null;
  let backoff = 1000;
  let retryTimer = 0;
  function setLive(cls, text) {
    const l = $('live');
    l.className = 'live ' + cls;
    l.textContent = text;
  }
  function connect() {
    if (es) es.close();
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = 0; }
    setLive(es ? 'reconnecting' : 'connecting', es ? 'reconnecting…' : 'connecting…');
    const src = new EventSource('/v1/events');
    es = src;
    src.addEventListener('hello', () => {
      backoff = 1000;
      const l = $('live');
      l.dataset.connects = String(Number(l.dataset.connects || 0) + 1);
      setLive('on', 'live');
      refreshAll(); // catch up with whatever changed while disconnected
    });
    src.addEventListener('change', (ev) => {
      const l = $('live');
      l.dataset.changes = String(Number(l.dataset.changes || 0) + 1);
      let topic = '';
      try { topic = JSON.parse(ev.data).topic; } catch (_) { return; }
      refreshTopic(topic);
    });
    src.onerror = () => {
      if (src !== es) return; // a stream this page already replaced
      if (src.readyState === EventSource.CLOSED) {
        // The server refused the stream (e.g. 401) or went away: check the
        // session, then retry with back-off.
        setLive('reconnecting', 'reconnecting…');
        retryTimer = setTimeout(checkSession, backoff);
        backoff = Math.min(backoff * 2, 15000);
      } else {
        setLive('reconnecting', 'reconnecting…');
      }
    };
  }

  function showLoggedOut() {
    if (loggedOut) return;
    loggedOut = true;
    if (es) { es.close(); es = null; }
    document.body.classList.add('logged-out');
    $('login').hidden = false;
    $('node-id').textContent = '';
    setLive('off', 'not logged in');
  }

  async function checkSession() {
    retryTimer = 0;
    let resp;
    try {
      resp = await fetch('/v1/dashboard', { credentials: 'same-origin', cache: 'no-store' });
    } catch (_) {
      setLive('reconnecting', 'node unreachable — retrying');
      retryTimer = setTimeout(checkSession, backoff);
      backoff = Math.min(backoff * 2, 15000);
      return;
    }
    if (resp.status === 401) { showLoggedOut(); return; }
    loggedOut = false;
    document.body.classList.remove('logged-out');
    $('login').hidden = true;
    refreshAll();
    connect();
  }

  // ---------- wiring ----------
  document.addEventListener('DOMContentLoaded', () => {
    $('entries-kind').addEventListener('change', () => refresh('entries'));
    $('statement-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      $('statement-body').dataset.state = 'loading';
      refresh('statement');
    });
    $('login-retry').addEventListener('click', () => { loggedOut = false; checkSession(); });
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) return;
      const topics = [...hiddenChanges];
      hiddenChanges.clear();
      for (const t of topics) refreshTopic(t);
    });
    setInterval(() => { if (status) renderFacts(); }, 1000);
    checkSession();
  });
})();
