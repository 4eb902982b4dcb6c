"""The package's promises: importing it is cheap, and its public names exist."""

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "open_clip", "av", "decord", "gradio", "openai", "plotly")


def test_importing_zeal_loads_no_heavy_library():
    code = "import json, sys, zeal; print(json.dumps(sorted(m for m in %r if m in sys.modules)))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_every_public_name_resolves():
    import zeal

    missing = [name for name in zeal.__all__ if not hasattr(zeal, name)]
    assert missing == []
    assert zeal.ZealPipeline.__module__ == "zeal.pipeline" and "csv" in zeal.FORMATS
