'use strict';
// featx explore: the model's graph on the left, the selected node's outputs on the right.
// Plain script, no build step: the server embeds this file as is.

const $ = (id) => document.getElementById(id);
const QUERY = new URLSearchParams(location.search);
const TOKEN = QUERY.get('token');
const PER_PAGE = 16; // channels per grid page, as the server pages them

const state = {
  info: null,
  nodes: new Map(), // name -> record from /api/nodes
  images: [],
  open: new Set(), // module paths unfolded beyond the fold=1 view
  selected: null, // { name, shape }
  channels: 0, // from /api/stats; sets the number of grid pages
  page: 0,
  zoom: 1,
  base: null, // the SVG's own [width, height], scaled by zoom
  seq: { graph: 0, stats: 0, top5: 0 }, // drop answers that a newer request superseded
};

// Every URL goes through here so that the token is never forgotten (img src and links included).
function api(path, params = {}) {
  const q = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  if (TOKEN) q.push(`token=${encodeURIComponent(TOKEN)}`);
  return q.length ? `${path}?${q.join('&')}` : path;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let busyCount = 0; // requests now waiting out a 503

// A 503 means every worker is busy; the server says when to come back (Retry-After).
// Wait that long once, showing "busy", then try again.
async function request(url, opts, onWait) {
  const r = await fetch(url, opts);
  if (r.status !== 503) return r;
  const secs = Math.min(parseFloat(r.headers.get('Retry-After')) || 1, 60);
  $('busy').hidden = ++busyCount <= 0;
  if (onWait) onWait(secs);
  try {
    await sleep(secs * 1000);
    return await fetch(url, opts);
  } finally {
    $('busy').hidden = --busyCount <= 0;
  }
}

class ApiError extends Error {
  constructor(status, body) {
    super(body.error || `the server answered ${status}`);
    this.status = status;
    this.suggestions = body.suggestions || [];
  }
}

// Turn a non-2xx answer into an ApiError carrying the server's JSON message.
async function check(r) {
  if (r.ok) return r;
  let body = {};
  try { body = await r.json(); } catch { /* not JSON: the status is all we have */ }
  throw new ApiError(r.status, body);
}

const getJSON = async (path, params) => (await check(await request(api(path, params)))).json();

// Build an element; names always go in as text, never as markup.
function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

// Show an error (or clear it, with null) in one of the page's error boxes.
function showError(id, err) {
  let text = err ? err.message || String(err) : '';
  if (err && err.suggestions && err.suggestions.length) text += ` (did you mean ${err.suggestions.join(', ')}?)`;
  $(id).textContent = text;
  $(id).hidden = !err;
}

// ---------- graph ----------

const graphSvg = () => $('graph').querySelector('svg');
const boxFor = (name) => graphSvg()?.querySelector(`g.node[data-name="${CSS.escape(name)}"]`);
const clusterFor = (scope) => graphSvg()?.querySelector(`g.cluster[data-scope="${CSS.escape(scope)}"]`);

// Dotted prefixes: 'a.b.c' -> ['a', 'a.b'] (with self: also 'a.b.c').
function prefixes(path, self) {
  const parts = path.split('.');
  const out = [];
  for (let i = 1; i < parts.length + (self ? 1 : 0); i++) out.push(parts.slice(0, i).join('.'));
  return out;
}

// Modules that may hide a node's box. Names the server does not know as modules are ignored there.
function ancestors(name) {
  const node = state.nodes.get(name);
  const out = prefixes(name, false);
  if (node && node.module_path) out.push(...prefixes(node.module_path, true));
  return [...new Set(out)];
}

// A folded module box; an older server without data-op: anything that is not a known node.
const isModuleBox = (g) => (g.dataset.op ? g.dataset.op === 'module' : !state.nodes.has(g.dataset.name));

async function renderGraph() {
  const seq = ++state.seq.graph;
  const params = { fold: 1 };
  if (state.open.size) params.open = [...state.open].join(',');
  let text;
  try {
    text = await (await check(await request(api('/api/graph.svg', params)))).text();
  } catch (e) {
    if (seq === state.seq.graph) $('graph').replaceChildren(el('p', { className: 'error', textContent: `graph: ${e.message}` }));
    return;
  }
  if (seq !== state.seq.graph) return;
  const graph = $('graph');
  graph.innerHTML = text;
  const svg = graphSvg();
  if (!svg) return;
  const vb = svg.viewBox && svg.viewBox.baseVal;
  state.base = [
    parseFloat(svg.getAttribute('width')) || (vb && vb.width) || 800,
    parseFloat(svg.getAttribute('height')) || (vb && vb.height) || 600,
  ];
  // Keyboard reach, in case the server did not already make boxes focusable (one pass, O(n)).
  for (const g of svg.querySelectorAll('g.node:not([tabindex]), g.cluster:not([tabindex])')) {
    g.setAttribute('tabindex', '0');
    g.setAttribute('role', 'button');
  }
  for (const g of svg.querySelectorAll('g.cluster:not([aria-label])')) g.setAttribute('aria-label', `fold ${g.dataset.scope}`);
  applyZoom();
  markSelected();
}

// Highlight the selected node's box, or else the folded module that hides it.
function markSelected() {
  const svg = graphSvg();
  if (!svg) return;
  for (const g of svg.querySelectorAll('.selected, .contains-selected')) g.classList.remove('selected', 'contains-selected');
  if (!state.selected) return;
  const box = boxFor(state.selected.name);
  if (box) return box.classList.add('selected');
  for (const a of ancestors(state.selected.name).reverse()) {
    const m = boxFor(a);
    if (m) return m.classList.add('contains-selected');
  }
}

function applyZoom() {
  const svg = graphSvg();
  $('zoom-level').textContent = `${Math.round(state.zoom * 100)}%`;
  if (!svg || !state.base) return;
  svg.setAttribute('width', state.base[0] * state.zoom);
  svg.setAttribute('height', state.base[1] * state.zoom);
}

// Zoom about the middle of the visible part, so what the user looks at stays in view.
function zoomBy(factor) {
  const g = $('graph');
  const cx = (g.scrollLeft + g.clientWidth / 2) / g.scrollWidth;
  const cy = (g.scrollTop + g.clientHeight / 2) / g.scrollHeight;
  state.zoom = Math.min(4, Math.max(0.25, state.zoom * factor));
  applyZoom();
  g.scrollLeft = cx * g.scrollWidth - g.clientWidth / 2;
  g.scrollTop = cy * g.scrollHeight - g.clientHeight / 2;
}

// Bring a box into view and give it the keyboard focus, so Enter acts on it next.
function focusBox(g, where = 'nearest') {
  if (!g) return;
  // a cluster can be taller than the pane: aim at its label, top left
  (g.classList.contains('cluster') && g.querySelector('text') || g).scrollIntoView({ block: where, inline: where });
  g.focus({ preventScroll: true });
}

async function openModule(name) {
  state.open.add(name);
  await renderGraph();
  focusBox(clusterFor(name));
}

// Folding a scope also folds everything opened below it.
async function foldScope(scope) {
  for (const s of [...state.open]) if (s === scope || s.startsWith(`${scope}.`)) state.open.delete(s);
  await renderGraph();
  focusBox(boxFor(scope));
}

// One listener for the whole pane instead of one per box: stays cheap for 500+ nodes.
function activate(target) {
  const node = target.closest && target.closest('g.node');
  const cluster = !node && target.closest && target.closest('g.cluster');
  if (node && isModuleBox(node)) openModule(node.dataset.name);
  else if (node) selectNode(node.dataset.name);
  else if (cluster) foldScope(cluster.dataset.scope);
  return Boolean(node || cluster);
}

// ---------- the selected node ----------

const fmtShape = (s) => (Array.isArray(s) ? s.join(' × ') : '—');
const imageName = (id) => (state.images.find((im) => im.id === id) || {}).name || id;

function fmt(x) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return String(x);
  if (x !== 0 && (Math.abs(x) >= 1e5 || Math.abs(x) < 1e-3)) return x.toExponential(3);
  return String(Number(x.toPrecision(4)));
}

