// The review workspace: player, timeline, lanes, interval list, undo. It runs in the browser as
// the js_on_load of a gr.HTML component (given: element, trigger, props, server, upload, watch).
// Seeking, zooming, panning, hovering, selecting, dragging and keys never wait for the server:
// every edit changes the page at once and joins an ordered queue of edits that is sent to the
// server (server.edit), kept in localStorage until acknowledged, and re-sent after a reconnect
// or a reload (the server skips what it has already applied).
//
// Every user-supplied string (class names, questions, file names) reaches the page as text:
// nodes are built with textContent, never innerHTML.

const STATES = ['unreviewed', 'accepted', 'rejected'];
const STATE_KEY = { unreviewed: 'U', accepted: 'A', rejected: 'R' };
const ROW_H = 24;            // interval list row, px
const LANE_ROW_H = 24;       // one sub-row of a class lane at most, px
const LANE_MIN_ROW_H = 14;   // sub-rows shrink to this (still labelled, still easy to grab) before the lanes scroll
const LANE_GAP = 6;
const GUTTER = 132;          // lane labels, px
const OVERVIEW_H = 22;
const CURVES_H = 104;
const CURVES_MIN_H = 56;      // a short window takes height from the curves before the lanes
const LANES_WANTED_H = 110;   // the lanes' height kept in sight (less when all rows need less)
const AXIS_H = 22;
const EDGE_GRAB_PX = 6;      // how close to an edge a press resizes instead of moving
const DRAG_THRESHOLD_PX = 3;
const MIN_SPAN_S = 0.2;      // the deepest zoom shows at least this many seconds
const EDIT_BATCH = 64;       // edits per request
const HISTORY_MAX = 200;     // undo steps kept (the server keeps the same)
const SPEEDS = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 4];
const COLORS = { start: '#1a9850', end: '#d73027', actionness: '#7570b3', gt: '#111', playhead: '#e8175d' };
const LATENCY_KEEP = 2000;

// --- small helpers -----------------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}
function pad(n, w) { return String(n).padStart(w, '0'); }
function clamp(x, lo, hi) { return Math.min(hi, Math.max(lo, x)); }
function fmtClock(t) {
  if (!Number.isFinite(t)) return '--:--:--.---';
  const ms = Math.round(Math.max(0, t) * 1000);
  const hh = Math.floor(ms / 3600000), mm = Math.floor(ms / 60000) % 60, ss = Math.floor(ms / 1000) % 60;
  return `${pad(hh, 2)}:${pad(mm, 2)}:${pad(ss, 2)}.${pad(ms % 1000, 3)}`;
}
let LAST_FRAME = Infinity; // the video's last frame index, once known
function frameOf(t, fps) { return Math.min(Math.floor(t * fps + 1e-6), LAST_FRAME); }
function fmtTime(t, fps) { return `${fmtClock(t)} · f${frameOf(t, fps)}`; }
function fmtDur(d) {
  if (d < 60) return `${d.toFixed(2)} s`;
  return fmtClock(d).replace(/^00:/, '');
}
// "1:02:03.5", "02:03", "83.25", "f2087" (a video frame number) -> seconds, or NaN.
function parseTime(text, fps) {
  const s = String(text).trim().toLowerCase();
  const frame = s.match(/^f\s*(\d+)$/);
  if (frame) return Number(frame[1]) / fps;
  if (!/^[\d:.]+$/.test(s)) return NaN;
  const parts = s.split(':').map(Number);
  if (parts.some((p) => !Number.isFinite(p)) || parts.length > 3) return NaN;
  return parts.reduce((acc, p) => acc * 60 + p, 0);
}
function b64bytes(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function decodeCurve(c) {
  const codes = new Uint16Array(b64bytes(c.data).buffer);
  const out = new Float32Array(codes.length);
  const span = c.hi > c.lo ? c.hi - c.lo : 1;
  for (let i = 0; i < codes.length; i++) out[i] = codes[i] === 65535 ? NaN : c.lo + (codes[i] / 65534) * span;
  return out;
}
function lowerBound(arr, x) { // first index with arr[i] >= x
  let lo = 0, hi = arr.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (arr[mid] < x) lo = mid + 1; else hi = mid; }
  return lo;
}
function randomHex(n) {
  const bytes = new Uint8Array(Math.ceil(n / 2));
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('').slice(0, n);
}
function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

// Gradio's client answers `undefined` (and only logs a warning) when the server cannot be reached,
// and a request the server died in the middle of may never settle: both become errors here, so every
// caller retries or says so instead of waiting for ever.
const CALL_TIMEOUT_MS = 60000;
function reliable(server) {
  const out = {};
  for (const name of Object.keys(server)) {
    out[name] = (arg) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the server did not answer')), CALL_TIMEOUT_MS);
      Promise.resolve(server[name](arg)).then((res) => {
        clearTimeout(timer);
        if (res === undefined || res === null) reject(new Error('the server cannot be reached'));
        else resolve(res);
      }, (err) => { clearTimeout(timer); reject(err); });
    });
  }
  return out;
}

