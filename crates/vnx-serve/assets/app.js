// vnx serve: the board page. Plain JS, no framework; everything it loads
// comes from this server. Text from the ledger is only ever set with
// textContent, never parsed as HTML.
'use strict';

const COLUMNS = ['queued', 'running', 'gating', 'passed', 'failed'];
const cards = new Map();
let version = 0;
let openId = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function fmtTokens(n) {
  if (!n) return '0 tok';
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M tok`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k tok`;
  return `${n} tok`;
}

function fmtUsd(micros) {
  if (micros === null || micros === undefined) return '$?';
  return `$${(micros / 1e6).toFixed(micros >= 1e6 ? 2 : 4)}`;
}

function elapsedOf(c) {
  if ((c.column === 'running' || c.column === 'gating') && c.started_at) {
    const t = Date.parse(c.started_at);
    if (!Number.isNaN(t)) return Math.max(c.elapsed_ms, Date.now() - t);
  }
  return c.elapsed_ms;
}

function sortKey(c) {
  return c.ended_at || c.started_at || c.dispatch_id;
}

function renderCard(c) {
  const title = [c.skill || '?', c.batch_entry ? `· ${c.batch_entry}` : null].filter(Boolean).join(' ');
  const model = `${c.provider || '?'}${c.model ? '/' + c.model : ''}`;
  const flags = [];
  if (c.orphan) flags.push('orphan: vnx died without a receipt');
  if (c.status && c.status !== 'passed' && c.status !== 'failed') flags.push(c.status);
  if (c.approval_required) flags.push(c.approval ? `approval: ${c.approval}` : 'needs approval');
  if (c.column === 'queued' && c.waiting_for) flags.push(`waiting: ${c.waiting_for}`);
  const live = (c.column === 'running' || c.column === 'gating')
    ? [c.phase, c.turns ? `${c.turns} turns` : null, c.events ? `${c.events} events` : null, c.last_tool]
      .filter(Boolean).join(' · ')
    : null;
  return el('article', {
    class: 'card', 'data-id': c.dispatch_id, 'data-column': c.column, 'data-entry': c.batch_entry,
    'data-status': c.status || '', tabindex: '0', title: 'open the receipt',
  },
  el('div', { class: 'title', text: title }),
  el('div', { class: 'id', text: c.dispatch_id }),
  el('div', { class: 'meta', text: model }),
  el('div', { class: 'meta' },
    el('span', { class: 'elapsed', text: fmtMs(elapsedOf(c)) }), ' · ',
    el('span', { class: 'tokens', text: fmtTokens(c.tokens) }), ' · ',
    el('span', { class: 'cost', text: fmtUsd(c.cost_usd_micros) })),
  live ? el('div', { class: 'meta live', text: live }) : null,
  flags.length ? el('div', { class: 'flag', text: flags.join(' · ') }) : null);
}

function renderBoard() {
  for (const col of COLUMNS) {
    const box = document.querySelector(`#col-${col} .cards`);
    const list = [...cards.values()].filter((c) => c.column === col);
    // Oldest first while waiting or running, newest first once done.
    list.sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
    if (col === 'passed' || col === 'failed') list.reverse();
    box.replaceChildren(...list.map(renderCard));
    document.querySelector(`#col-${col} .count`).textContent = String(list.length);
  }
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; renderBoard(); });
}

// --- live updates --------------------------------------------------------

function connect() {
  const conn = document.getElementById('conn');
  const es = new EventSource('/api/events');
  es.addEventListener('open', () => { conn.dataset.state = 'live'; conn.textContent = 'live'; });
  es.addEventListener('error', () => { conn.dataset.state = 'lost'; conn.textContent = 'reconnecting…'; });
  es.addEventListener('snapshot', (e) => {
    const snap = JSON.parse(e.data);
    version = snap.version;
    cards.clear();
    for (const c of snap.cards) cards.set(c.dispatch_id, c);
    showLedger(snap);
    scheduleRender();
    refreshSoon();
  });
  es.addEventListener('card', (e) => {
    const v = Number(e.lastEventId);
    if (v && v <= version) return;
    version = v || version;
    const c = JSON.parse(e.data);
    cards.set(c.dispatch_id, c);
    scheduleRender();
    if (c.dispatch_id === openId) openReceipt(openId);
  });
  es.addEventListener('remove', (e) => {
    const v = Number(e.lastEventId);
    if (v && v <= version) return;
    version = v || version;
    cards.delete(JSON.parse(e.data).dispatch_id);
    scheduleRender();
  });
  es.addEventListener('ledger', (e) => {
    const v = Number(e.lastEventId);
    if (v && v <= version) return;
    version = v || version;
    showLedger(JSON.parse(e.data));
    refreshSoon();
  });
}

