"""What the page says to the annotator: every message shown in the browser goes through here.

Two rules, one place. A message is text: Gradio renders the message of gr.Error, gr.Warning and
gr.Info as HTML, and the status lines are HTML components, so every message is HTML-escaped here
(a class named `<img src=...>` is shown as those characters, never fetched). And a message names
what the user gave, not the server's internals: a path inside the server's upload, download or
project media folders is cut to its file name.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable


def upload_folder() -> Path:
    """Where Gradio keeps uploaded files (GRADIO_TEMP_DIR, else its default under the system temp)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def without_folders(text: str, folders: Iterable[str | os.PathLike]) -> str:
    """`text` with every path inside one of `folders` cut to its last part (the file name)."""
    for folder in folders:
        for form in dict.fromkeys([str(folder), os.path.realpath(folder)]):
            form = form.rstrip("/")
            if form:
                # the folder, then any sub-folders (no spaces in the server's own folder names)
                text = re.sub(re.escape(form) + r"/(?:[^/\s'\"]+/)*", "", text)
    return text


def plain(message: object, folders: Iterable[str | os.PathLike] = (), secret: str | None = None) -> str:
    """One line of text for the page: whitespace runs joined, a secret replaced, server folders cut."""
    text = " ".join(str(message).split())
    if secret:
        text = text.replace(secret, "***")
    return without_folders(text, folders)


def as_html(message: object, folders: Iterable[str | os.PathLike] = (), secret: str | None = None) -> str:
    """The message as HTML that shows exactly its text (for gr.HTML and Gradio's notices)."""
    return html.escape(plain(message, folders, secret), quote=False)


def error(message: object, folders: Iterable[str | os.PathLike] = (), secret: str | None = None):
    """The gr.Error the page shows for `message`: one line of text (to raise)."""
    import gradio as gr

    return gr.Error(as_html(message, folders, secret))


def warning(message: object, folders: Iterable[str | os.PathLike] = ()) -> None:
    import gradio as gr

    gr.Warning(as_html(message, folders))


def info(message: object, folders: Iterable[str | os.PathLike] = ()) -> None:
    import gradio as gr

    gr.Info(as_html(message, folders))
