() => {
  // The page script of the ZEAL app: Gradio has no Python API to seek a video or to read a plotly
  // click, so this script (1) seeks the player when a chart point or band is clicked, (2) passes
  // the click and keyboard commands to Python through hidden text boxes, (3) keeps the play head
  // time in a hidden box for "add interval at play head".
  if (window.__zealReady) return;
  window.__zealReady = true;
  const q = (sel) => document.querySelector(sel);
  const player = () => q('#zeal-video video');
  const nonce = () => Math.random().toString(36).slice(2, 10);
  const setBox = (id, value) => {
    const el = q(`#${id} textarea, #${id} input`);
    if (!el) return;
    el.value = value;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  };
  window.zealSeek = (t) => {
    const v = player();
    t = Number(t);
    if (v && Number.isFinite(t)) v.currentTime = Math.max(0, t);
  };
  const bindCharts = () => {
    document.querySelectorAll('#zeal-chart .js-plotly-plot, #zeal-overview .js-plotly-plot').forEach((el) => {
      if (el.__zealBound || typeof el.on !== 'function') return;
      el.__zealBound = true;
      el.on('plotly_click', (ev) => {
        const pts = (ev && ev.points) || [];
        // An interval marker (customdata[1] = its row) wins over curve points at the same time.
        const pt = pts.find((p) => Array.isArray(p.customdata) && Number(p.customdata[1]) >= 0) || pts[0];
        if (!pt) return;
        const cd = pt.customdata;
        const t = Array.isArray(cd) ? Number(cd[0]) : Number(pt.x);
        const row = Array.isArray(cd) && cd.length > 1 ? Number(cd[1]) : -1;
        if (!Number.isFinite(t)) return;
        window.zealSeek(t);
        setBox('zeal-click', `${t}|${row}|${nonce()}`);
      });
    });
    const v = player();
    if (v && !v.__zealBound) {
      v.__zealBound = true;
      const report = () => setBox('zeal-playhead', v.currentTime.toFixed(3));
      ['timeupdate', 'seeked', 'pause'].forEach((name) => v.addEventListener(name, report));
    }
  };
  setInterval(bindCharts, 600);
  const COMMANDS = { n: 'next', p: 'prev', a: 'accept', r: 'reject', '[': 'start-', ']': 'start+',
                     '{': 'end-', '}': 'end+', i: 'insert' };
  document.addEventListener('keydown', (e) => {
    const t = e.target || {};
    const tag = (t.tagName || '').toLowerCase();
    if (['input', 'textarea', 'select', 'button'].includes(tag) || t.isContentEditable) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === ' ') {
      const v = player();
      if (!v) return;
      e.preventDefault();
      if (v.paused) v.play(); else v.pause();
      return;
    }
    const cmd = COMMANDS[e.key];
    if (!cmd) return;
    e.preventDefault();
    const v = player();
    setBox('zeal-key', `${cmd}|${v ? v.currentTime.toFixed(3) : ''}|${nonce()}`);
  });
}