function showLedger(info) {
  if (info.ledger_version !== undefined) document.body.dataset.ledgerVersion = String(info.ledger_version);
  const l = document.getElementById('ledger');
  if (info.ledger_error) l.textContent = info.ledger_error;
  else if (info.ledger_dir) l.textContent = info.ledger_dir;
}

// Verification and stats follow ledger changes, at most once a second.
let refreshTimer = null;
function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; refreshChain(); refreshStats(); }, 300);
}

async function getJson(url) {
  const r = await fetch(url, { cache: 'no-store' });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || `${url}: HTTP ${r.status}`);
  return body;
}

// A slower answer to an older request must not overwrite a newer one.
let chainSeq = 0;
let statsSeq = 0;

async function refreshChain() {
  const chain = document.getElementById('chain');
  const seq = ++chainSeq;
  try {
    const v = await getJson('/api/verify');
    if (seq !== chainSeq) return;
    chain.dataset.ok = String(!!v.ok);
    // Which ledger state this verification saw (compare body[data-ledger-version]).
    chain.dataset.ledgerVersion = String(v.ledger_version);
    if (v.error) chain.textContent = `chain: ${v.error}`;
    else chain.textContent = `chain: ${v.ok ? 'verified' : 'BROKEN'} · ${v.records} records · ${v.segments.length} segments`;
    const box = document.getElementById('findings-box');
    const list = document.getElementById('findings');
    // verify-ledger warns of a started dispatch without a receipt as an
    // orphan; for one still in flight on the board that is expected.
    const inFlight = [...cards.values()].filter((c) => !c.has_receipt && !c.orphan).map((c) => c.dispatch_id);
    const findings = (v.findings || []).filter((f) => !(f.reason === 'orphan' && inFlight.some((id) => f.detail.includes(id))));
    box.hidden = findings.length === 0;
    list.replaceChildren(...findings.map((f) => el('li', {
      class: `finding ${f.severity}`,
      text: `${f.segment}:${f.line}${f.seq !== null && f.seq !== undefined ? ` (seq ${f.seq})` : ''} ${f.label} [${f.severity}]: ${f.detail}`,
    })));
  } catch (err) {
    chain.dataset.ok = 'unknown';
    chain.textContent = `chain: ${err.message}`;
  }
}

async function refreshStats() {
  const seq = ++statsSeq;
  try {
    const v = await getJson('/api/stats');
    if (seq !== statsSeq) return;
    if (v.error) throw new Error(v.error);
    const s = v.stats;
    const t = s.totals;
    const rate = t.pass_rate === null || t.pass_rate === undefined ? '-' : `${Math.round(100 * t.pass_rate)}%`;
    const flight = Object.entries(v.in_flight || {}).map(([k, n]) => `${n} ${k}`).join(', ');
    document.getElementById('totals').textContent =
      `${t.dispatches} receipts · ${rate} passed · ${fmtTokens(t.total_tokens)} · ${fmtUsd(t.cost_usd_micros)}` +
      (t.duration.median_ms !== null && t.duration.median_ms !== undefined ? ` · median ${fmtMs(t.duration.median_ms)}` : '') +
      (s.orphans ? ` · ${s.orphans} orphans` : '') + (flight ? ` · in flight: ${flight}` : '');
    drawChart(Object.entries(s.by_day).slice(-14));
    const body = document.querySelector('#by-model tbody');
    const rows = [
      ...Object.entries(s.by_provider).map(([k, g]) => [`provider ${k}`, g]),
      ...Object.entries(s.by_model).map(([k, g]) => [`model ${k}`, g]),
      ...Object.entries(s.by_skill).map(([k, g]) => [`skill ${k}`, g]),
    ];
    body.replaceChildren(...rows.map(([k, g]) => el('tr', {},
      el('td', { text: k }), el('td', { text: String(g.dispatches) }), el('td', { text: String(g.passed) }),
      el('td', { text: fmtTokens(g.total_tokens) }), el('td', { text: fmtUsd(g.cost_usd_micros) }))));
  } catch (err) {
    document.getElementById('totals').textContent = `stats: ${err.message}`;
  }
}

