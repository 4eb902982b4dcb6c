"""The app process's garbage collector, kept out of the annotator's way.

Gradio, torch, transformers and the loaded models are half a million objects that never become
garbage, yet every full collection walks them all: ~190 ms on a 2-core machine, paid by whichever
request happens to allocate at that moment (a slider move took 410 ms instead of 170). Freezing
what is alive once the app has started, and again once the models are loaded, takes them out of
every later collection.
"""

from __future__ import annotations

import gc


def freeze_heap() -> None:
    """Collect once (nothing dead is frozen), then move every object alive now to the permanent
    generation (gc.freeze): later collections look only at what came after."""
    gc.collect()
    gc.freeze()
