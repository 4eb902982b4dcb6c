// The project's list of videos (js_on_load of a gr.HTML: element, props, server, watch): status,
// scoring progress, duration and review counts per video; open one for review; score, reorder,
// mark done, remove (asks first). It asks the server for the list while it is on screen, every
// second and a half; names are shown as text, never as HTML.
const STATUS_TEXT = { new: 'not scored', queued: 'queued', scoring: 'scoring', scored: 'to review',
  'in review': 'in review', done: 'done', failed: 'failed' };

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}
function clock(t) {
  const s = Math.floor(t || 0);  // whole seconds down, as the video player shows them
  return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

const root = element.querySelector('.zv') || element;
const head = h('div', { class: 'zv-head' },
  h('strong', { text: 'Videos of the project' }), h('span', { class: 'zv-sum' }), h('span', { class: 'zv-spacer' }),
  h('button', { class: 'zv-btn zeal-mouse-only', 'data-act': 'queue-new', text: '▶ score all not scored' }),
  h('button', { class: 'zv-btn zeal-mouse-only', 'data-act': 'cancel', text: '■ stop scoring' }));
const list = h('div', { class: 'zv-list' });
const note = h('div', { class: 'zv-note', 'aria-live': 'polite' });
root.replaceChildren(head, list, note);
let videos = [];

function row(v, k) {
  const pct = Math.round((v.progress || 0) * 100);
  const c = v.counts || {};
  const status = h('span', { class: `zv-status zv-s-${v.status.replace(' ', '-')}`, title: v.message || '' },
    `${STATUS_TEXT[v.status] || v.status}${v.status === 'scoring' ? ` ${pct}%` : ''}`);
  const bar = v.status === 'scoring' ? h('span', { class: 'zv-bar' }, h('i', { style: `width:${pct}%` })) : null;
  const btn = (act, text, title, extra) => h('button', { class: `zv-btn ${extra || ''}`, 'data-act': act, 'data-id': v.id, text, title });
  return h('div', { class: `zv-row${v.missing ? ' zv-missing' : ''}`, 'data-id': v.id },
    h('span', { class: 'zv-n', text: String(k + 1) }),
    h('button', { class: 'zv-name', 'data-act': 'open', 'data-id': v.id, title: 'Open for review', text: v.name }),
    h('span', { class: 'zv-state' }, status, bar, v.missing ? h('span', { class: 'zv-warn', text: 'file missing' }) : null,
      v.status === 'failed' ? h('span', { class: 'zv-msg', text: v.message }) : null),
    h('span', { class: 'zv-dur', text: clock(v.duration) }),
    h('span', { class: 'zv-counts', title: 'unreviewed / accepted / rejected in the review set' },
      `${c.unreviewed || 0} · ${c.accepted || 0} · ${c.rejected || 0}`),
    h('span', { class: 'zv-acts' },
      v.missing ? btn('locate', 'locate…', 'Find the moved file in a folder of this machine') : null,
      btn('queue', v.status === 'new' || v.status === 'failed' ? 'score' : 'score again', 'Score it (in the background); your work stays', 'zeal-mouse-only'),
      btn('up', '↑', 'Earlier in the queue'), btn('down', '↓', 'Later in the queue'),
      btn(v.status === 'done' ? 'reopen' : 'done', v.status === 'done' ? 'reopen' : '✓ done', 'Mark it reviewed'),
      btn('remove', '✕', 'Remove it from the project (asks first)', 'zeal-mouse-only')));
}

function render() {
  list.replaceChildren(...(videos.length ? videos.map(row)
    : [h('div', { class: 'zv-empty', text: 'No video yet: upload videos or add a folder below.' })]));
  const n = (s) => videos.filter((v) => v.status === s).length;
  head.querySelector('.zv-sum').textContent = videos.length
    ? `${videos.length} · ${n('done')} done · ${n('scored') + n('in review')} to review · ${n('queued') + n('scoring')} in the queue` : '';
}

let timer = null;
let unreachable = false;
let noteTimer = null;
const NOTE_MS = 15000;
async function refresh() {
  clearTimeout(timer);
  timer = null;
  try {
    const res = await server.videos({});
    if (!res) throw new Error('no answer');
    videos = res.videos || [];
    render();
    if (unreachable) { note.textContent = ''; unreachable = false; }
  } catch (err) { note.textContent = `Cannot reach the app (${err.message}); retrying…`; unreachable = true; }
  if (root.offsetParent !== null) timer = setTimeout(refresh, 1500);
}
new IntersectionObserver(() => { if (root.offsetParent !== null && !timer) refresh(); }).observe(root);
watch('value', refresh);

async function act(action, id, extra) {
  // Gradio's client answers undefined when the app cannot be reached
  const res = (await server.video_action({ action, video: id, ...(extra || {}) })) || { error: 'The app cannot be reached: nothing changed; try again in a moment.' };
  note.textContent = res.error ? res.error : (res.message || '');
  note.className = `zv-note${res.error ? ' zv-err' : ''}`;
  // what was done is said for a while; an error stays until the next action
  clearTimeout(noteTimer);
  if (!res.error) noteTimer = setTimeout(() => { if (!unreachable) note.textContent = ''; }, NOTE_MS);
  if (res.videos) { videos = res.videos; render(); }
  refresh();
}

root.addEventListener('click', async (ev) => {
  const b = ev.target.closest('[data-act]');
  if (!b) return;
  const id = b.dataset.id, v = videos.find((x) => x.id === id);
  const name = v ? v.name : '';
  switch (b.dataset.act) {
    case 'open':
      // The workspace opens the video this browser last chose, also when it appears only now.
      try { localStorage.setItem('zeal-open-video', id); } catch (err) { /* no storage */ }
      document.querySelector('#zeal-tab-review-button')?.click();
      if (window.zealWorkspace && window.zealWorkspace.open) await window.zealWorkspace.open(id);
      break;
    case 'remove':
      if (confirm(`Remove ${name} from the project?\n\nIts result and your edits are kept in the project's removed/ folder; adding the same file again brings them back.`)) act('remove', id);
      break;
    case 'locate': {
      const folder = prompt(`Where is ${name} now? A folder on this machine (it is searched for a file of the same name, size and content):`);
      if (folder) act('locate', id, { folder });
      break;
    }
    case 'queue-new':
      for (const x of videos.filter((x) => x.status === 'new' || x.status === 'failed')) await act('queue', x.id);
      break;
    case 'cancel': act('cancel', null); break;
    default: act(b.dataset.act, id);
  }
  b.blur();
});
refresh();