// A bar per day: cost in USD.
function drawChart(days) {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 300; const H = 120; const pad = 14;
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('role', 'img');
  const max = Math.max(1, ...days.map(([, g]) => g.cost_usd_micros));
  const bw = days.length ? (W - 2 * pad) / days.length : 0;
  days.forEach(([day, g], i) => {
    const h = ((H - 2 * pad) * g.cost_usd_micros) / max;
    const r = document.createElementNS(NS, 'rect');
    r.setAttribute('x', String(pad + i * bw + 1));
    r.setAttribute('y', String(H - pad - h));
    r.setAttribute('width', String(Math.max(1, bw - 2)));
    r.setAttribute('height', String(h));
    const tip = document.createElementNS(NS, 'title');
    tip.textContent = `${day}: ${fmtUsd(g.cost_usd_micros)}, ${g.dispatches} dispatches`;
    r.append(tip);
    svg.append(r);
    const label = document.createElementNS(NS, 'text');
    label.setAttribute('x', String(pad + i * bw + 1));
    label.setAttribute('y', String(H - 2));
    label.textContent = day.slice(5);
    svg.append(label);
  });
  const top = document.createElementNS(NS, 'text');
  top.setAttribute('x', '2'); top.setAttribute('y', '10');
  top.textContent = `max ${fmtUsd(max)}/day`;
  svg.append(top);
  document.getElementById('chart').replaceChildren(svg);
}

// --- the receipt view ----------------------------------------------------

function dl(pairs) {
  const d = el('dl');
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === '') continue;
    d.append(el('dt', { text: k }), el('dd', { text: String(v) }));
  }
  return d;
}

