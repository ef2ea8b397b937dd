// The popcorn dashboard's script: renders the snapshots the node pushes over a WebSocket
// (src/node/dashboard/server.ts) and posts the buttons' actions. The page's cookie carries the token.
'use strict';

const HISTORY = 120; // chart points kept (a minute at 2 Hz)
const history = { t: [], cpu: [], msgs: [] };
let charts;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  const { dataset, ...properties } = attrs;
  Object.assign(e, properties);
  Object.assign(e.dataset, dataset);
  for (const c of children) e.append(c);
  return e;
}

function bytes(n) {
  const units = ['B', 'K', 'M', 'G'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(1)}${units[i]}`;
}

const pct = (f) => (f * 100).toFixed(1);

function row(cells, attrs = {}) {
  return el('tr', attrs, ...cells.map((c) => (c instanceof Node ? el('td', {}, c) : el('td', { textContent: String(c) }))));
}

function renderKernels(snap) {
  document.querySelector('#kernels tbody').replaceChildren(...snap.kernels.map((k) =>
    row([k.index, k.node, pct(k.cpu), k.run_queue, k.processes, Math.round(k.msgs_per_s), k.migrations_in, k.migrations_out], { dataset: { kernel: k.index } })));
}

// A heat map: each cell's colour is its count on a log scale against the busiest pair.
function renderMatrix(snap) {
  const n = snap.matrix.length;
  const max = Math.max(1, ...snap.matrix.flat());
  const head = el('tr', {}, el('th', { textContent: 'from \\ to' }), ...snap.matrix.map((_, j) => el('th', { textContent: `k${j}` })));
  const rows = snap.matrix.map((line, i) => el('tr', {}, el('th', { textContent: `k${i}` }), ...line.map((count, j) => {
    const heat = count === 0 ? 0 : Math.log1p(count) / Math.log1p(max);
    const td = el('td', { textContent: count === 0 ? '' : String(count), title: `${count} messages, ${bytes(snap.matrix_bytes[i][j])}`, dataset: { from: i, to: j } });
    td.style.background = `rgba(220, 60, 20, ${heat.toFixed(3)})`;
    if (heat > 0.6) td.style.color = 'white';
    return td;
  })));
  document.querySelector('#matrix').replaceChildren(head, ...rows);
  return n;
}

async function act(path, body) {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const answer = await res.json();
  if (!answer.ok) alert(answer.error);
}

function actions(p, kernels) {
  if (p.state === 'zombie') return el('span');
  const button = (text, onclick) => el('button', { textContent: text, onclick });
  const target = el('select', {}, ...kernels.filter((k) => k.index !== p.kernel).map((k) => el('option', { value: k.index, textContent: `→ k${k.index}` })));
  const box = el('span', {},
    button('kill', () => act('api/kill', { pid: p.pid, signal: 9 })),
    button(p.state === 'stopped' ? 'continue' : 'stop', () => act('api/kill', { pid: p.pid, signal: p.state === 'stopped' ? 18 : 19 })),
    target, button('migrate', () => act('api/migrate', { pid: p.pid, kernel: Number(target.value) })));
  for (const b of box.querySelectorAll('button')) b.dataset.action = b.textContent;
  return box;
}

// Processes as a tree: children under their parent, indented.
function renderProcesses(snap) {
  const byParent = new Map();
  const pids = new Set(snap.processes.map((p) => p.pid));
  for (const p of snap.processes) {
    const parent = pids.has(p.ppid) ? p.ppid : 0;
    if (!byParent.has(parent)) byParent.set(parent, []);
    byParent.get(parent).push(p);
  }
  const rows = [];
  const walk = (parent, depth) => {
    for (const p of byParent.get(parent) ?? []) {
      const command = el('span', { textContent: `${'  '.repeat(depth)}${depth > 0 ? '└ ' : ''}${p.command}` });
      command.style.whiteSpace = 'pre';
      const tr = row([p.pid, command, p.kernel, p.state, pct(p.cpu), p.cpu_ms.toFixed(0), bytes(p.memory_bytes), actions(p, snap.kernels)],
        { className: p.state, dataset: { pid: p.pid, kernel: p.kernel, state: p.state } });
      for (const i of [1, 3, 7]) tr.children[i].className = 'l';
      rows.push(tr);
      walk(p.pid, depth + 1);
    }
  };
  walk(0, 0);
  document.querySelector('#processes tbody').replaceChildren(...rows);
}

function describe(e, kernels) {
  const from = kernels.find((k) => k.endpoint === e.a);
  switch (e.kind) {
    case 'spawn': return `spawn   pid ${e.pid} on k${e.kernel} (parent ${e.a}, ${(e.b / 1000).toFixed(2)} ms)`;
    case 'exit': return `exit    pid ${e.pid} on k${e.kernel}, status ${e.a}${e.b ? `, signal ${e.b}` : ''}`;
    case 'signal': return `signal  ${e.a} to pid ${e.pid} on k${e.kernel}`;
    default: return `migrate pid ${e.pid} k${from ? from.index : e.a} → k${e.kernel} (${(e.b / 1000).toFixed(2)} ms)`;
  }
}

function renderTimeline(snap) {
  const lines = snap.events.slice(-100).reverse().map((e) =>
    el('div', { className: `ev-${e.kind}`, textContent: `${new Date(e.at).toISOString().slice(11, 23)}  ${describe(e, snap.kernels)}` }));
  document.querySelector('#timeline').replaceChildren(...lines);
}

function renderCluster(snap) {
  document.querySelector('#cluster tbody').replaceChildren(row([snap.node, '(this node)', '']), ...snap.links.up.map((l) =>
    row([l.node, l.listen, `${(l.heartbeatAgeMs / 1000).toFixed(1)} s`])));
  document.querySelector('#links-lost').textContent = `links lost since boot: ${snap.links.lost}`;
}

function chart(target, kernels, label) {
  const series = [{}, ...kernels.map((k) => ({ label: `k${k.index}`, stroke: `hsl(${(k.index * 67) % 360} 70% 45%)` }))];
  return new uPlot({ width: 520, height: 160, series, axes: [{}, { label }], scales: { x: { time: true } } }, [[], ...kernels.map(() => [])], document.querySelector(target));
}

function renderCharts(snap) {
  if (charts === undefined || charts.n !== snap.kernels.length) {
    for (const c of charts?.all ?? []) c.destroy();
    history.t = []; history.cpu = snap.kernels.map(() => []); history.msgs = snap.kernels.map(() => []);
    charts = { n: snap.kernels.length, all: [chart('#cpu-chart', snap.kernels, 'CPU %'), chart('#msg-chart', snap.kernels, 'msgs/s')] };
  }
  history.t.push(snap.at / 1000);
  snap.kernels.forEach((k, i) => { history.cpu[i].push(k.cpu * 100); history.msgs[i].push(k.msgs_per_s); });
  if (history.t.length > HISTORY) { history.t.shift(); for (const s of [...history.cpu, ...history.msgs]) s.shift(); }
  charts.all[0].setData([history.t, ...history.cpu]);
  charts.all[1].setData([history.t, ...history.msgs]);
}

function render(snap) {
  const live = snap.processes.filter((p) => p.state !== 'zombie').length;
  document.querySelector('#status').textContent = `— node ${snap.node}, ${snap.kernels.length} kernels, ${live} processes`;
  renderKernels(snap);
  renderMatrix(snap);
  renderProcesses(snap);
  renderTimeline(snap);
  renderCluster(snap);
  renderCharts(snap);
}

function connect() {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/live`);
  ws.onmessage = (m) => render(JSON.parse(m.data));
  ws.onclose = () => {
    document.querySelector('#status').textContent = '(disconnected: retrying)';
    setTimeout(connect, 1000);
  };
}

connect();
