() => {
  // The page script of the ZEAL app (the review workspace has its own, workspace.js). One key
  // guard for the whole page: Space never presses a focused button (in the workspace it plays the
  // video), no key presses a button that starts work (a run, an export, a CLIP or LLM call: class
  // zeal-mouse-only), and the workspace gets its shortcuts whenever the cursor is not in a text field.
  if (window.__zealPageReady) return;
  window.__zealPageReady = true;
  const isTextField = (el) => {
    if (!el) return false;
    const tag = (el.tagName || '').toLowerCase();
    if (tag === 'textarea' || tag === 'select' || el.isContentEditable) return true;
    if (tag !== 'input') return false;
    // a slider keeps its arrow, Home and End keys
    return !['checkbox', 'radio', 'button', 'submit', 'color', 'file'].includes((el.type || '').toLowerCase());
  };
  // Where the browser's own undo belongs: a field that takes typing. Elsewhere (a menu, a slider)
  // Ctrl+Z is the workspace's undo, never the browser's undo of some other field's text.
  const takesTyping = (el) => isTextField(el) && !['select'].includes((el.tagName || '').toLowerCase()) &&
    (el.type || '').toLowerCase() !== 'range';
  const isUndoKey = (ev) => (ev.ctrlKey || ev.metaKey) && ['z', 'y'].includes((ev.key || '').toLowerCase());
  document.addEventListener('keydown', (ev) => {
    const t = ev.target;
    if (isTextField(t) && !(isUndoKey(ev) && !takesTyping(t))) return;
    const onButton = t && t.closest && t.closest('button, [role="button"], a[href], summary');
    const heavy = t && t.closest && t.closest('.zeal-mouse-only');
    if (onButton && (ev.key === ' ' || (ev.key === 'Enter' && heavy))) {
      ev.preventDefault();
      ev.stopPropagation();
      if (t.blur) t.blur();
    }
    if (window.__zealKeys && window.__zealKeys(ev)) { ev.preventDefault(); ev.stopPropagation(); }
  }, true);
  // A reload comes back to the tab the annotator was on.
  document.addEventListener('click', (ev) => {
    const tab = ev.target && ev.target.closest && ev.target.closest('[role="tab"][id^="zeal-tab-"]');
    if (tab) { try { localStorage.setItem('zeal-tab', tab.id); } catch (err) { /* no storage */ } }
  }, true);
  const reopenTab = (tries) => {
    let id = null;
    try { id = localStorage.getItem('zeal-tab'); } catch (err) { return; }
    const tab = id && document.getElementById(id);
    if (tab) { if (tab.getAttribute('aria-selected') !== 'true') tab.click(); return; }
    if (id && tries > 0) setTimeout(() => reopenTab(tries - 1), 200);
  };
  reopenTab(50);
  // After a mouse click a button keeps the focus; give it back to the page so keys keep working.
  document.addEventListener('mouseup', (ev) => {
    const b = ev.target && ev.target.closest && ev.target.closest('button');
    if (b) setTimeout(() => b.blur(), 0);
  }, true);
}