async function openReceipt(id) {
  openId = id;
  const panel = document.getElementById('receipt');
  const body = document.getElementById('receipt-body');
  panel.hidden = false;
  panel.dataset.id = id;
  document.getElementById('receipt-title').textContent = id;
  let r;
  try {
    r = await getJson(`/api/receipts/${encodeURIComponent(id)}`);
  } catch (err) {
    body.replaceChildren(el('p', { class: 'flag', text: err.message }));
    return;
  }
  if (openId !== id) return;
  const c = r.card;
  const rc = r.receipt;
  const parts = [];
  parts.push(el('p', {},
    el('span', { class: `status-${c.status || c.column}`, id: 'receipt-status', text: c.status || c.column }),
    ` · ${c.skill || '?'} · ${c.provider || '?'}${c.model ? '/' + c.model : ''} · ${fmtMs(elapsedOf(c))} · ${fmtTokens(c.tokens)} · ${fmtUsd(c.cost_usd_micros)}`));
  if (c.orphan) parts.push(el('p', { class: 'flag', text: 'Orphan: the vnx process running this dispatch is gone and wrote no receipt.' }));
  if (r.receipt_error) parts.push(el('p', { class: 'flag', text: r.receipt_error }));
  if (!rc) {
    parts.push(el('p', { class: 'muted', text: `No receipt yet (phase ${c.phase || 'unknown'}).` }));
  } else {
    parts.push(el('h3', { text: 'Gates' }));
    const table = el('table', { id: 'gates' },
      el('thead', {}, el('tr', {}, el('th', { text: 'gate' }), el('th', { text: 'layer' }),
        el('th', { text: 'verdict' }), el('th', { text: 'detail' }))));
    const tb = el('tbody');
    for (const g of rc.gates || []) {
      tb.append(el('tr', { class: 'gate', 'data-gate': g.name, 'data-verdict': g.verdict },
        el('td', { text: g.name }), el('td', { text: g.layer }),
        el('td', { class: 'verdict', text: g.verdict }), el('td', { text: g.detail })));
    }
    table.append(tb);
    parts.push(table);
    if (rc.warnings && rc.warnings.length) {
      parts.push(el('h3', { text: 'Warnings' }), el('ul', {}, ...rc.warnings.map((w) => el('li', { text: w }))));
    }
    const p = r.position || {};
    parts.push(el('h3', { text: 'Position in the chain' }), dl([
      ['segment', p.segment], ['line', p.line], ['seq', p.seq],
      ['records in segment', p.segment_records],
      ['records after it', (p.segment_head_seq !== null && p.segment_head_seq !== undefined && p.seq !== undefined) ? p.segment_head_seq - p.seq : null],
      ['hash', p.hash], ['prev', p.prev], ['written', p.ts],
      ['started record', r.started ? `${r.started.segment}:${r.started.line} (seq ${r.started.seq}) ${r.started.hash}` : null],
    ]));
    parts.push(el('h3', { text: 'Hashes' }), dl([
      ['instruction', rc.instruction && rc.instruction.sha256],
      ...((rc.instruction && rc.instruction.parts) || []).map((x) => [`· ${x.name}`, x.sha256]),
      ['report', rc.report && `${rc.report.sha256} (${rc.report.origin}${rc.report.valid ? ', valid' : ', invalid'})`],
      ['event log', rc.event_log_sha256],
      ['git', rc.git && `${rc.git.base.slice(0, 12)}..${rc.git.head.slice(0, 12)} ${rc.git.branch || ''}`],
      ['builds on', (rc.builds_on || []).join(', ')],
    ]));
    if (rc.approval_required || r.approval) {
      const a = r.approval;
      parts.push(el('h3', { text: 'Approval' }), a
        ? dl([['decision', a.decision], ['by', a.by], ['reason', a.reason], ['for this receipt', a.matches_receipt ? 'yes' : 'no (another receipt)']])
        : el('p', { class: 'flag', text: 'Required, not given yet (vnx approve).' }));
    }
  }
  if (r.report !== null && r.report !== undefined) {
    parts.push(el('h3', { text: 'Report' }),
      el('pre', { id: 'report', text: typeof r.report === 'string' ? r.report : JSON.stringify(r.report, null, 2) }));
  } else if (r.report_error) {
    parts.push(el('p', { class: 'flag', text: r.report_error }));
  }
  if (rc) {
    parts.push(el('details', {}, el('summary', { text: 'Receipt JSON' }),
      el('pre', { text: JSON.stringify(rc, null, 2) })));
  }
  body.replaceChildren(...parts);
}

function closeReceipt() {
  openId = null;
  document.getElementById('receipt').hidden = true;
  if (location.hash) history.replaceState(null, '', location.pathname);
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('board').addEventListener('click', (e) => {
    const card = e.target.closest('.card');
    if (!card) return;
    history.replaceState(null, '', `#receipt=${encodeURIComponent(card.dataset.id)}`);
    openReceipt(card.dataset.id);
  });
  document.getElementById('board').addEventListener('keydown', (e) => {
    const card = e.target.closest('.card');
    if (card && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); openReceipt(card.dataset.id); }
  });
  document.getElementById('receipt-close').addEventListener('click', closeReceipt);
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closeReceipt(); });
  const m = /^#receipt=(.+)$/.exec(location.hash);
  if (m) openReceipt(decodeURIComponent(m[1]));
  connect();
  // Running cards' elapsed time ticks between updates.
  setInterval(() => {
    for (const node of document.querySelectorAll('.card[data-column="running"], .card[data-column="gating"]')) {
      const c = cards.get(node.dataset.id);
      const span = node.querySelector('.elapsed');
      if (c && span) span.textContent = fmtMs(elapsedOf(c));
    }
  }, 1000);
});