function selectNode(name, shape) {
  const node = state.nodes.get(name) || {};
  state.selected = { name, shape: shape !== undefined ? shape : node.shape };
  state.page = 0;
  state.channels = 0;
  $('node-name').textContent = name;
  $('hint').hidden = true;
  $('node-view').hidden = false;
  $('node-meta').textContent = [node.op, node.module_type, node.module_path].filter(Boolean).join(' · ');
  $('node-shape').textContent = `output ${fmtShape(state.selected.shape)}`;
  $('cam-run').disabled = false;
  markSelected();
  // Keep the choice in the address so a reload comes back to it.
  const url = new URL(location.href);
  url.searchParams.set('node', name);
  history.replaceState(null, '', url);
  refreshNode();
}

function refreshNode() {
  if (!state.selected) return;
  const image = $('image').value;
  showError('error', image ? null : new Error('No image yet: upload one.'));
  if (!image) return;
  loadPictures();
  loadStats();
  const a = $('download');
  a.href = api('/api/features', { image, node: state.selected.name });
  a.download = `${state.selected.name.replace(/[\\/:*?"<>|\s]+/g, '_')}.npy`;
}

function pictureParams(image, other) {
  const kind = $('kind').value;
  const p = { image, node: state.selected.name, kind, reduce: $('reduce').value };
  if (kind === 'grid') Object.assign(p, { channels: PER_PAGE, page: state.page });
  if (other && $('shared-scale').checked) p.with = other;
  return p;
}