// --- the workspace -------------------------------------------------------------------------------
function createWorkspace(element, props, server, watch) {
  const W = {
    video: null, videos: [], rev: 0, loaded: false, data: null,
    times: new Float64Array(0), fps: 25, duration: 0, classes: [],
    ivs: new Map(),
    view: { t0: 0, t1: 1, selected: null, shown: 0, set: 'review', hideRejected: false, speed: 1, loop: false },
    params: {},
    undo: [], redo: [],
    client: null, seq: 0, pending: [], inflight: false, offline: false, retryDelay: 500,
    visible: [], byClass: [], dirty: true, drawQueued: false,
    drag: null, hover: null, editing: null, latencies: [], requests: 0,
    saveState: 'saved', lastError: '',
  };
  const root = element.querySelector('.zw') || element;
  root.textContent = '';

  // ---- layout ----
  const video = h('video', { class: 'zw-video', preload: 'auto', controls: true, playsinline: true });
  const timeLabel = h('span', { class: 'zw-time', text: fmtClock(0) });
  const speedSel = h('select', { class: 'zw-speed', title: 'Playback speed (< and >)' },
    ...SPEEDS.map((s) => h('option', { value: s, text: `${s}x`, selected: s === 1 })));
  const loopBtn = h('button', { class: 'zw-btn zw-toggle', title: 'Loop the selected interval (l)', text: '⟲' });
  const transport = h('div', { class: 'zw-transport' },
    h('button', { class: 'zw-btn', title: 'One video frame back (←); Shift+←: one sampled frame', text: '◀︎ 1f', 'data-act': 'frame-' }),
    h('button', { class: 'zw-btn zw-play', title: 'Play / pause (Space)', text: '▶', 'data-act': 'play' }),
    h('button', { class: 'zw-btn', title: 'One video frame forward (→); Shift+→: one sampled frame', text: '1f ▶︎', 'data-act': 'frame+' }),
    speedSel, timeLabel,
    h('span', { class: 'zw-spacer' }),
    h('button', { class: 'zw-btn', title: 'Jump to the selected interval\'s start (Home)', text: '⇤', 'data-act': 'jump-start' }),
    h('button', { class: 'zw-btn', title: 'Jump to the selected interval\'s end (End)', text: '⇥', 'data-act': 'jump-end' }),
    loopBtn);
  const countsEl = h('div', { class: 'zw-counts', 'aria-live': 'polite' });
  const setSel = h('select', { class: 'zw-set', title: 'Which model proposals to show (v)' },
    h('option', { value: 'review', text: 'Review set: one candidate per action' }),
    h('option', { value: 'all', text: 'All proposals (as in the paper)' }));
  const hideRej = h('input', { type: 'checkbox', class: 'zw-hide-rejected' });
  const thresh = h('input', { type: 'number', class: 'zw-thresh', min: 0, max: 1, step: 0.05, value: 0.5, title: 'score threshold' });
  const acceptAllBtn = h('button', { class: 'zw-btn', 'data-act': 'accept-above', title: 'Accept every unreviewed interval of the shown class scoring at least this' });
  const undoBtn = h('button', { class: 'zw-btn', 'data-act': 'undo', title: 'Undo (Ctrl/Cmd+Z)', text: '↶ undo' });
  const redoBtn = h('button', { class: 'zw-btn', 'data-act': 'redo', title: 'Redo (Ctrl/Cmd+Shift+Z, Ctrl+Y)', text: '↷ redo' });
  const saveEl = h('span', { class: 'zw-save', 'aria-live': 'polite' });
  const reviewBar = h('div', { class: 'zw-reviewbar' },
    countsEl,
    h('div', { class: 'zw-row' }, setSel, h('label', { class: 'zw-check' }, hideRej, 'hide rejected'),
      h('span', { class: 'zw-spacer' }), undoBtn, redoBtn),
    h('div', { class: 'zw-row' }, acceptAllBtn, h('span', { text: '≥' }), thresh, h('span', { class: 'zw-spacer' }), saveEl,
      h('button', { class: 'zw-btn', 'data-act': 'help', title: 'All shortcuts (?)', text: '? keys' })));
  const listHead = h('div', { class: 'zw-list-head' },
    ...['class', 'start', 'end', 'length', 'score', 'state'].map((c) => h('span', { class: `zw-c-${c}`, text: c })));
  const listSpacer = h('div', { class: 'zw-list-spacer' });
  const listRows = h('div', { class: 'zw-list-rows' });
  const listBody = h('div', { class: 'zw-list-body', tabindex: '-1' }, listSpacer, listRows);
  const listEmpty = h('div', { class: 'zw-list-empty' });
  const selPanel = h('div', { class: 'zw-selection' });
  const left = h('div', { class: 'zw-left' }, h('div', { class: 'zw-video-box' }, video), transport);
  const right = h('div', { class: 'zw-right' }, reviewBar, listHead, listBody, listEmpty, selPanel);
  const shownSel = h('select', { class: 'zw-shown', title: 'Class whose curves are drawn' });
  const legend = h('span', { class: 'zw-legend' },
    h('i', { class: 'zw-sw', style: `background:${COLORS.start}` }), 'start P(yes)',
    h('i', { class: 'zw-sw', style: `background:${COLORS.end}` }), 'end P(yes)',
    h('i', { class: 'zw-sw zw-sw-dash', style: `border-color:${COLORS.actionness}` }), 'actionness');
  const paramsBtn = h('button', { class: 'zw-btn', 'data-act': 'params', text: '⚙ proposal settings', title: 'Re-propose from the cached curves (no model runs)' });
  const paramsBox = h('div', { class: 'zw-params', hidden: true });
  const tlHead = h('div', { class: 'zw-tl-head' }, h('span', { text: 'Curves of' }), shownSel, legend,
    h('span', { class: 'zw-spacer' }),
    h('button', { class: 'zw-btn', 'data-act': 'zoom-out', text: '−', title: 'Zoom out (-)' }),
    h('button', { class: 'zw-btn', 'data-act': 'zoom-in', text: '+', title: 'Zoom in (+, wheel)' }),
    h('button', { class: 'zw-btn', 'data-act': 'zoom-sel', text: 'zoom to selection', title: 'z' }),
    h('button', { class: 'zw-btn', 'data-act': 'zoom-fit', text: 'whole video', title: '0' }),
    paramsBtn, paramsBox);
  const cvOverview = h('canvas', { class: 'zw-cv zw-cv-overview' });
  const cvCurves = h('canvas', { class: 'zw-cv zw-cv-curves' });
  const cvLanes = h('canvas', { class: 'zw-cv zw-cv-lanes' });
  const cvAxis = h('canvas', { class: 'zw-cv zw-cv-axis' });
  // The lanes canvas is as tall as the box and stays at its top while the rows scroll under it (the
  // spacer makes the scroll height): a canvas as tall as all rows would be drawn whole at every frame.
  const lanesSpacer = h('div', { class: 'zw-lanes-spacer' });
  const lanesBox = h('div', { class: 'zw-lanes-box' }, cvLanes, lanesSpacer);
  const playhead = h('div', { class: 'zw-playhead' });
  const tooltip = h('div', { class: 'zw-tooltip', hidden: true });
  lanesBox.addEventListener('scroll', () => drawTimeline(), { passive: true });
  const tlBody = h('div', { class: 'zw-tl-body' }, cvOverview, cvCurves, lanesBox, cvAxis, playhead, tooltip);
  const timeline = h('div', { class: 'zw-timeline' }, tlHead, tlBody);
  const notice = h('div', { class: 'zw-notice', hidden: true, role: 'status' });
  const help = h('div', { class: 'zw-help', hidden: true, role: 'dialog', 'aria-label': 'Keyboard shortcuts' });
  const empty = h('div', { class: 'zw-empty', text: 'No result yet: add videos and choose classes in the Project tab; each video is scored by itself. The review workspace appears here.' });
  const videoSel = h('select', { class: 'zw-video-sel', title: 'The project\'s videos' });
  const droppedEl = h('span', { class: 'zw-dropped' });
  const projStatus = h('span', { class: 'zw-projstatus', 'aria-live': 'polite' });
  const projbar = h('div', { class: 'zw-projbar' }, h('span', { class: 'zw-muted', text: 'Video' }), videoSel,
    h('button', { class: 'zw-btn', 'data-act': 'prev-video', text: '◀', title: 'Previous video of the project' }),
    h('button', { class: 'zw-btn', 'data-act': 'next-video', text: '▶', title: 'Next video of the project' }),
    h('button', { class: 'zw-btn', 'data-act': 'next-unreviewed', text: 'next to review (Shift+N)', title: 'The next scored video nobody reviewed yet' }),
    h('button', { class: 'zw-btn', 'data-act': 'mark-done', text: '✓ mark done', title: 'This video is reviewed' }),
    droppedEl, h('span', { class: 'zw-spacer' }), projStatus);
  const main = h('div', { class: 'zw-main', hidden: true }, h('div', { class: 'zw-top' }, left, right), timeline);
  root.append(projbar, empty, main, notice, help);
  buildHelp();

  // ---- derived data ----
  function ivVisible(iv) {
    if (W.view.hideRejected && iv.state === 'rejected') return false;
    return W.view.set === 'all' || iv.human || iv.state !== 'unreviewed' || iv.rs;
  }
  // The order of the list and of n / p: by start, then end, then id.
  function listOrder(a, b) { return a.s - b.s || a.e - b.e || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0); }
  function recompute() {
    const vis = [];
    for (const iv of W.ivs.values()) if (ivVisible(iv)) vis.push(iv);
    vis.sort(listOrder);
    W.visible = vis;
    // Sub-rows per class: overlapping intervals of one class are stacked, never blended.
    W.byClass = W.classes.map(() => ({ rows: 0, items: [] }));
    const rowEnds = W.classes.map(() => []);
    for (const iv of vis) {
      const ends = rowEnds[iv.cls];
      let r = ends.findIndex((end) => end <= iv.s);
      if (r < 0) { r = ends.length; ends.push(iv.e); } else ends[r] = iv.e;
      iv.row = r;
      W.byClass[iv.cls].items.push(iv);
    }
    W.byClass.forEach((c, k) => { c.rows = Math.max(1, rowEnds[k].length); });
    W.dirty = false;
    // A selected interval that is no longer shown (rejected while rejected ones are hidden, another
    // set) is no longer selected: no key may edit what cannot be seen. n and p go on from where it was.
    const sel = selectedIv();
    if (sel && !ivVisible(sel)) { W.anchor = { s: sel.s, e: sel.e, id: sel.id }; W.view.selected = null; }
  }
  function counts() {
    const out = { unreviewed: 0, accepted: 0, rejected: 0 };
    for (const iv of W.ivs.values()) {
      if (iv.state === 'unreviewed' && !(W.view.set === 'all' || iv.rs)) continue;
      out[iv.state]++;
    }
    return out;
  }
  function selectedIv() { return W.view.selected ? W.ivs.get(W.view.selected) || null : null; }
  // Where the selection was (W.anchor: its start, end and id): n and p go on from there after it went away.

  // ---- wire format ----
  function fromWire(a) {
    return { id: a[0], cls: a[1], s: a[2], e: a[3], score: a[4], human: !!a[5], state: STATES[a[6]], rs: !!a[7], v: a[8] };
  }
  function toDict(iv) {
    return iv ? { id: iv.id, label: W.classes[iv.cls].name, start_s: iv.s, end_s: iv.e, score: iv.score,
      source: iv.human ? 'human' : 'model', state: iv.state, in_review_set: iv.rs } : null;
  }
  function fromDict(d) {
    if (!d) return null;
    const cls = W.classes.findIndex((c) => c.name === d.label);
    return { id: d.id, cls, s: d.start_s, e: d.end_s, score: d.score, human: d.source === 'human',
      state: d.state, rs: !!d.in_review_set, v: 0 };
  }

  // ---- loading ----
  // A new result noticed twice (the page's signal and the look at the videos) is fetched once: an
  // update asked for while one is on its way only looks at the videos again afterwards.
  let loading = null, lookAgain = false;
  async function load(reason) {
    if (reason === 'update' && loading === W.video) { lookAgain = true; return; }
    const mine = W.video;
    loading = mine;
    try { await fetchResult(reason); } finally { if (loading === mine) loading = null; }
    if (lookAgain) { lookAgain = false; await lookAtVideos(); }
  }
  // The list of videos again: a result that changed meanwhile (rev) is loaded from there.
  async function lookAtVideos() {
    try { const res = await server.videos({}); setVideos(res.videos || []); } catch (err) { schedulePoll(true); }
  }
  async function fetchResult(reason) {
    let res;
    const asked = W.video;
    try {
      W.requests++;
      res = await server.load({ video: asked });
    } catch (err) {
      showNotice(`Could not load the result (${err.message}); retrying…`, 'warn');
      setTimeout(() => load(reason), 2000);
      return;
    }
    if (W.video !== asked) return;  // another video was opened meanwhile: its own load follows
    // None open here (a new browser, or it left the project): the server named the one to open.
    if (res.video && res.video !== W.video) { switchTo(res.video); reason = 'reload'; }
    setVideos(res.videos || [], false);  // this answer is the newest result: nothing to load again
    if (!res || !res.result) {
      W.data = null;
      const entry = W.videos.find((v) => v.id === W.video);
      empty.textContent = entry ? `${entry.name}: ${entry.status === 'failed' ? `failed: ${entry.message}` : `${entry.status}${entry.status === 'scoring' ? ` ${Math.round(entry.progress * 100)}%` : ''}`}. Its result appears here when it is scored (Project tab: Score).`
        : (W.videos.length ? 'Open a video: choose it above, or press Shift+N for the next one to review.' : 'No video yet: add videos in the Project tab, choose classes and score them. The review workspace appears here.');
      showEmpty(true); W.loaded = true; expose(); return;
    }
    const r = res.result;
    const entry = W.videos.find((v) => v.id === W.video);
    // A new scoring of the video on screen: the probe times its first paint from the server's clock.
    if (entry && entry.scored_at && W.loadedVideo === W.video && entry.scored_at !== W.shownScoredAt) W.scoredAt = entry.scored_at;
    W.shownScoredAt = entry ? entry.scored_at : null;
    W.data = r;
    W.loadedVideo = W.video;
    W.times = new Float64Array(b64bytes(r.times).buffer);
    W.fps = r.video.fps > 0 ? r.video.fps : 25;
    LAST_FRAME = r.video.frames > 0 ? r.video.frames - 1 : Infinity;
    W.duration = Math.max(r.video.duration, W.times.length ? W.times[W.times.length - 1] : 0);
    W.classes = r.classes.map((c) => ({ name: c.name, color: c.color, query: c.query,
      start: decodeCurve(c.start), end: decodeCurve(c.end), actionness: decodeCurve(c.actionness),
      actLo: c.actionness.lo, actHi: c.actionness.hi }));
    W.gt = r.ground_truth || [];
    W.ivs = new Map(r.intervals.map((a) => { const iv = fromWire(a); return [iv.id, iv]; }));
    W.rev = res.review.rev;
    W.undo = (res.review.undo || []).map(groupFromServer);
    W.redo = (res.review.redo || []).map(groupFromServer);
    W.params = res.params || {};
    const myLast = (res.review.seqs || {})[W.client] || 0;
    W.seq = Math.max(W.seq, myLast, ...W.pending.map((e) => e.seq));
    // Edits not yet acknowledged are applied again over the server's state (the server will
    // skip those it already has).
    W.pending = W.pending.filter((e) => e.seq > myLast);
    for (const e of W.pending) applyOps(e.ops.map((op) => ({ id: op.id, after: fromDict(op.after) })), false);
    const v = savedView();
    const sameVideo = W.videoUrl === r.video.url;
    if (!W.loaded || reason === 'reload' || !sameVideo) {
      Object.assign(W.view, { t0: 0, t1: W.duration || 1, selected: null, shown: 0 });
      if (Number.isFinite(v.t0) && Number.isFinite(v.t1) && v.t1 > v.t0) Object.assign(W.view, { t0: v.t0, t1: v.t1 });
      if (Number.isFinite(v.playhead) && v.playhead > 0) W.restorePlayhead = v.playhead;
      if (typeof v.selected === 'string') W.view.selected = v.selected;
      if (Number.isInteger(v.shown)) W.view.shown = v.shown;
      if (v.set === 'all' || v.set === 'review') W.view.set = v.set;
      W.view.hideRejected = !!v.hideRejected;
      W.view.loop = !!v.loop;
    }
    W.view.shown = clamp(W.view.shown, 0, Math.max(0, W.classes.length - 1));
    if (!sameVideo) {
      W.videoUrl = r.video.url;
      if (r.video.url) video.src = r.video.url; else video.removeAttribute('src');
    }
    clampView();
    fillClassMenus();
    renderDropped(r.dropped || []);
    buildParams();
    setSel.value = W.view.set;
    hideRej.checked = W.view.hideRejected;
    W.dirty = true;
    showEmpty(false);
    W.loaded = true;
    layout();
    renderAll();
    if (W.restorePlayhead !== undefined) { seekTo(W.restorePlayhead); W.restorePlayhead = undefined; }
    if (W.view.selected) requestAnimationFrame(() => scrollListTo(W.view.selected));
    updateTime(currentT());
    if (W.scoredAt) {  // the server's clock when the analysis ended (same machine in the benchmark)
      const at = W.scoredAt; W.scoredAt = null;
      requestAnimationFrame(() => setTimeout(() => { W.firstPaintMs = Date.now() - at * 1000; }, 0));
    }
    expose();
    collectOrphanedPending();
    pump();
  }
  function showEmpty(on) { empty.hidden = !on; main.hidden = on; }

  // ---- edits, undo, redo ----
  // ops: [{id, after}] with after = interval object or null (delete). Applies to the page only.
  function applyOps(ops, bumpVersions = true) {
    for (const op of ops) {
      const cur = W.ivs.get(op.id);
      const version = (cur ? cur.v : (W.deletedVersions?.get(op.id) || 0)) + (bumpVersions ? 1 : 0);
      if (op.after) {
        W.ivs.set(op.id, { ...op.after, v: version });
      } else {
        W.ivs.delete(op.id);
        (W.deletedVersions ||= new Map()).set(op.id, version);
      }
    }
    W.dirty = true;
  }
  function versionOf(id) { const cur = W.ivs.get(id); return cur ? cur.v : (W.deletedVersions?.get(id) || 0); }
  function wireOps(ops) { // for the server: whole intervals before and after, and the new version
    return ops.map((op) => ({ id: op.id, v: versionOf(op.id) + 1, before: toDict(W.ivs.get(op.id)), after: toDict(op.after) }));
  }
  function commit(label, ops) {
    ops = ops.filter((op) => op.after || W.ivs.has(op.id));
    if (!ops.length) return;
    const wire = wireOps(ops);
    applyOps(ops);
    const gid = `g${randomHex(10)}`;
    W.undo.push({ gid, label, ops: wire });
    if (W.undo.length > HISTORY_MAX) W.undo.shift();
    W.redo = [];
    enqueue({ kind: 'do', gid, label, ops: wire });
    renderAll();
  }
  function groupFromServer(g) { return { gid: g.gid, label: g.label, ops: g.ops }; }
  function undo() {
    const g = W.undo.pop();
    if (!g) { showNotice('Nothing to undo.', 'info'); return; }
    const ops = g.ops.slice().reverse().map((op) => ({ id: op.id, after: fromDict(op.before) }));
    const wire = wireOps(ops);
    applyOps(ops);
    W.redo.push(g);
    enqueue({ kind: 'undo', gid: g.gid, label: g.label, ops: wire });
    afterStep('Undone', g, ops);
  }
  function redo() {
    const g = W.redo.pop();
    if (!g) { showNotice('Nothing to redo.', 'info'); return; }
    const ops = g.ops.map((op) => ({ id: op.id, after: fromDict(op.after) }));
    const wire = wireOps(ops);
    applyOps(ops);
    W.undo.push(g);
    enqueue({ kind: 'redo', gid: g.gid, label: g.label, ops: wire });
    afterStep('Redone', g, ops);
  }
  // Where an undo or redo acted, said in the notice; that interval is selected and brought into view
  // (the play head stays), so a step on an interval off screen is seen.
  function afterStep(word, g, ops) {
    renderAll();
    const iv = ops.map((op) => W.ivs.get(op.id)).find((x) => x && ivVisible(x));
    showNotice(`${word}: ${g.label}${iv ? ` · ${W.classes[iv.cls].name} at ${fmtTime(iv.s, W.fps)}` : ''}`, 'info');
    if (iv) select(iv.id, { seek: 'none' });
  }

  // ---- the edit queue (ordered, persisted, re-sent) ----
  const pendingKey = () => `zeal-pending:${W.video}:${W.client}`;
  function persistPending() {
    try {
      if (W.pending.length) localStorage.setItem(pendingKey(), JSON.stringify(W.pending));
      else localStorage.removeItem(pendingKey());
    } catch (err) { /* storage full or blocked: the queue still lives in memory */ }
  }
  function enqueue(edit) {
    edit.seq = ++W.seq;
    W.pending.push(edit);
    persistPending();
    setSave('saving');
    pump();
  }
  function setSave(state, text) {
    W.saveState = state;
    saveEl.className = `zw-save zw-save-${state}`;
    saveEl.textContent = text || { saved: '✓ all changes saved', saving: 'saving…', offline: 'offline: edits kept, retrying', error: 'not saved' }[state];
  }
  let chain = Promise.resolve();
  function task(fn) { chain = chain.then(fn, fn); return chain; }
  function pump() { return task(sendPending); }
  async function sendPending() {
    while (W.pending.length) {
      const batch = W.pending.slice(0, EDIT_BATCH);
      let res;
      try {
        W.requests++;
        res = await server.edit({ video: W.video, client: W.client, edits: batch });
      } catch (err) {
        setSave('offline');
        W.offline = true;
        const delay = W.retryDelay;
        W.retryDelay = Math.min(W.retryDelay * 2, 15000);
        setTimeout(pump, delay);
        return;
      }
      W.offline = false;
      W.retryDelay = 500;
      if (res && res.error) {
        setSave('error', `not saved: ${res.error}`);
        if (res.retry) { setTimeout(pump, 3000); return; }
        // The server refused the batch: drop it and take the server's state again.
        const bad = new Set(batch.map((e) => e.seq));
        W.pending = W.pending.filter((e) => !bad.has(e.seq));
        persistPending();
        showNotice(`An edit was refused and undone: ${res.error}`, 'error');
        await load('resync');
        return;
      }
      const last = res.last_seq || 0;
      W.pending = W.pending.filter((e) => e.seq > last);
      persistPending();
      const expected = W.rev + (res.applied ? 1 : 0);
      W.rev = res.rev;
      if (res.rev !== expected) { await load('resync'); return; } // another page changed this result too
    }
    setSave('saved');
  }
  function collectOrphanedPending() {
    // Edits another page (or a closed tab) of this session left unacknowledged: send them too.
    try {
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i);
        if (!key || !key.startsWith(`zeal-pending:${W.video}:`) || key === pendingKey()) continue;
        const client = key.split(':')[2];
        const edits = JSON.parse(localStorage.getItem(key) || '[]');
        task(async () => {
          try {
            const res = await server.edit({ video: W.video, client, edits });
            if (res && !res.error) { localStorage.removeItem(key); if (res.applied) await load('resync'); }
          } catch (err) { /* tried again on the next load */ }
        });
      }
    } catch (err) { /* no storage */ }
  }
  function flush() { return pump().then(() => W.pending.length === 0); }

  // ---- view persistence (zoom, selection, filters): in this browser, never a server request ----
  const viewKey = () => `zeal-view:${W.video}`;
  let viewTimer = null;
  function saveView() {
    clearTimeout(viewTimer);
    viewTimer = setTimeout(() => {
      const { t0, t1, selected, shown, set, hideRejected, loop } = W.view;
      const playhead = currentT();
      try { localStorage.setItem(viewKey(), JSON.stringify({ t0, t1, selected, shown, set, hideRejected, loop, playhead })); } catch (err) { /* no storage */ }
    }, 300);
  }
  // What holds for every video in this browser: the playback speed and the accept-all threshold.
  const PREFS_KEY = 'zeal-prefs';
  function savePrefs() {
    try { localStorage.setItem(PREFS_KEY, JSON.stringify({ speed: video.playbackRate, acceptAt: Number(thresh.value) })); } catch (err) { /* no storage */ }
  }
  function loadPrefs() {
    let p = {};
    try { p = JSON.parse(localStorage.getItem(PREFS_KEY) || '{}') || {}; } catch (err) { /* none kept */ }
    if (SPEEDS.includes(p.speed)) setSpeed(p.speed);
    if (Number.isFinite(p.acceptAt) && p.acceptAt >= 0 && p.acceptAt <= 1) thresh.value = String(p.acceptAt);
  }
  function savedView() {
    try { return JSON.parse(localStorage.getItem(viewKey()) || '{}') || {}; } catch (err) { return {}; }
  }

  // ---- geometry ----
  const dpr = () => window.devicePixelRatio || 1;
  let width = 800;
  function plotW() { return Math.max(10, width - GUTTER - 8); }
  function xOf(t) { return GUTTER + ((t - W.view.t0) / (W.view.t1 - W.view.t0)) * plotW(); }
  function tOf(x) { return W.view.t0 + ((x - GUTTER) / plotW()) * (W.view.t1 - W.view.t0); }
  function clampView() {
    const dur = Math.max(W.duration, MIN_SPAN_S);
    let span = clamp(W.view.t1 - W.view.t0, Math.min(MIN_SPAN_S, dur), dur);
    let t0 = clamp(W.view.t0, 0, dur - span);
    W.view.t0 = t0; W.view.t1 = t0 + span;
  }
  function zoomAt(t, factor) {
    const { t0, t1 } = W.view;
    W.view.t0 = t - (t - t0) * factor;
    W.view.t1 = t + (t1 - t) * factor;
    clampView(); drawTimeline(); saveView();
  }
  function panBy(dt) { W.view.t0 += dt; W.view.t1 += dt; clampView(); drawTimeline(); saveView(); }
  function zoomTo(t0, t1, margin = 0.15) {
    const span = Math.max(t1 - t0, MIN_SPAN_S);
    W.view.t0 = t0 - span * margin; W.view.t1 = t1 + span * margin;
    clampView(); drawTimeline(); saveView();
  }
  function snap(t, exact) {
    t = clamp(t, 0, W.duration);
    if (exact) return clamp(Math.round(t * W.fps) / W.fps, 0, W.duration); // single video frames
    const n = W.times.length;
    if (!n) return t;
    const i = lowerBound(W.times, t);
    if (i <= 0) return W.times[0];
    if (i >= n) return W.times[n - 1];
    return (t - W.times[i - 1] <= W.times[i] - t) ? W.times[i - 1] : W.times[i];
  }
  function sampledStep(t, dir) {
    const n = W.times.length;
    if (!n) return t + dir / W.fps;
    let i = lowerBound(W.times, t - 1e-6);
    if (dir > 0) { if (i < n && Math.abs(W.times[i] - t) < 1e-6) i++; return W.times[Math.min(i, n - 1)]; }
    return W.times[Math.max(i - 1, 0)];
  }
  function laneGeometry() {
    const avail = lanesBox.clientHeight || 160;
    const totalRows = W.byClass.reduce((a, c) => a + c.rows, 0) || 1;
    const rowH = clamp(Math.floor((avail - LANE_GAP * (W.classes.length + 1)) / totalRows), LANE_MIN_ROW_H, LANE_ROW_H);
    const lanes = [];
    let y = LANE_GAP;
    W.byClass.forEach((c) => { lanes.push({ y, h: c.rows * rowH, rowH }); y += c.rows * rowH + LANE_GAP; });
    return { lanes, height: Math.max(y, avail), rowH };
  }

  // ---- drawing ----
  function sizeCanvas(cv, w, hgt) {
    const r = dpr();
    if (cv.width !== Math.round(w * r) || cv.height !== Math.round(hgt * r)) {
      cv.width = Math.round(w * r); cv.height = Math.round(hgt * r);
      cv.style.width = `${w}px`; cv.style.height = `${hgt}px`;
    }
    const ctx = cv.getContext('2d');
    ctx.setTransform(r, 0, 0, r, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    return ctx;
  }
  function layout() {
    width = Math.max(300, tlBody.clientWidth || 800);
    W.curvesH = curvesHeight();
  }
  function curvesHeight() {
    const body = tlBody.clientHeight;
    if (!body) return CURVES_H;
    const rows = W.byClass.reduce((a, c) => a + c.rows, 0);
    const lanes = Math.min(LANES_WANTED_H, LANE_GAP * (W.classes.length + 1) + rows * LANE_MIN_ROW_H);
    return clamp(body - OVERVIEW_H - AXIS_H - lanes, CURVES_MIN_H, CURVES_H);
  }
  function renderAll() {
    if (W.dirty) recompute();
    drawTimeline();
    renderList();
    renderCounts();
    renderSelection();
    expose();
  }
  function drawTimeline() {
    if (W.drawQueued) return;
    W.drawQueued = true;
    requestAnimationFrame(() => { W.drawQueued = false; drawNow(); });
  }
  function drawNow() {
    if (!W.loaded || main.hidden) return;
    if (W.dirty) recompute();
    layout();
    drawOverview(); drawCurves(); drawLanes(); drawAxis(); placePlayhead();
  }
  function drawOverview() {
    const ctx = sizeCanvas(cvOverview, width, OVERVIEW_H);
    ctx.fillStyle = '#f3f4f6'; ctx.fillRect(GUTTER, 2, plotW(), OVERVIEW_H - 4);
    const full = (t) => GUTTER + (t / Math.max(W.duration, 1e-9)) * plotW();
    const perClass = Math.max(1, (OVERVIEW_H - 6) / Math.max(1, W.classes.length));
    for (const strong of [false, true]) {
      W.classes.forEach((c, k) => {
        ctx.beginPath();
        for (const iv of W.byClass[k].items) {
          if (iv.state === 'rejected' || (iv.state === 'accepted' || iv.human) !== strong) continue;
          const x0 = full(iv.s);
          ctx.rect(x0, 3 + k * perClass, Math.max(1, full(iv.e) - x0), Math.max(1, perClass - 0.5));
        }
        ctx.fillStyle = alpha(c.color, strong ? 0.95 : 0.5); ctx.fill();
      });
    }
    const a = full(W.view.t0), b = full(W.view.t1);
    ctx.strokeStyle = '#111'; ctx.lineWidth = 1.5;
    ctx.strokeRect(a, 1, Math.max(2, b - a), OVERVIEW_H - 2);
    ctx.fillStyle = 'rgba(17,17,17,0.06)'; ctx.fillRect(a, 1, Math.max(2, b - a), OVERVIEW_H - 2);
    ctx.fillStyle = COLORS.playhead;
    ctx.fillRect(full(video.currentTime || 0) - 1, 0, 2, OVERVIEW_H);
    ctx.fillStyle = '#555'; ctx.font = '11px system-ui, sans-serif'; ctx.textBaseline = 'middle';
    ctx.fillText('whole video', 6, OVERVIEW_H / 2);
  }
  // Each pixel column gets the min and max of the samples it covers, so hours of video stay
  // readable at any zoom; when zoomed in past one sample a pixel, the samples are joined by lines.
  function drawCurve(ctx, values, lo, hi, top, hgt, color, dashed) {
    const n = values.length;
    if (!n) return;
    const y = (v) => top + hgt - ((v - lo) / (hi - lo || 1)) * hgt;
    const i0 = Math.max(0, lowerBound(W.times, W.view.t0) - 1), i1 = Math.min(n, lowerBound(W.times, W.view.t1) + 1);
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.setLineDash(dashed ? [4, 3] : []);
    ctx.beginPath();
    const perPx = (i1 - i0) / plotW();
    let pen = false;
    if (perPx <= 1.5) {
      for (let i = i0; i < i1; i++) {
        const v = values[i];
        if (!Number.isFinite(v)) { pen = false; continue; }
        const x = xOf(W.times[i]);
        if (pen) ctx.lineTo(x, y(v)); else ctx.moveTo(x, y(v));
        pen = true;
      }
    } else {
      let col = -1, mn = Infinity, mx = -Infinity, gap = false;
      const flushCol = () => {
        if (col < 0) return;
        if (mn === Infinity) { pen = false; return; }
        const x = GUTTER + col + 0.5;
        if (pen && !gap) ctx.lineTo(x, y(mx)); else ctx.moveTo(x, y(mx));
        ctx.lineTo(x, y(mn));
        pen = true; gap = false;
      };
      for (let i = i0; i < i1; i++) {
        const c = Math.floor(xOf(W.times[i]) - GUTTER);
        if (c !== col) { flushCol(); col = c; mn = Infinity; mx = -Infinity; }
        const v = values[i];
        if (!Number.isFinite(v)) { gap = true; continue; }
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
      flushCol();
    }
    ctx.stroke(); ctx.setLineDash([]);
  }
  function drawCurves() {
    const curvesH = W.curvesH || CURVES_H;
    const ctx = sizeCanvas(cvCurves, width, curvesH);
    const top = 6, hgt = curvesH - 12;
    ctx.fillStyle = '#fff'; ctx.fillRect(GUTTER, 0, plotW(), curvesH);
    ctx.strokeStyle = '#eceff3'; ctx.lineWidth = 1;
    for (const g of [0, 0.5, 1]) { const yy = top + hgt - g * hgt; ctx.beginPath(); ctx.moveTo(GUTTER, yy); ctx.lineTo(GUTTER + plotW(), yy); ctx.stroke(); }
    const c = W.classes[W.view.shown];
    ctx.fillStyle = '#555'; ctx.font = '11px system-ui, sans-serif'; ctx.textBaseline = 'top';
    ctx.fillText('P(yes) 1', 6, top - 2); ctx.textBaseline = 'bottom'; ctx.fillText('0', 6, top + hgt + 2);
    if (!c) return;
    ctx.save(); ctx.beginPath(); ctx.rect(GUTTER, 0, plotW(), curvesH); ctx.clip();
    // The shown class's intervals as bands, so the confidence under each one is visible.
    for (const iv of W.byClass[W.view.shown]?.items || []) {
      if (iv.e < W.view.t0 || iv.s > W.view.t1) continue;
      ctx.fillStyle = iv.state === 'rejected' ? 'rgba(150,150,150,0.12)' : alpha(c.color, iv.id === W.view.selected ? 0.28 : 0.1);
      ctx.fillRect(xOf(iv.s), 0, Math.max(1, xOf(iv.e) - xOf(iv.s)), curvesH);
    }
    drawCurve(ctx, c.actionness, c.actLo, c.actHi, top, hgt, COLORS.actionness, true);
    drawCurve(ctx, c.start, 0, 1, top, hgt, COLORS.start, false);
    drawCurve(ctx, c.end, 0, 1, top, hgt, COLORS.end, false);
    ctx.restore();
  }
  function drawLanes() {
    const geo = laneGeometry();
    W.geo = geo;
    const shown = Math.min(geo.height, lanesBox.clientHeight || geo.height), top = lanesBox.scrollTop;
    lanesSpacer.style.height = `${geo.height - shown}px`;
    const ctx = sizeCanvas(cvLanes, width, shown);
    ctx.translate(0, -top);  // rows are placed in the coordinates of all rows
    ctx.font = '12px system-ui, sans-serif'; ctx.textBaseline = 'middle';
    W.classes.forEach((c, k) => {
      const lane = geo.lanes[k];
      ctx.fillStyle = k % 2 ? '#fafafa' : '#f4f6f8';
      ctx.fillRect(GUTTER, lane.y - LANE_GAP / 2, plotW(), lane.h + LANE_GAP);
      ctx.fillStyle = c.color; ctx.fillRect(4, lane.y + 2, 8, Math.max(6, lane.h - 4));
      ctx.fillStyle = k === W.view.shown ? '#000' : '#333';
      const px = clamp(Math.floor(lane.h + LANE_GAP - 2), 8, 12); // a short lane gets a smaller label, never an overlap
      ctx.font = `${k === W.view.shown ? 'bold ' : ''}${px}px system-ui, sans-serif`;
      let label = c.name;
      while (label.length > 2 && ctx.measureText(label).width > GUTTER - 22) label = label.slice(0, -2);
      ctx.fillText(label === c.name ? label : `${label}…`, 16, lane.y + Math.min(lane.h, LANE_ROW_H) / 2);
    });
    ctx.save(); ctx.beginPath(); ctx.rect(GUTTER, 0, plotW(), geo.height); ctx.clip();
    for (const [k, s, e] of W.gt || []) {
      const lane = geo.lanes[k];
      if (!lane || e < W.view.t0 || s > W.view.t1) continue;
      ctx.fillStyle = COLORS.gt; ctx.fillRect(xOf(s), lane.y + lane.h + 1, Math.max(1, xOf(e) - xOf(s)), 3);
    }
    const drag = W.drag && W.drag.ghost ? W.drag : null;
    const y0 = top - geo.rowH, y1 = top + shown + geo.rowH;  // only the rows in sight are drawn
    const items = [];
    W.byClass.forEach((c, k) => {
      const lane = geo.lanes[k];
      if (lane.y > y1 || lane.y + lane.h < y0) return;
      for (const iv of c.items) {
        if ((drag && drag.id === iv.id) || iv.e < W.view.t0 || iv.s > W.view.t1) continue;
        const y = lane.y + (iv.row || 0) * geo.rowH;
        if (y > y1 || y + geo.rowH < y0) continue;
        items.push(iv);
      }
    });
    drawIntervals(ctx, geo, items);
    const sel = selectedIv();
    if (sel && !(drag && drag.id === sel.id) && ivVisible(sel)) drawIntervals(ctx, geo, [sel], true);
    if (drag) drawIntervals(ctx, geo, [drag.ghost], true);
    ctx.restore();
    // rows out of sight: arrows in the gutter (the wheel over the class names scrolls them)
    ctx.font = '10px system-ui, sans-serif';
    const more = (text, y) => {
      ctx.fillStyle = 'rgba(255,255,255,0.9)'; ctx.fillRect(GUTTER - 48, y - 6, 46, 12);
      ctx.fillStyle = '#555'; ctx.fillText(text, GUTTER - 46, y);
    };
    if (top > 0) more('▲ more', top + 6);
    if (top + shown < geo.height - 1) more('▼ more', top + shown - 6);
  }
  // How an interval looks: unreviewed = dashed outline, fill stronger with the score; accepted or
  // made by a person = solid; rejected = grey, struck through. Intervals of one look are drawn as
  // one path: thousands of them stay one fill and one stroke per look.
  function lookOf(iv) {
    const color = W.classes[iv.cls].color;
    if (iv.state === 'rejected') return { key: 'r', fill: 'rgba(160,160,160,0.35)', stroke: '#9a9a9a', dash: [3, 2], strike: true };
    if (iv.state === 'accepted' || iv.human) return { key: `a${iv.cls}`, fill: alpha(color, 0.92), stroke: 'rgba(0,0,0,0.55)', dash: [] };
    const a = Math.round((0.3 + 0.35 * clamp(iv.score, 0, 1)) * 10) / 10;
    return { key: `u${iv.cls}:${a}`, fill: alpha(color, a), stroke: color, dash: [4, 2] };
  }
  function drawIntervals(ctx, geo, items, emphasis) {
    const looks = new Map();
    const labels = [];
    for (const iv of items) {
      const lane = geo.lanes[iv.cls];
      if (!lane) continue;
      const x0 = xOf(iv.s), w = Math.max(2, xOf(iv.e) - x0);
      const y = lane.y + (iv.row || 0) * geo.rowH, hh = Math.max(3, geo.rowH - 2);
      let look = looks.get(lookOf(iv).key);
      if (!look) { look = { ...lookOf(iv), rects: [] }; looks.set(look.key, look); }
      look.rects.push(x0, y, w, hh);
      if (w > 44 && hh >= 12) labels.push([iv, x0, y, w, hh]);
    }
    ctx.lineWidth = 1;
    for (const look of looks.values()) {
      const r = look.rects;
      ctx.beginPath();
      for (let i = 0; i < r.length; i += 4) ctx.rect(r[i], r[i + 1], r[i + 2], r[i + 3]);
      ctx.fillStyle = look.fill; ctx.fill();
      ctx.beginPath();
      for (let i = 0; i < r.length; i += 4) {
        if (r[i + 2] < 4) continue; // a sliver: its fill is all there is to see
        ctx.rect(r[i] + 0.5, r[i + 1] + 0.5, r[i + 2] - 1, r[i + 3] - 1);
        if (look.strike) { ctx.moveTo(r[i], r[i + 1] + r[i + 3]); ctx.lineTo(r[i] + r[i + 2], r[i + 1]); }
      }
      ctx.setLineDash(look.dash); ctx.strokeStyle = look.stroke; ctx.stroke();
    }
    ctx.setLineDash([]);
    if (emphasis) {
      for (const iv of items) {
        const lane = geo.lanes[iv.cls]; if (!lane) continue;
        const x0 = xOf(iv.s), w = Math.max(2, xOf(iv.e) - x0), y = lane.y + (iv.row || 0) * geo.rowH, hh = Math.max(3, geo.rowH - 2);
        ctx.strokeStyle = '#000'; ctx.lineWidth = 2.5; ctx.strokeRect(x0 - 1, y - 1, w + 2, hh + 2);
        if (w > 10) { ctx.fillStyle = '#000'; ctx.fillRect(x0 - 1, y - 1, 3, hh + 2); ctx.fillRect(x0 + w - 2, y - 1, 3, hh + 2); }
      }
    }
    ctx.font = '11px system-ui, sans-serif'; ctx.textBaseline = 'middle';
    for (const [iv, x0, y, w, hh] of labels) {
      ctx.fillStyle = iv.state === 'accepted' || iv.human ? '#fff' : '#222';
      const mark = iv.state === 'accepted' ? ' ✓' : iv.state === 'rejected' ? ' ✗' : '';
      ctx.fillText(`${iv.human ? 'edited' : iv.score.toFixed(2)}${mark}`, x0 + 4, y + hh / 2, w - 8);
    }
  }
  function niceStep(pxPerS) {
    const steps = [1 / W.fps, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
    return steps.find((s) => s * pxPerS >= 90) || 7200;
  }
  function drawAxis() {
    const ctx = sizeCanvas(cvAxis, width, AXIS_H);
    const pxPerS = plotW() / (W.view.t1 - W.view.t0);
    const step = niceStep(pxPerS);
    ctx.fillStyle = '#444'; ctx.font = '11px system-ui, sans-serif'; ctx.textBaseline = 'top';
    ctx.strokeStyle = '#999';
    const first = Math.ceil(W.view.t0 / step) * step;
    for (let t = first; t <= W.view.t1 + 1e-9; t += step) {
      const x = xOf(t);
      ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, 5); ctx.stroke();
      const label = step < 1 ? fmtClock(t).replace(/^00:/, '') : fmtClock(t).slice(0, 8);
      if (x + ctx.measureText(label).width + 4 < width) ctx.fillText(label, x + 2, 6);
    }
    ctx.fillText(`${fmtDur(W.view.t1 - W.view.t0)} shown`, 6, 6);
  }
  function placePlayhead() {
    const t = video.currentTime || 0;
    const x = xOf(t);
    const inside = t >= W.view.t0 && t <= W.view.t1;
    playhead.hidden = !inside;
    if (inside) {
      playhead.style.transform = `translateX(${x}px)`;
      playhead.style.top = `${OVERVIEW_H}px`;
      playhead.style.height = `${(W.curvesH || CURVES_H) + lanesBox.clientHeight}px`;
    }
  }

  // ---- the interval list (virtual: only the rows in sight exist) ----
  function editingInList() { return !!(W.editing && W.editing.input.isConnected); }
  function renderList() {
    if (editingInList()) return;  // redrawn when the editor closes; an open editor is never torn away
    const n = W.visible.length;
    listSpacer.style.height = `${n * ROW_H}px`;
    listEmpty.hidden = n > 0;
    listEmpty.textContent = n ? '' : (W.ivs.size ? 'No interval in this view (see the filters above).' : 'No intervals: draw one on a lane, or press i.');
    const top = listBody.scrollTop, hgt = listBody.clientHeight || 300;
    const i0 = Math.max(0, Math.floor(top / ROW_H) - 4), i1 = Math.min(n, Math.ceil((top + hgt) / ROW_H) + 4);
    listRows.style.transform = `translateY(${i0 * ROW_H}px)`;
    const frag = document.createDocumentFragment();
    for (let i = i0; i < i1; i++) frag.append(listRow(W.visible[i]));
    listRows.replaceChildren(frag);
  }
  function listRow(iv) {
    const c = W.classes[iv.cls];
    const row = h('div', { class: `zw-list-row zw-st-${iv.state}${iv.id === W.view.selected ? ' zw-sel' : ''}`, 'data-id': iv.id },
      h('span', { class: 'zw-c-class', 'data-field': 'class' }, h('i', { class: 'zw-sw', style: `background:${c.color}` }), c.name),
      h('span', { class: 'zw-c-start', 'data-field': 'start', text: fmtTime(iv.s, W.fps) }),
      h('span', { class: 'zw-c-end', 'data-field': 'end', text: fmtTime(iv.e, W.fps) }),
      h('span', { class: 'zw-c-length', text: fmtDur(iv.e - iv.s) }),
      h('span', { class: 'zw-c-score', text: iv.human ? 'edited' : iv.score.toFixed(3) }),
      h('span', { class: 'zw-c-state', title: iv.state }, h('b', { class: `zw-badge zw-b-${iv.state}`, text: STATE_KEY[iv.state] }), iv.state));
    return row;
  }
  function scrollListTo(id) {
    const i = W.visible.findIndex((iv) => iv.id === id);
    if (i < 0) return;
    const top = i * ROW_H, hgt = listBody.clientHeight;
    if (top < listBody.scrollTop) listBody.scrollTop = top;
    else if (top + ROW_H > listBody.scrollTop + hgt) listBody.scrollTop = top + ROW_H - hgt;
  }
  listBody.addEventListener('scroll', () => renderList(), { passive: true });
  // A second click on the same cell soon after the first opens its editor. (The first click
  // redraws the rows, so the browser's own dblclick never reaches the new row.)
  let lastClick = null;
  listRows.addEventListener('click', (ev) => {
    const row = ev.target.closest('.zw-list-row');
    if (!row || editingInList()) return;
    const field = ev.target.closest('[data-field]')?.dataset.field || null;
    const now = performance.now();
    const again = lastClick && lastClick.id === row.dataset.id && lastClick.field === field && now - lastClick.t < 450;
    lastClick = { id: row.dataset.id, field, t: now };
    if (again && field) {
      lastClick = null;
      startCellEdit(row.dataset.id, field);
      return;
    }
    select(row.dataset.id, { seek: 'start', scroll: false });
  });
  function startCellEdit(id, field) {
    const iv = W.ivs.get(id);
    if (!iv) return;
    select(id, { seek: null, scroll: false });
    // select() drew the rows again: the editor goes into the cell on the page now
    const cell = listRows.querySelector(`.zw-list-row[data-id="${CSS.escape(id)}"] [data-field="${field}"]`);
    if (!cell) return;
    let input;
    if (field === 'class') {
      input = h('select', { class: 'zw-cell-input' }, ...W.classes.map((c, k) => h('option', { value: k, text: c.name, selected: k === iv.cls })));
    } else {
      input = h('input', { class: 'zw-cell-input', value: fmtClock(field === 'start' ? iv.s : iv.e), title: 'hh:mm:ss.mmm, seconds, or f<frame>; Enter to keep, Esc to cancel' });
    }
    W.editing = { id, field, input };
    cell.replaceChildren(input);
    input.focus();
    if (input.select) input.select();
    let done = false;
    const finish = (keep) => {
      if (done) return; done = true; W.editing = null;
      if (keep) {
        if (field === 'class') changeClass(id, Number(input.value));
        else setEdge(id, field, parseTime(input.value, W.fps), true);
      }
      renderList(); renderSelection();
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); finish(true); }
      else if (e.key === 'Escape') { e.preventDefault(); finish(false); }
      e.stopPropagation();
    });
    input.addEventListener('blur', () => finish(field === 'class'));
    if (field === 'class') input.addEventListener('change', () => finish(true));
  }

  // ---- selection panel, counts ----
  function renderCounts() {
    const c = counts();
    countsEl.replaceChildren(
      ...STATES.map((s) => h('span', { class: `zw-count zw-b-${s}`, 'data-state': s }, h('b', { text: String(c[s]) }), ` ${s}`)),
      h('span', { class: 'zw-count-note', text: W.view.set === 'review' ? 'in the review set' : 'of all proposals' }));
    const cls = W.classes[W.view.shown];
    acceptAllBtn.textContent = `✓ accept all ${cls ? cls.name : ''}`;
    undoBtn.disabled = !W.undo.length; redoBtn.disabled = !W.redo.length;
    undoBtn.title = W.undo.length ? `Undo: ${W.undo[W.undo.length - 1].label} (Ctrl/Cmd+Z)` : 'Nothing to undo';
    redoBtn.title = W.redo.length ? `Redo: ${W.redo[W.redo.length - 1].label} (Ctrl/Cmd+Shift+Z)` : 'Nothing to redo';
    if (W.saveState === 'saved' && !W.pending.length) setSave('saved');
  }
  function renderSelection() {
    const iv = selectedIv();
    if (!iv) {
      selPanel.replaceChildren(h('span', { class: 'zw-hint', text: 'Click an interval (list or lane), or press n (u: the next unreviewed one). Drag its edges on the lane; drag on an empty lane to draw one. ? lists every key.' }));
      return;
    }
    const c = W.classes[iv.cls];
    const clsSel = h('select', { class: 'zw-sel-class', title: 'Class (1-9)' }, ...W.classes.map((cc, k) => h('option', { value: k, text: cc.name, selected: k === iv.cls })));
    clsSel.addEventListener('change', () => changeClass(iv.id, Number(clsSel.value)));
    const edge = (field) => {
      const input = h('input', { class: 'zw-sel-time', value: fmtClock(field === 'start' ? iv.s : iv.e), title: 'hh:mm:ss.mmm, seconds, or f<frame>; Enter to apply' });
      input.dataset.field = field;
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') {
          // Applied, and the cursor stays in the field: letters typed next are not shortcuts.
          e.preventDefault();
          setEdge(iv.id, field, parseTime(input.value, W.fps), true);
          const again = selPanel.querySelector(`input[data-field="${field}"]`);
          if (again) { again.focus(); again.select(); }
        } else if (e.key === 'Escape') { input.blur(); renderSelection(); }
        e.stopPropagation();
      });
      return h('label', { class: 'zw-sel-edge' }, field, input, h('small', { text: `f${frameOf(field === 'start' ? iv.s : iv.e, W.fps)}` }));
    };
    selPanel.replaceChildren(
      h('div', { class: 'zw-row' }, h('i', { class: 'zw-sw', style: `background:${c.color}` }), clsSel, edge('start'), edge('end'),
        h('span', { class: 'zw-sel-info', text: `${fmtDur(iv.e - iv.s)} · ${iv.human ? 'by a person' : `model score ${iv.score.toFixed(3)}`} · ${iv.state}` })),
      h('div', { class: 'zw-row' },
        h('button', { class: 'zw-btn zw-ok', 'data-act': 'accept', text: '✓ accept (a)' }),
        h('button', { class: 'zw-btn zw-no', 'data-act': 'reject', text: '✗ reject (r)' }),
        h('button', { class: 'zw-btn', 'data-act': 'split', text: 'split (s)', title: 'Split at the play head (s)' }),
        h('button', { class: 'zw-btn', 'data-act': 'merge', text: 'merge → (m)', title: 'Merge with the next interval of its class (m)' }),
        h('button', { class: 'zw-btn', 'data-act': 'delete', text: 'delete (Del)' })));
  }
  function renderToggles() {
    loopBtn.classList.toggle('zw-on', W.view.loop);
    transport.querySelector('.zw-play').textContent = video.paused ? '▶' : '❚❚';
  }

  // ---- actions ----
  function select(id, { seek = 'start', scroll = true } = {}) {
    const iv = id ? W.ivs.get(id) : null;
    W.view.selected = iv ? iv.id : null;
    if (iv) {
      W.anchor = { s: iv.s, e: iv.e, id: iv.id };
      if (W.view.shown !== iv.cls) { W.view.shown = iv.cls; shownSel.value = String(iv.cls); }
      if (iv.e < W.view.t0 || iv.s > W.view.t1) { const span = W.view.t1 - W.view.t0; W.view.t0 = (iv.s + iv.e) / 2 - span / 2; W.view.t1 = W.view.t0 + span; clampView(); }
      if (seek === 'start') seekTo(iv.s); else if (seek === 'end') seekTo(iv.e);
      if (scroll) scrollListTo(iv.id);
      scrollLanesTo(iv);
    }
    drawTimeline(); renderList(); renderSelection(); renderCounts(); saveView(); expose();
  }
  function scrollLanesTo(iv) {  // the selected interval's row in sight when the lanes scroll
    const lane = W.geo && W.geo.lanes[iv.cls];
    if (lane) scrollRowsIntoView(lane.y + (iv.row || 0) * W.geo.rowH, W.geo.rowH);
  }
  function scrollLaneOf(k) {  // the lane of the class the curves show
    const lane = W.geo && W.geo.lanes[k];
    if (lane) scrollRowsIntoView(lane.y, Math.min(lane.h, lanesBox.clientHeight - 2 * LANE_GAP));
  }
  function scrollRowsIntoView(top, hgt) {
    const box = lanesBox.clientHeight;
    if (top < lanesBox.scrollTop) lanesBox.scrollTop = Math.max(0, top - LANE_GAP);
    else if (top + hgt > lanesBox.scrollTop + box) lanesBox.scrollTop = top + hgt - box + LANE_GAP;
  }
  function seekTo(t) {
    t = clamp(t, 0, W.duration);
    // A hair past the frame's own time, so the player shows that frame and not the one before.
    video.currentTime = Math.min(t + Math.min(0.25 / W.fps, 0.005), W.duration);
    W.playT = t;
    updateTime(t);
    drawTimeline();
  }
  function currentT() { return W.playT !== undefined && Math.abs(W.playT - video.currentTime) < 0.01 ? W.playT : video.currentTime; }
  function updateTime(t) { timeLabel.textContent = `${fmtTime(t, W.fps)} / ${fmtClock(W.duration).slice(0, 8)}`; }
  // The time of the video frame the player shows: where split, b, e and i act.
  function playheadFrame() { return clamp(frameOf(currentT(), W.fps) / W.fps, 0, W.duration); }
  function reviewed(iv, changes) { return { ...iv, ...changes, state: changes.state || 'accepted', rs: true }; }
  function setState(ids, state, label) {
    const ops = [];
    for (const id of ids) { const iv = W.ivs.get(id); if (iv && iv.state !== state) ops.push({ id, after: { ...iv, state, rs: true } }); }
    commit(label, ops);
  }
  function setEdge(id, field, t, exact) {
    const iv = W.ivs.get(id);
    if (!iv || !Number.isFinite(t)) { if (iv) showNotice('Type a time like 00:01:23.456, 83.5 or f2087.', 'warn'); return; }
    t = exact ? clamp(t, 0, W.duration) : snap(t);
    const s = field === 'start' ? t : iv.s, e = field === 'end' ? t : iv.e;
    if (!(e > s)) { showNotice('The end must come after the start.', 'warn'); renderSelection(); return; }
    commit(`move ${field}`, [{ id, after: reviewed(iv, { s, e, human: true, state: 'accepted' }) }]);
  }
  function nudge(field, dir) {
    const iv = selectedIv(); if (!iv) return needSelection();
    const t = sampledStep(field === 'start' ? iv.s : iv.e, dir);
    setEdge(iv.id, field, t, true);
    seekTo(t);
  }
  function changeClass(id, k) {
    const iv = W.ivs.get(id);
    if (!iv || !W.classes[k] || iv.cls === k) return;
    commit(`class → ${W.classes[k].name}`, [{ id, after: reviewed(iv, { cls: k, human: true, state: 'accepted' }) }]);
  }
  function newInterval(cls, s, e) {
    return { id: `h${randomHex(12)}`, cls, s, e, score: 1, human: true, state: 'accepted', rs: true, v: 0 };
  }
  function insertAtPlayhead() {
    if (!W.classes.length) return;
    const t = playheadFrame();
    const len = Math.max(2, (W.view.t1 - W.view.t0) / 20);
    let s = t, e = Math.min(W.duration, snap(t + len));
    if (!(e > s)) { e = s; s = Math.max(0, snap(s - len)); }
    if (!(e > s)) return;
    const iv = newInterval(W.view.shown, s, e);
    commit('new interval', [{ id: iv.id, after: iv }]);
    select(iv.id, { seek: null });
  }
  function split() {
    const iv = selectedIv(); if (!iv) return needSelection();
    const t = playheadFrame();
    if (!(t > iv.s && t < iv.e)) { showNotice('Move the play head inside the selected interval to split it.', 'warn'); return; }
    const right = newInterval(iv.cls, t, iv.e);
    right.score = iv.score;
    commit('split', [{ id: iv.id, after: reviewed(iv, { e: t, human: true, state: 'accepted' }) }, { id: right.id, after: right }]);
  }
  function merge() {
    const iv = selectedIv(); if (!iv) return needSelection();
    const next = W.visible.find((o) => o.cls === iv.cls && o.id !== iv.id && (o.s > iv.s || (o.s === iv.s && o.e > iv.e)));
    if (!next) { showNotice(`No later ${W.classes[iv.cls].name} interval to merge with.`, 'warn'); return; }
    commit('merge', [{ id: iv.id, after: reviewed(iv, { e: Math.max(iv.e, next.e), human: true, state: 'accepted' }) }, { id: next.id, after: null }]);
  }
  function remove() {
    const iv = selectedIv(); if (!iv) return needSelection();
    commit('delete', [{ id: iv.id, after: null }]);
    // Nothing stays selected: a second Delete must not remove the next interval unseen.
    select(null, { seek: null });
    W.anchor = { s: iv.s, e: iv.e, id: iv.id };
    showNotice(`Deleted ${W.classes[iv.cls].name} ${fmtClock(iv.s)}–${fmtClock(iv.e)}. Ctrl+Z brings it back.`, 'info');
  }
  function acceptAbove() {
    const k = W.view.shown, x = Number(thresh.value);
    if (!Number.isFinite(x)) { showNotice('Give a score threshold between 0 and 1.', 'warn'); return; }
    const ids = W.visible.filter((iv) => iv.cls === k && iv.state === 'unreviewed' && iv.score >= x).map((iv) => iv.id);
    if (!ids.length) { showNotice(`No unreviewed ${W.classes[k].name} interval scores at least ${x}.`, 'info'); return; }
    setState(ids, 'accepted', `accept ${ids.length} ${W.classes[k].name} ≥ ${x}`);
    showNotice(`Accepted ${ids.length} interval(s) of ${W.classes[k].name} scoring at least ${x}. Ctrl+Z undoes it.`, 'info');
  }
  // n / p: the next / previous interval of the list; u / U: the next / previous one nobody reviewed.
  function step(dir, unreviewedOnly = false) {
    const list = W.visible;
    if (!list.length) return;
    const i = list.findIndex((iv) => iv.id === W.view.selected);
    let j;
    if (i >= 0) j = i + dir;
    else if (W.anchor) {  // nothing selected since a delete or a hidden reject: on from there
      const after = firstAfter(list, W.anchor);
      j = dir > 0 ? after : after - 1;
    } else j = dir > 0 ? 0 : list.length - 1;
    if (unreviewedOnly) {
      while (j >= 0 && j < list.length && list[j].state !== 'unreviewed') j += dir;
      if (j < 0 || j >= list.length) { showNotice(`No unreviewed interval ${dir > 0 ? 'after' : 'before'} this one in the list.`, 'info'); return; }
    }
    select(list[clamp(j, 0, list.length - 1)].id, { seek: 'start' });
  }
  function firstAfter(list, at) {  // the index of the first interval of the list that comes after `at`
    let lo = 0, hi = list.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (listOrder(list[mid], at) <= 0) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function needSelection() { showNotice('Select an interval first (click it, or press n).', 'warn'); }
  function frameStep(dir, sampled) {
    video.pause();
    const t = currentT();
    if (sampled) { seekTo(sampledStep(t, dir)); return; }
    const f = frameOf(t, W.fps) + dir;
    seekTo(clamp(f / W.fps, 0, W.duration));
  }
  function togglePlay() { if (video.paused) video.play().catch(() => {}); else video.pause(); }
  function setSpeed(s) { video.playbackRate = video.defaultPlaybackRate = s; speedSel.value = String(s); W.view.speed = s; savePrefs(); }
  function speedStep(dir) { const i = SPEEDS.indexOf(video.playbackRate); setSpeed(SPEEDS[clamp((i < 0 ? 3 : i) + dir, 0, SPEEDS.length - 1)]); }
  function setSet(set) { W.view.set = set; setSel.value = set; W.dirty = true; renderAll(); saveView(); }

  // ---- proposal settings: re-propose on the server from the cached curves ----
  const PARAMS = [['lam', 'λ (boundary vs actionness)', 0, 1, 0.05], ['top_p', 'top-p (candidate fraction)', 0.05, 1, 0.05],
    ['nms_sigma', 'soft-NMS σ', 0.1, 5, 0.1], ['merge_iou', 'merge IoU', 0.5, 1, 0.05], ['min_score', 'min score', 0, 1, 0.01]];
  function buildParams() {
    paramsBox.replaceChildren(h('div', { class: 'zw-params-note', text: 'Only unreviewed proposals change; what you accepted, rejected, edited or drew stays.' }),
      ...PARAMS.map(([key, label, lo, hi, stp]) => {
        const val = W.params[key] ?? lo;
        const out = h('output', { text: String(val) });
        const input = h('input', { type: 'range', min: lo, max: hi, step: stp, value: val, 'data-param': key });
        input.addEventListener('input', () => { out.textContent = input.value; W.sliderAt = performance.now(); requestRepropose(); });
        return h('label', { class: 'zw-param' }, h('span', { text: label }), input, out);
      }));
  }
  // A slider move asks at once; moves made while a request is out are folded into one more.
  let reproposing = false, reproposeAgain = false;
  function requestRepropose() {
    const params = { ...W.params };
    paramsBox.querySelectorAll('input[data-param]').forEach((i) => { params[i.dataset.param] = Number(i.value); });
    W.params = params;
    if (reproposing) { reproposeAgain = true; return; }
    reproposing = true;
    const t0 = performance.now();
    task(async () => {
      await sendPending();
      let res;
      try { W.requests++; res = await server.repropose({ video: W.video, params }); } catch (err) { showNotice(`Could not re-propose: ${err.message}; move the slider again to retry.`, 'error'); return; }
      if (!res || res.error) { showNotice(res ? res.error : 'no answer', 'error'); return; }
      W.ivs = new Map(res.intervals.map((a) => { const iv = fromWire(a); return [iv.id, iv]; }));
      for (const e of W.pending) applyOps(e.ops.map((op) => ({ id: op.id, after: fromDict(op.after) })), false);
      W.rev = res.rev;
      W.dirty = true;
      if (W.view.selected && !W.ivs.has(W.view.selected)) W.view.selected = null;
      renderAll();
      const from = W.sliderAt || t0;
      requestAnimationFrame(() => setTimeout(() => { W.reproposeMs = performance.now() - from; }, 0));
      showNotice(res.message, 'info');
    }).then(() => {
      reproposing = false;
      if (reproposeAgain) { reproposeAgain = false; requestRepropose(); }
    });
  }

  // ---- the project's videos: switch, next to review, mark done, classes CLIP left out ----
  const STATUS_TEXT = { new: 'not scored', queued: 'queued', scoring: 'scoring', scored: 'to review', 'in review': 'in review', done: 'done', failed: 'failed' };
  function setVideos(list, react = true) {
    W.videos = list;
    const none = !list.length ? 'no video yet' : !list.some((v) => v.id === W.video) ? 'choose a video…' : null;
    videoSel.replaceChildren(...(none ? [h('option', { value: '', text: none, selected: true })] : []),
      ...list.map((v, k) => h('option', { value: v.id, selected: v.id === W.video,
        text: `${k + 1}. ${v.name} · ${STATUS_TEXT[v.status] || v.status}${v.status === 'scoring' ? ` ${Math.round(v.progress * 100)}%` : ''}${v.missing ? ' · file missing' : ''}` })));
    videoSel.value = none ? '' : W.video;
    const busy = list.filter((v) => v.status === 'queued' || v.status === 'scoring');
    const scoring = list.find((v) => v.status === 'scoring');
    projStatus.textContent = busy.length ? `scoring ${scoring ? `${scoring.name} ${Math.round(scoring.progress * 100)}%` : '…'}${busy.length > 1 ? ` · ${busy.length - 1} queued` : ''}` : '';
    const mine = list.find((v) => v.id === W.video);
    const stale = mine && mine.rev > W.rev && W.loadedVideo === W.video;  // changed by a (re-)scoring
    // Edits still on their way first: look again shortly, then take the new result.
    schedulePoll(busy.length > 0 || (react && stale && W.pending.length > 0));
    if (!react) return;
    if (stale && !W.pending.length) {
      // what the new result kept and replaced (and what the run worked around), said where the work is
      load('update').then(() => { if (mine.message && W.video === mine.id && W.rev >= mine.rev) showNotice(mine.message, 'info'); });
    }
    else if (mine && !W.data && mine.rev > 0) load('reload');
  }
  let pollTimer = null;
  // The list is asked for again every second while something is scored (or this video's new result
  // waits for edits on their way), else every few seconds while the workspace is in sight: scoring
  // started elsewhere (the Project tab, another browser) shows here too.
  const POLL_BUSY_MS = 1000, POLL_IDLE_MS = 5000;
  function schedulePoll(busy) {
    if (pollTimer && !(busy && pollTimer.idle)) return;
    clearTimeout(pollTimer && pollTimer.id);
    pollTimer = { idle: !busy, id: setTimeout(async () => {
      pollTimer = null;
      if (root.offsetParent === null) { schedulePoll(false); return; }  // not in sight: no request
      await lookAtVideos();
    }, busy ? POLL_BUSY_MS : POLL_IDLE_MS) };
  }
  videoSel.addEventListener('change', () => { openVideo(videoSel.value); videoSel.blur(); });
  function stepVideo(dir) {
    const k = W.videos.findIndex((v) => v.id === W.video);
    const next = W.videos[clamp(k + dir, 0, W.videos.length - 1)];
    if (next && next.id !== W.video) openVideo(next.id);
  }
  function nextUnreviewed() {
    const k = W.videos.findIndex((v) => v.id === W.video);
    const order = [...W.videos.slice(k + 1), ...W.videos.slice(0, Math.max(k, 0))];
    const next = order.find((v) => v.status === 'scored');
    if (next) { openVideo(next.id); showNotice(`Opened ${next.name}.`, 'info'); }
    else showNotice('No other scored video waits for review.', 'info');
  }
  async function markDone() {
    if (!W.video) return;
    await flush();
    const entry = W.videos.find((v) => v.id === W.video);
    const action = entry && entry.status === 'done' ? 'reopen' : 'done';
    let res;
    try { res = await server.video_action({ action, video: W.video }); } catch (err) { showNotice(`Not changed: ${err.message}; try again.`, 'error'); return; }
    if (res.error) { showNotice(res.error, 'error'); return; }
    setVideos(res.videos || []);
    showNotice(res.message, 'info');
  }
  function renderDropped(dropped) {
    droppedEl.replaceChildren();
    if (!dropped.length) return;
    droppedEl.append(h('span', { class: 'zw-muted', text: 'CLIP left out:' }),
      ...dropped.slice(0, 6).map(([name, score]) => h('button', { class: 'zw-btn zw-bring', 'data-bring': name,
        title: `Score ${name} on this video too (CLIP's score ${score.toFixed(3)}); your work stays`, text: `+ ${name} ${score.toFixed(2)}` })));
  }
  droppedEl.addEventListener('click', async (ev) => {
    const b = ev.target.closest('[data-bring]');
    if (!b) return;
    await flush();
    let res;
    try { res = await server.video_action({ action: 'bring_back', video: W.video, class: b.dataset.bring }); } catch (err) { showNotice(`Not queued: ${err.message}; try again.`, 'error'); return; }
    if (res.error) { showNotice(res.error, 'error'); return; }
    showNotice(res.message, 'info');
    setVideos(res.videos || []);
  });

  // ---- notices, help ----
  let noticeTimer = null;
  function showNotice(text, kind) {
    notice.textContent = text;
    notice.className = `zw-notice zw-n-${kind || 'info'}`;
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { notice.hidden = true; }, kind === 'error' || text.length > 80 ? 9000 : 4000);
  }
  function buildHelp() {
    const keys = [
      ['Space', 'play / pause'], ['← / →', 'one video frame back / forward'], ['Shift+← / Shift+→', 'one sampled frame back / forward'],
      ['< / >', 'slower / faster (0.25x–4x)'], ['Home / End', 'jump to the selected interval\'s start / end'], ['l', 'loop the selected interval'],
      ['n / p', 'next / previous interval'], ['u / Shift+U', 'next / previous unreviewed interval'], ['Shift+N', 'the next video to review'], ['a / r', 'accept / reject the selected interval'],
      ['[ / ]', 'start one sampled frame earlier / later'], ['{ / }', 'end one sampled frame earlier / later'],
      ['b / e', 'set the start / end to the play head'], ['s', 'split at the play head'], ['m', 'merge with the next interval of its class'],
      ['Delete / Backspace', 'delete the selected interval'], ['i', 'new interval at the play head (shown class)'],
      ['1 – 9', 'change the selected interval\'s class'], ['c', 'show the curves of the next class'],
      ['+ / −, wheel', 'zoom in / out (at the pointer)'], ['Shift+wheel, drag on the curves', 'pan'],
      ['z', 'zoom to the selection'], ['0', 'whole video'], ['v', 'review set / all proposals'], ['h', 'hide / show rejected'],
      ['Ctrl/Cmd+Z', 'undo'], ['Ctrl/Cmd+Shift+Z, Ctrl+Y', 'redo'], ['?', 'this list'], ['Esc', 'close / clear the selection'],
    ];
    const mouse = [
      ['click on the timeline', 'seek there'], ['click an interval', 'select it'], ['drag an interval\'s edge', 'move that edge (snaps to sampled frames; hold Alt for single video frames)'],
      ['drag an interval\'s body', 'move it'], ['drag on an empty lane', 'draw a new interval of that class'], ['wheel over the class names', 'scroll the lanes (when they do not all fit)'], ['double-click a list cell', 'type a start, end or class'],
      ['the strip on top', 'the whole video: click or drag to move the visible window'],
    ];
    const table = (rows) => h('table', {}, ...rows.map(([k, v]) => h('tr', {}, h('th', { text: k }), h('td', { text: v }))));
    const half = Math.ceil(keys.length / 2);
    help.replaceChildren(h('div', { class: 'zw-help-card' },
      h('div', { class: 'zw-row' }, h('strong', { text: 'Keys (whenever the cursor is not in a text field)' }), h('span', { class: 'zw-spacer' }),
        h('button', { class: 'zw-btn', 'data-act': 'help', text: 'close (Esc)' })),
      h('div', { class: 'zw-help-cols' }, table(keys.slice(0, half)), table(keys.slice(half))),
      h('strong', { text: 'Mouse' }), table(mouse),
      h('p', { text: 'States: dashed = unreviewed proposal (every proposal starts so), solid = accepted, grey struck = rejected. What you draw or edit is accepted. Every edit is saved on the server as you go and can be undone, also after a reload.' })));
  }
  function toggleHelp(on) { help.hidden = on === undefined ? !help.hidden : !on; }

  // ---- timeline pointer interactions ----
  function laneHit(x, y) {
    const geo = W.geo; if (!geo) return null;
    const k = geo.lanes.findIndex((l) => y >= l.y - LANE_GAP / 2 && y < l.y + l.h + LANE_GAP / 2);
    if (k < 0) return null;
    const lane = geo.lanes[k];
    const row = Math.floor((y - lane.y) / geo.rowH);
    let best = null;
    for (const iv of W.byClass[k].items) {
      if (iv.row !== row) continue;
      const x0 = xOf(iv.s), x1 = xOf(iv.e);
      if (x >= x0 - EDGE_GRAB_PX && x <= x1 + EDGE_GRAB_PX) {
        const part = Math.abs(x - x0) <= EDGE_GRAB_PX && x1 - x0 > 2 * EDGE_GRAB_PX ? 'start'
          : Math.abs(x - x1) <= EDGE_GRAB_PX ? 'end' : (x >= x0 && x <= x1 ? 'body' : null);
        if (part) { best = { iv, part }; if (part !== 'body') break; }
      }
    }
    return { cls: k, hit: best };
  }
  function localXY(ev, el) { const r = el.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; }
  function laneXY(ev) { const [x, y] = localXY(ev, cvLanes); return [x, y + lanesBox.scrollTop]; }  // y among all rows
  cvLanes.addEventListener('pointerdown', (ev) => {
    if (ev.button !== 0) return;
    const [x, y] = laneXY(ev);
    if (x < GUTTER) { const info = laneHit(x, y); if (info) { W.view.shown = info.cls; shownSel.value = String(info.cls); drawTimeline(); renderCounts(); } return; }
    const info = laneHit(x, y);
    if (!info) return;
    cvLanes.setPointerCapture(ev.pointerId);
    const t = tOf(x);
    if (info.hit) W.drag = { kind: info.hit.part, id: info.hit.iv.id, x0: x, t0: t, orig: info.hit.iv, moved: false };
    else W.drag = { kind: 'draw', cls: info.cls, x0: x, t0: t, moved: false };
  });
  cvLanes.addEventListener('pointermove', (ev) => {
    const [x, y] = laneXY(ev);
    const d = W.drag;
    if (!d) { hoverAt(ev, x, y, 'lanes'); return; }
    if (!d.moved && Math.abs(x - d.x0) < DRAG_THRESHOLD_PX) return;
    d.moved = true;
    const exact = ev.altKey;
    const t = clamp(tOf(x), 0, W.duration);
    if (d.kind === 'draw') {
      const a = snap(Math.min(d.t0, t), exact), b = snap(Math.max(d.t0, t), exact);
      d.ghost = { ...newInterval(d.cls, a, b), id: '__ghost__', row: 0 };
    } else {
      const o = d.orig;
      let s = o.s, e = o.e;
      if (d.kind === 'start') s = Math.min(snap(t, exact), e);
      else if (d.kind === 'end') e = Math.max(snap(t, exact), s);
      else { const dt = t - d.t0; const len = o.e - o.s; s = snap(clamp(o.s + dt, 0, W.duration - len), exact); e = Math.min(W.duration, s + len); }
      d.ghost = { ...o, s, e };
      seekTo(d.kind === 'end' ? e : s);
    }
    tooltipText(ev, d.ghost ? `${fmtTime(d.ghost.s, W.fps)} → ${fmtTime(d.ghost.e, W.fps)} (${fmtDur(d.ghost.e - d.ghost.s)})` : '');
    drawTimeline();
  });
  const endDrag = (ev, cancel) => {
    const d = W.drag; W.drag = null;
    if (!d) return;
    tooltip.hidden = true;
    if (cancel) { drawTimeline(); return; }
    if (!d.moved) { // a click: select what is under the pointer, seek to the time
      let parked = false;
      if (d.kind !== 'draw') {
        // A play head the annotator parked inside the interval stays where it is (split acts there);
        // a second click on the selected interval seeks.
        const iv = W.ivs.get(d.id), t = currentT();
        parked = W.view.selected !== d.id && !!iv && t >= iv.s && t <= iv.e;
        select(d.id, { seek: null });
      } else { W.view.shown = d.cls; shownSel.value = String(d.cls); }
      if (!parked) seekTo(snap(d.t0, true));
      renderSelection(); renderCounts();
      return;
    }
    const g = d.ghost;
    if (!g || !(g.e > g.s)) { drawTimeline(); return; }
    if (d.kind === 'draw') {
      const iv = { ...g, id: `h${randomHex(12)}` };
      commit('draw interval', [{ id: iv.id, after: iv }]);
      select(iv.id, { seek: null });
    } else {
      const o = d.orig;
      if (g.s === o.s && g.e === o.e) { drawTimeline(); return; }
      commit(d.kind === 'body' ? 'move interval' : `move ${d.kind}`, [{ id: o.id, after: reviewed(o, { s: g.s, e: g.e, human: true, state: 'accepted' }) }]);
      select(o.id, { seek: null });
    }
  };
  cvLanes.addEventListener('pointerup', (ev) => endDrag(ev, false));
  cvLanes.addEventListener('pointercancel', (ev) => endDrag(ev, true));
  cvLanes.addEventListener('pointerleave', () => { if (!W.drag) tooltip.hidden = true; });
  cvLanes.addEventListener('dblclick', (ev) => {
    const [x, y] = laneXY(ev);
    const info = laneHit(x, y);
    if (info && info.hit) zoomTo(info.hit.iv.s, info.hit.iv.e);
  });
  // Curves and axis: drag to pan, click to seek.
  for (const cv of [cvCurves, cvAxis]) {
    cv.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0) return;
      cv.setPointerCapture(ev.pointerId);
      const [x] = localXY(ev, cv);
      W.pan = { x0: x, last: x, moved: false };
    });
    cv.addEventListener('pointermove', (ev) => {
      const [x, y] = localXY(ev, cv);
      if (!W.pan) { if (cv === cvCurves) hoverAt(ev, x, y, 'curves'); return; }
      if (!W.pan.moved && Math.abs(x - W.pan.x0) < DRAG_THRESHOLD_PX) return;
      W.pan.moved = true;
      panBy(-(x - W.pan.last) * (W.view.t1 - W.view.t0) / plotW());
      W.pan.last = x;
    });
    cv.addEventListener('pointerup', (ev) => {
      const p = W.pan; W.pan = null;
      if (p && !p.moved) { const [x] = localXY(ev, cv); if (x >= GUTTER) seekTo(snap(tOf(x), true)); }
    });
    cv.addEventListener('pointerleave', () => { tooltip.hidden = true; });
  }
  // Overview: click or drag to move the visible window.
  cvOverview.addEventListener('pointerdown', (ev) => {
    cvOverview.setPointerCapture(ev.pointerId);
    W.ovDrag = true; overviewTo(ev);
  });
  cvOverview.addEventListener('pointermove', (ev) => { if (W.ovDrag) overviewTo(ev); });
  cvOverview.addEventListener('pointerup', () => { W.ovDrag = false; });
  function overviewTo(ev) {
    const [x] = localXY(ev, cvOverview);
    const t = ((x - GUTTER) / plotW()) * W.duration;
    const span = W.view.t1 - W.view.t0;
    W.view.t0 = t - span / 2; W.view.t1 = t + span / 2;
    clampView(); drawTimeline(); saveView();
  }
  tlBody.addEventListener('wheel', (ev) => {
    if (!W.loaded) return;
    ev.preventDefault();
    tooltip.hidden = true;
    const [x] = localXY(ev, tlBody);
    if (x < GUTTER && lanesBox.contains(ev.target) && lanesBox.scrollHeight > lanesBox.clientHeight) {
      lanesBox.scrollTop += ev.deltaY;  // over the class names: scroll the lanes
      return;
    }
    const horizontal = ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY);
    if (horizontal) panBy(((ev.shiftKey ? ev.deltaY : ev.deltaX) / plotW()) * (W.view.t1 - W.view.t0));
    else zoomAt(clamp(tOf(Math.max(x, GUTTER)), 0, W.duration), Math.exp(ev.deltaY * 0.0015));
  }, { passive: false });
  function hoverAt(ev, x, y, where) {
    if (x < GUTTER) { tooltip.hidden = true; return; }
    const t = clamp(tOf(x), 0, W.duration);
    const lines = [fmtTime(t, W.fps)];
    if (where === 'curves') {
      const c = W.classes[W.view.shown];
      const i = Math.min(W.times.length - 1, lowerBound(W.times, t));
      if (c && i >= 0) {
        const f = (v) => (Number.isFinite(v) ? v.toFixed(3) : 'missing');
        lines.push(`${c.name}: start ${f(c.start[i])} · end ${f(c.end[i])} · actionness ${f(c.actionness[i])}`);
      }
    } else {
      const info = laneHit(x, y);
      if (info && info.hit) {
        const iv = info.hit.iv;
        lines.push(`${W.classes[iv.cls].name} ${fmtTime(iv.s, W.fps)} → ${fmtTime(iv.e, W.fps)}`,
          `${iv.human ? 'edited by a person' : `score ${iv.score.toFixed(3)}`} · ${iv.state}`);
        cvLanes.style.cursor = info.hit.part === 'body' ? 'grab' : 'ew-resize';
      } else cvLanes.style.cursor = info ? 'crosshair' : 'default';
    }
    tooltipText(ev, lines.join('\n'));
  }
  function tooltipText(ev, text) {
    if (!text) { tooltip.hidden = true; return; }
    tooltip.textContent = text;
    tooltip.hidden = false;
    const [x, y] = localXY(ev, tlBody);
    tooltip.style.transform = `translate(${clamp(x + 12, 0, width - 260)}px, ${Math.max(0, y - 46)}px)`;
  }

  // ---- buttons and menus (one delegated listener) ----
  root.addEventListener('click', (ev) => {
    const btn = ev.target.closest('[data-act]');
    if (!btn || !root.contains(btn)) return;
    act(btn.dataset.act);
    if (btn.tagName === 'BUTTON') btn.blur(); // focus goes back to the page, so keys keep working
  });
  function act(name) {
    const iv = selectedIv();
    switch (name) {
      case 'play': togglePlay(); break;
      case 'frame-': frameStep(-1, false); break;
      case 'frame+': frameStep(1, false); break;
      case 'jump-start': if (iv) seekTo(iv.s); else needSelection(); break;
      case 'jump-end': if (iv) seekTo(iv.e); else needSelection(); break;
      case 'undo': undo(); break;
      case 'redo': redo(); break;
      case 'accept': if (iv) setState([iv.id], 'accepted', 'accept'); else needSelection(); break;
      case 'reject': if (iv) setState([iv.id], 'rejected', 'reject'); else needSelection(); break;
      case 'split': split(); break;
      case 'merge': merge(); break;
      case 'delete': remove(); break;
      case 'accept-above': acceptAbove(); break;
      case 'help': toggleHelp(); break;
      case 'zoom-in': zoomAt(currentZoomCentre(), 0.5); break;
      case 'zoom-out': zoomAt(currentZoomCentre(), 2); break;
      case 'zoom-fit': W.view.t0 = 0; W.view.t1 = W.duration; clampView(); drawTimeline(); saveView(); break;
      case 'zoom-sel': if (iv) zoomTo(iv.s, iv.e); else needSelection(); break;
      case 'params': paramsBox.hidden = !paramsBox.hidden; break;
      case 'prev-video': case 'next-video': stepVideo(name === 'prev-video' ? -1 : 1); break;
      case 'next-unreviewed': nextUnreviewed(); break;
      case 'mark-done': markDone(); break;
      default: break;
    }
    renderToggles();
  }
  function currentZoomCentre() {
    const t = video.currentTime || 0;
    return t >= W.view.t0 && t <= W.view.t1 ? t : (W.view.t0 + W.view.t1) / 2;
  }
  loopBtn.addEventListener('click', () => { W.view.loop = !W.view.loop; renderToggles(); saveView(); });
  // A menu gives the keys back once chosen from: the shortcuts work again at once.
  root.addEventListener('change', (ev) => {
    if (ev.target.tagName === 'SELECT' && !ev.target.classList.contains('zw-cell-input')) ev.target.blur();
  });
  speedSel.addEventListener('change', () => setSpeed(Number(speedSel.value)));
  thresh.addEventListener('change', savePrefs);
  setSel.addEventListener('change', () => setSet(setSel.value));
  hideRej.addEventListener('change', () => { W.view.hideRejected = hideRej.checked; W.dirty = true; renderAll(); saveView(); });
  shownSel.addEventListener('change', () => { W.view.shown = Number(shownSel.value); scrollLaneOf(W.view.shown); drawTimeline(); renderCounts(); saveView(); });
  function fillClassMenus() {
    shownSel.replaceChildren(...W.classes.map((c, k) => h('option', { value: k, text: c.name, selected: k === W.view.shown })));
  }

  // ---- the player ----
  function tick() {
    if (video.paused) { W.ticking = false; renderToggles(); return; }
    const t = video.currentTime;
    const iv = selectedIv();
    if (W.view.loop && iv && (t >= iv.e || t < iv.s - 0.5)) video.currentTime = iv.s;
    updateTime(t);
    const span = W.view.t1 - W.view.t0;
    if (t > W.view.t1 || t < W.view.t0) { W.view.t0 = t - span * 0.1; W.view.t1 = W.view.t0 + span; clampView(); drawTimeline(); }
    else { placePlayhead(); }
    requestAnimationFrame(tick);
  }
  video.addEventListener('play', () => { renderToggles(); if (!W.ticking) { W.ticking = true; requestAnimationFrame(tick); } });
  video.addEventListener('pause', () => { renderToggles(); updateTime(currentT()); drawTimeline(); saveView(); });
  video.addEventListener('seeked', () => { updateTime(currentT()); drawTimeline(); saveView(); });
  video.addEventListener('ratechange', () => { speedSel.value = String(video.playbackRate); });
  video.addEventListener('error', () => { if (W.videoUrl) showNotice('The video cannot be played in this browser (the intervals and curves still work); an H.264 MP4 copy of it plays in every browser.', 'warn'); });
  video.addEventListener('keydown', (ev) => { if ([' ', 'ArrowLeft', 'ArrowRight'].includes(ev.key)) ev.preventDefault(); });

  // ---- keys ----
  function onKey(ev) {
    // page.js calls this only when the cursor is not in a text field or other control.
    if (!W.loaded || main.hidden || root.offsetParent === null) return false;
    tooltip.hidden = true;
    const k = ev.key, mod = ev.ctrlKey || ev.metaKey;
    if (mod && (k === 'z' || k === 'Z')) { if (ev.shiftKey) redo(); else undo(); return true; }
    if (mod && (k === 'y' || k === 'Y')) { redo(); return true; }
    if (mod || ev.altKey) return false;
    const iv = selectedIv();
    switch (k) {
      case ' ': togglePlay(); break;
      case 'ArrowLeft': frameStep(-1, ev.shiftKey); break;
      case 'ArrowRight': frameStep(1, ev.shiftKey); break;
      case '<': case ',': speedStep(-1); break;
      case '>': case '.': speedStep(1); break;
      case 'Home': act('jump-start'); break;
      case 'End': act('jump-end'); break;
      case 'l': W.view.loop = !W.view.loop; renderToggles(); saveView(); showNotice(W.view.loop ? 'Looping the selected interval.' : 'Loop off.', 'info'); break;
      case 'n': step(1); break;
      case 'N': nextUnreviewed(); break;
      case 'p': step(-1); break;
      case 'u': step(1, true); break;
      case 'U': step(-1, true); break;
      case 'a': act('accept'); break;
      case 'r': act('reject'); break;
      case '[': nudge('start', -1); break;
      case ']': nudge('start', 1); break;
      case '{': nudge('end', -1); break;
      case '}': nudge('end', 1); break;
      case 'b': if (iv) setEdge(iv.id, 'start', playheadFrame(), true); else needSelection(); break;
      case 'e': if (iv) setEdge(iv.id, 'end', playheadFrame(), true); else needSelection(); break;
      case 's': split(); break;
      case 'm': merge(); break;
      case 'Delete': case 'Backspace': remove(); break;
      case 'i': insertAtPlayhead(); break;
      case 'c': W.view.shown = (W.view.shown + 1) % Math.max(1, W.classes.length); shownSel.value = String(W.view.shown); scrollLaneOf(W.view.shown); drawTimeline(); renderCounts(); saveView(); break;
      case '+': case '=': act('zoom-in'); break;
      case '-': case '_': act('zoom-out'); break;
      case '0': act('zoom-fit'); break;
      case 'z': act('zoom-sel'); break;
      case 'v': setSet(W.view.set === 'review' ? 'all' : 'review'); break;
      case 'h': hideRej.checked = !hideRej.checked; W.view.hideRejected = hideRej.checked; W.dirty = true; renderAll(); break;
      case '?': toggleHelp(); break;
      case 'Escape': if (!help.hidden) toggleHelp(false); else select(null, { seek: null }); break;
      default:
        if (/^[1-9]$/.test(k)) { if (iv) changeClass(iv.id, Number(k) - 1); else needSelection(); break; }
        return false;
    }
    return true;
  }

  // ---- latency probe: input event -> next painted frame (read by the benchmark; cheap) ----
  // Registered before any handler (capture, on the document), so its animation-frame callback
  // runs in the same frame as the redraw the handler asks for; the timeout fires after that paint.
  function probe(ev) {
    if (!W.loaded || root.offsetParent === null) return;
    if (ev.type !== 'keydown' && !root.contains(ev.target)) return;
    const t = ev.timeStamp;
    requestAnimationFrame(() => setTimeout(() => {
      W.latencies.push({ type: ev.type, key: ev.key || '', ms: performance.now() - t });
      if (W.latencies.length > LATENCY_KEEP) W.latencies.shift();
    }, 0));
  }
  for (const type of ['pointerdown', 'pointerup', 'wheel', 'keydown']) document.addEventListener(type, probe, { capture: true, passive: true });

  // ---- what tests and benchmarks may read (window.zealWorkspace) ----
  function expose() {
    if (window.zealWorkspace && window.zealWorkspace.__W === W) return;
    const seen = (iv) => ({ ...toDict(iv), visible: ivVisible(iv), version: iv.v });  // an interval as a test reads it
    window.zealWorkspace = {
      __W: W,
      ready: () => W.loaded && !!W.data, video: () => W.video, videos: () => W.videos.slice(), open: (id) => openVideo(id), rev: () => W.rev,
      pending: () => W.pending.length, saveState: () => W.saveState,
      flush, reload: () => load('reload'), latencies: () => W.latencies.slice(),
      firstPaintMs: () => W.firstPaintMs, reproposeMs: () => W.reproposeMs, requests: () => W.requests,
      view: () => ({ ...W.view, duration: W.duration, fps: W.fps, times: W.times.length, playhead: video.currentTime,
        paused: video.paused, rate: video.playbackRate }),
      intervals: () => Array.from(W.ivs.values(), seen),
      interval: (id) => (W.ivs.has(id) ? seen(W.ivs.get(id)) : null),
      visibleIds: () => W.visible.map((iv) => iv.id),
      counts,
      geometry: () => ({ gutter: GUTTER, plotW: plotW(), lanes: W.geo ? W.geo.lanes : [], rowH: W.geo ? W.geo.rowH : 0, scroll: lanesBox.scrollTop }),
      xOf: (t) => xOf(t),
      laneY: (id) => { const iv = W.ivs.get(id); if (!iv || !W.geo) return null; const lane = W.geo.lanes[iv.cls]; return lane.y + (iv.row || 0) * W.geo.rowH + W.geo.rowH / 2 - lanesBox.scrollTop; },  // on the canvas
      undoDepth: () => W.undo.length, redoDepth: () => W.redo.length,
      // milliseconds of one full redraw of the timeline (synchronous), for profiling
      drawMs: () => { const t = performance.now(); drawNow(); return performance.now() - t; },
      listMs: () => { const t = performance.now(); W.dirty = true; renderAll(); return performance.now() - t; },
    };
  }

  // ---- start ----
  try { W.client = sessionStorage.getItem('zeal-client'); } catch (err) { W.client = null; }
  if (!W.client) { W.client = `c${randomHex(12)}`; try { sessionStorage.setItem('zeal-client', W.client); } catch (err) { /* private mode */ } }
  // The value of the component names a video to open (after a first run); otherwise the page
  // reopens the video this browser had open.
  function adopt(value) {
    let sig = {};
    try { sig = JSON.parse(value || '{}') || {}; } catch (err) { sig = {}; }
    let vid = sig.video || null;
    if (!vid) { try { vid = localStorage.getItem('zeal-open-video'); } catch (err) { vid = null; } }
    switchTo(vid);
    // The video on screen: its result is fetched again only if it changed (the poll may have taken it already).
    if (W.loaded && vid === W.loadedVideo) lookAtVideos(); else load('reload');
  }
  function switchTo(vid) {
    if (vid === W.video && W.loaded) return;
    W.video = vid;
    try { if (vid) localStorage.setItem('zeal-open-video', vid); } catch (err) { /* no storage */ }
    // The page's handlers (score this video, export it) read the open video from a hidden field.
    const box = document.querySelector('#zeal-current textarea, #zeal-current input');
    if (box) { box.value = vid || ''; box.dispatchEvent(new Event('input', { bubbles: true })); }
    try { W.pending = JSON.parse(localStorage.getItem(pendingKey()) || '[]'); } catch (err) { W.pending = []; }
    W.undo = []; W.redo = []; W.seq = 0;
  }
  // Opening another video: this one's edits reach the server first.
  async function openVideo(vid) {
    if (!vid || vid === W.video) return;
    await flush();
    video.pause();
    switchTo(vid);
    W.videoUrl = null;
    await load('reload');
  }
  watch('value', () => adopt(props.value));
  adopt(props.value);
  // The workspace takes what is left of the window below its top, so the video, the list and the
  // timeline are on screen together and only the panels scroll.
  function fit() {
    const top = root.getBoundingClientRect().top + window.scrollY;
    if (root.offsetParent === null) return;
    let hgt = Math.max(420, Math.floor(window.innerHeight - top - 8));
    root.style.height = `${hgt}px`;
    // What the page has below the workspace (Gradio's footer) must fit in the window too.
    const over = document.documentElement.scrollHeight - window.innerHeight;
    if (over > 0) { hgt = Math.max(420, hgt - over); root.style.height = `${hgt}px`; }
  }
  window.addEventListener('resize', fit);
  loadPrefs();
  let inSight = false;
  new ResizeObserver(() => {
    fit();
    // Just brought into sight (the Review tab opened): what changed meanwhile (a run that ended)
    // is asked for at once, not at the next timed look.
    const now = root.offsetParent !== null;
    if (now && !inSight) lookAtVideos();
    inSight = now;
    if (W.loaded) { layout(); drawTimeline(); renderList(); }
  }).observe(root);
  // The lanes' box settles after the tab is shown (the player's size comes later): rows follow it.
  new ResizeObserver(() => { if (W.loaded) drawTimeline(); }).observe(lanesBox);
  fit();
  window.addEventListener('beforeunload', (ev) => {
    if (W.pending.length) { persistPending(); ev.preventDefault(); ev.returnValue = ''; }
  });
  expose();
  return { onKey, W };
}

// The page's key guard (zeal_ui/page.js) hands every key press outside text fields to the
// workspace first.
const workspace = createWorkspace(element, props, reliable(server), watch);
window.__zealKeys = workspace.onKey;
