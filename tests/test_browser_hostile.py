"""User text is text, in a real headless Chromium (issue 13): a query file whose class names,
questions and descriptions are HTML and Markdown meant to load images and make live links, and a
video whose file name is an HTML tag, go through the real app: loaded on the Project tab, scored,
opened on the Review tab, quoted in the status line and in an error notice (the video comes in as
a folder of the server: Gradio's upload already strips "<" and ">" from uploaded file names). No request leaves the
page for another host, no element or attribute is made from the names (every name is shown as the
characters it is), and no script runs. Plus: the API key field is empty after a failed LLM call."""

from __future__ import annotations

import json
import shutil
from urllib.parse import urlparse

import pytest

from app_server import EXAMPLE_CLIP, start_app
from browser_support import (WAIT_MS, launch_browser, open_tab, open_video, require_browser,
                             wait_status)
from llm_server import ScriptedServer

pytestmark = pytest.mark.timeout(420)

EVIL = "evil.test"  # the host every hostile name points at; nothing may ever ask it for anything
NAMES = {
    f'<img src="http://{EVIL}/class.png">': "an image tag",
    f'<a href="http://{EVIL}/link">open me</a>': "a link",
    f"[md link](http://{EVIL}/md) ![md image](http://{EVIL}/md.png)": "Markdown",
    f"<svg onload=\"fetch('http://{EVIL}/svg')\"></svg>": "an SVG with a script",
}
QUESTIONS = {"start": f'Is <img src="http://{EVIL}/start.png"> the diver on the board?',
             "end": f"Is the diver <b onmouseover=\"fetch('http://{EVIL}/end')\">in</b> the water?",
             "description": f"A person dives into a pool. ![d](http://{EVIL}/description.png)"}
NOTICE_NAME = f'<img src="http://{EVIL}/notice.png">'  # typed as a new class: its error notice quotes it
VIDEO_NAME = "<img src=x onerror=alert(1)> clip.mp4"  # a file name cannot hold "/"
KEY = "sk-hostile-test-4c1f9e"
VIEWPORT = {"width": 1440, "height": 900}

# Every element or attribute made from a hostile name: one that would fetch (src, href, ...) or run
# (on...) what a name says. Text in a title or aria-label attribute is text, and fine.
FIND_MADE_FROM_NAMES = """(evil) => {
  const fetching = ['src', 'href', 'srcset', 'poster', 'action', 'formaction', 'xlink:href', 'style', 'background'];
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      const handler = a.name.startsWith('on') && /fetch|alert|evil/.test(a.value);
      const fetches = fetching.includes(a.name) && (a.value.includes(evil) || (el.tagName === 'IMG' && a.value === 'x'));
      if (handler || fetches) bad.push(`${el.tagName.toLowerCase()} ${a.name}="${a.value}"`);
    }
  }
  return bad;
}"""


@pytest.fixture(scope="module")
def app(tmp_path_factory, tiny):
    require_browser()
    proc = start_app(tmp_path_factory.mktemp("hostile_app"), tiny.app_flags())
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def llm():
    server = ScriptedServer()
    yield server
    server.close()