function loadPictures() {
  const a = $('image').value;
  const b = $('image2').value;
  if (!state.selected || !a) return;
  const kind = $('kind').value;
  const shared = b && $('shared-scale').checked ? ' (shared colour scale)' : '';
  loadImg($('picture'), api('/api/picture', pictureParams(a, b)), 'error', `${kind} of ${state.selected.name} for ${imageName(a)}`);
  $('caption1').textContent = imageName(a) + shared;
  $('figure2').hidden = !b;
  if (b) {
    loadImg($('picture2'), api('/api/picture', pictureParams(b, a)), 'error', `${kind} of ${state.selected.name} for ${imageName(b)}`);
    $('caption2').textContent = imageName(b) + shared;
  }
}

// Load a computed PNG into an <img>, with a spinner. An <img> cannot tell why it failed, so on
// error fetch the same URL to read the JSON message (and wait out a 503); a late success is shown.
function loadImg(img, url, errId, alt) {
  const spinner = img.parentElement.querySelector('.spinner');
  const done = () => { spinner.hidden = true; img.classList.remove('loading'); };
  if (img.dataset.blob) {
    URL.revokeObjectURL(img.dataset.blob);
    delete img.dataset.blob;
  }
  img.dataset.want = url;
  img.alt = alt;
  img.hidden = false;
  img.classList.add('loading');
  spinner.textContent = 'computing…';
  spinner.hidden = false;
  img.onload = () => { if (img.dataset.want === url) done(); };
  img.onerror = async () => {
    if (img.dataset.want !== url) return;
    if (img.dataset.blob) { // the second fetch succeeded but its bytes are no picture: stop here
      done();
      showError(errId, new Error('the answer is not a picture'));
      return;
    }
    img.hidden = true; // no broken-image icon while we ask again
    try {
      const r = await check(await request(url, undefined, (s) => { spinner.textContent = `busy, retrying in ${s}s…`; }));
      const blob = await r.blob();
      if (img.dataset.want !== url) return;
      img.dataset.blob = URL.createObjectURL(blob);
      img.src = img.dataset.blob;
      img.hidden = false;
    } catch (e) {
      if (img.dataset.want !== url) return;
      done();
      showError(errId, e);
    }
  };
  img.src = url;
}

async function loadStats() {
  const seq = ++state.seq.stats;
  const tbody = $('stats').tBodies[0];
  tbody.textContent = '';
  try {
    const s = await getJSON('/api/stats', { image: $('image').value, node: state.selected.name });
    if (seq !== state.seq.stats) return;
    state.channels = s.channels || 0;
    const rows = [['shape', fmtShape(s.shape)], ['min', fmt(s.min)], ['max', fmt(s.max)], ['mean', fmt(s.mean)],
      ['zeros', `${(100 * s.zeros).toFixed(1)} %`], ['channels', String(s.channels)]];
    for (const [k, v] of rows) tbody.append(el('tr', {}, el('th', { scope: 'row', textContent: k }), el('td', { textContent: v })));
  } catch (e) {
    if (seq === state.seq.stats) showError('error', e);
  }
  updatePager();
}

function updatePager() {
  const grid = $('kind').value === 'grid';
  $('pager').hidden = !grid;
  if (!grid) return;
  const n = state.channels;
  const pages = Math.max(1, Math.ceil(n / PER_PAGE));
  const first = state.page * PER_PAGE;
  $('page-label').textContent = n
    ? `channels ${first}–${Math.min(first + PER_PAGE, n) - 1} of ${n}`
    : `page ${state.page + 1}`;
  $('page-prev').disabled = state.page <= 0;
  $('page-next').disabled = !n || state.page >= pages - 1;
}

function turnPage(delta) {
  state.page = Math.max(0, state.page + delta);
  updatePager();
  loadPictures();
}

// ---------- images ----------

function fillImageSelect(sel, blank) {
  const prev = sel.value;
  sel.textContent = '';
  if (blank) sel.add(new Option('—', ''));
  for (const im of state.images) sel.add(new Option(im.name, im.id));
  if ([...sel.options].some((o) => o.value === prev)) sel.value = prev;
}

async function loadImages() {
  state.images = (await getJSON('/api/images')).images || [];
  fillImageSelect($('image'), false);
  fillImageSelect($('image2'), true);
}

async function upload(file) {
  const max = state.info && state.info.max_upload_bytes;
  const mb = (n) => (n / 1048576).toFixed(1);
  if (max && file.size > max) {
    return showError('error', new Error(`${file.name} is ${mb(file.size)} MB; the limit is ${mb(max)} MB.`));
  }
  const label = $('upload').parentElement;
  label.classList.add('working');
  try {
    const headers = { 'Content-Type': file.type || 'application/octet-stream' };
    const { id } = await (await check(await request(api('/api/images'), { method: 'POST', body: file, headers }))).json();
    await loadImages();
    $('image').value = id;
    onImageChange();
  } catch (e) {
    showError('error', e);
  } finally {
    label.classList.remove('working');
  }
}

function onImageChange() {
  refreshNode();
  loadTop5();
}

// ---------- CAM ----------

async function loadTop5() {
  const seq = ++state.seq.top5;
  const sel = $('cam-target');
  const image = $('image').value;
  sel.textContent = '';
  sel.add(new Option('top', ''));
  if (!image) return;
  try {
    const { classes } = await getJSON('/api/top5', { image });
    if (seq !== state.seq.top5) return;
    for (const c of classes) {
      const text = c.label
        ? `${c.index} ${c.label} (${Math.round(100 * c.prob)}%)`
        : `${c.index} (logit ${c.logit.toFixed(1)})`;
      sel.add(new Option(text, c.index));
    }
  } catch { /* no class head (404) or no answer: "top" alone is still valid */ }
}