def watch(page, app) -> dict[str, list]:
    """Record (and refuse) every request for another host, every dialog and page error."""
    seen: dict[str, list] = {"elsewhere": [], "dialogs": [], "errors": []}
    here = urlparse(app.url).hostname

    def route(r):
        url = urlparse(r.request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.hostname != here:
            seen["elsewhere"].append(r.request.url)
            r.abort()
        else:
            r.continue_()

    page.route("**/*", route)
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    return seen


def field(elem_id: str) -> str:
    """The text field of a gr.Textbox (an input or, for several lines, a textarea)."""
    return f"#{elem_id} input, #{elem_id} textarea"


def shown_text(page) -> str:
    return page.evaluate("() => document.body.innerText")


def test_hostile_names_stay_text_everywhere(app, llm, tmp_path):
    from playwright.sync_api import sync_playwright

    queries = tmp_path / "hostile queries.json"
    queries.write_text(json.dumps({name: QUESTIONS for name in NAMES}), encoding="utf-8")
    folder = tmp_path / "videos"  # added as a folder of the server: uploads lose "<" and ">" in Gradio
    folder.mkdir()
    clip = folder / VIDEO_NAME
    shutil.copy(EXAMPLE_CLIP, clip)
    with sync_playwright() as p:
        browser = launch_browser(p)
        page = browser.new_page(viewport=VIEWPORT)
        seen = watch(page, app)
        page.goto(app.url)
        page.wait_for_selector("#zeal-videos .zv-head", timeout=WAIT_MS)

        # 1. Project tab: the query file, then the video
        open_tab(page, "setup")
        page.get_by_text("Load / save questions, or write them with an LLM").click()
        with page.expect_file_chooser(timeout=WAIT_MS) as chooser:
            page.click("#zeal-load-queries")
        chooser.value.set_files(str(queries))
        for name in NAMES:
            page.wait_for_function("(n) => document.querySelector('#zeal-classes').innerText.includes(n)",
                                   arg=name, timeout=WAIT_MS)
        page.fill(field("zeal-folder"), str(folder))
        page.click("#zeal-add-folder")
        wait_status(page, clip.name)
        text = shown_text(page)
        assert all(name in text for name in NAMES), "a class name is not shown as its characters"
        assert QUESTIONS["start"] in page.locator("#zeal-queries").inner_text()
        assert page.locator("#zeal-videos .zv-name").first.text_content() == VIDEO_NAME

        # 2. Review tab: the workspace with every class
        open_video(page, VIDEO_NAME, min_intervals=0)
        review = page.locator("#zeal-workspace").inner_text()
        assert sum(name in review for name in NAMES) == len(NAMES), review[:2000]
        assert page.evaluate(FIND_MADE_FROM_NAMES, EVIL) == []

        # 3. the status line quotes the file name; an error notice quotes a class
        open_tab(page, "setup")
        page.click("#zeal-run")
        page.wait_for_function("(n) => document.querySelector('#zeal-status').innerText.includes(n)",
                               arg=f"{VIDEO_NAME} is first in the scoring queue", timeout=WAIT_MS)
        assert page.locator("#zeal-status img, #zeal-status a").count() == 0
        page.click("#zeal-classes input")
        page.keyboard.type(NOTICE_NAME)
        page.keyboard.press("Enter")
        page.click("#zeal-header")
        page.wait_for_function("(n) => document.querySelector('#zeal-queries').innerText.includes(n)",
                               arg=NOTICE_NAME, timeout=WAIT_MS)
        page.click("#zeal-run")
        toast = page.locator("[data-testid='toast-body']", has_text="lack a question").first
        toast.wait_for(timeout=WAIT_MS)
        assert NOTICE_NAME in toast.inner_text()
        assert toast.locator("img, a, [src], [href]").count() == 0  # its own icons are plain SVGs

        # 4. the API key is gone from its field after a failed LLM call (here a refused key)
        llm.script = [("status", 401, "invalid api key")]
        page.fill(field("zeal-llm-url"), llm.url)
        page.fill(field("zeal-llm-model"), "m")
        page.fill(field("zeal-llm-key"), KEY)
        page.click("#zeal-llm")
        page.locator("[data-testid='toast-body']", has_text="refused the API key").first.wait_for(timeout=WAIT_MS)
        page.wait_for_function("() => document.querySelector('#zeal-llm-key input, #zeal-llm-key textarea').value === ''", timeout=WAIT_MS)
        assert llm.requests and llm.requests[-1][1]["authorization"] == f"Bearer {KEY}"  # it was used

        assert page.evaluate(FIND_MADE_FROM_NAMES, EVIL) == []
        assert KEY not in shown_text(page)
        browser.close()
    assert seen["elsewhere"] == [], seen["elsewhere"]
    assert seen["dialogs"] == [] and seen["errors"] == [], seen