// CAM costs a backward pass, so it runs only on request, never on selection.
function runCam() {
  if (!state.selected || !$('image').value) return;
  const p = { image: $('image').value, node: state.selected.name, method: $('cam-method').value };
  const target = $('cam-target');
  if (target.value) p.target = target.value;
  const what = `${p.method} at ${p.node} for ${imageName(p.image)}, target ${target.selectedOptions[0].textContent}`;
  showError('cam-error', null);
  $('cam-figure').hidden = false;
  $('cam-caption').textContent = what;
  loadImg($('cam'), api('/api/cam', p), 'cam-error', what);
}

// ---------- search ----------

function showSuggestions(err) {
  const box = $('suggestions');
  const list = err.suggestions || [];
  box.replaceChildren(el('span', { textContent: err.message }), list.length ? ' — did you mean ' : '',
    ...list.map((s) => el('button', { type: 'button', className: 'suggestion', textContent: s, onclick: () => search(s) })),
    el('button', { type: 'button', className: 'close', title: 'Dismiss', textContent: '×', onclick: () => { box.hidden = true; } }));
  box.hidden = false;
}

async function search(q) {
  q = q.trim();
  if (!q) return;
  $('search').value = q;
  $('suggestions').hidden = true;
  let found;
  try {
    found = await getJSON('/api/resolve', { node: q });
  } catch (e) {
    return showSuggestions(e);
  }
  selectNode(found.node, found.shape);
  // Unfold the modules around the node only when its box is not already drawn.
  if (!boxFor(found.node)) {
    for (const a of ancestors(found.node)) state.open.add(a);
    await renderGraph();
  }
  focusBox(boxFor(found.node), 'center');
}

// ---------- start ----------

function wire() {
  const graph = $('graph');
  graph.addEventListener('click', (e) => activate(e.target));
  graph.addEventListener('keydown', (e) => {
    if ((e.key === 'Enter' || e.key === ' ') && activate(e.target)) e.preventDefault();
  });
  $('fold-all').addEventListener('click', () => { state.open.clear(); renderGraph(); });
  $('zoom-in').addEventListener('click', () => zoomBy(1.25));
  $('zoom-out').addEventListener('click', () => zoomBy(0.8));
  $('search-form').addEventListener('submit', (e) => { e.preventDefault(); search($('search').value); });
  $('image').addEventListener('change', onImageChange);
  $('upload').addEventListener('change', (e) => {
    const file = e.target.files[0];
    e.target.value = ''; // the same file may be chosen again later
    if (file) upload(file);
  });
  $('kind').addEventListener('change', () => { state.page = 0; updatePager(); loadPictures(); });
  $('reduce').addEventListener('change', loadPictures);
  $('page-prev').addEventListener('click', () => turnPage(-1));
  $('page-next').addEventListener('click', () => turnPage(+1));
  $('image2').addEventListener('change', loadPictures);
  $('shared-scale').addEventListener('change', loadPictures);
  $('cam-run').addEventListener('click', runCam);
}

async function init() {
  wire();
  const info = getJSON('/api/info').then((i) => {
    state.info = i;
    $('model').textContent = `${i.model} · weights: ${i.weights}`;
    const sel = $('cam-method');
    for (const m of i.methods || []) sel.add(new Option(m, m));
    if ((i.methods || []).includes('gradcam')) sel.value = 'gradcam';
  });
  const nodes = getJSON('/api/nodes').then((n) => {
    const list = document.createDocumentFragment();
    for (const node of n.nodes || []) {
      state.nodes.set(node.name, node);
      list.append(new Option(node.name));
    }
    $('node-list').replaceChildren(list);
  });
  const images = loadImages().then(loadTop5);
  const graph = renderGraph();
  const results = await Promise.allSettled([info, nodes, images, graph]);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) showError('error', failed.reason);
  if (results[0].status === 'rejected') $('model').textContent = 'no answer from the server';
  if (QUERY.get('node')) search(QUERY.get('node'));
}

init();
