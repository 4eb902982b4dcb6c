"""Helpers shared by the benchmark scripts: medians of timed runs, peak resident memory of a child
process, generated test clips, tiny models built once, the machine description, markdown tables.

Everything generated lives in benchmarks/out/ (git-ignored) and is reused by later runs.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "benchmarks" / "out"
MODELS_DIR = OUT_DIR / "models"

RSS_POLL_S = 0.05   # /proc polling period for a child's resident memory
X264_PRESET = "veryfast"  # realistic long-GOP H.264 (B-frames, CABAC, 250-frame GOP), quick to encode


def median_times(runs: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1,
                 sync: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Wall seconds of each callable over `repeats` rounds; returns every run (take the median).

    The callables take turns within each round, so a load that comes and goes on a shared machine
    hits all of them alike and the ratios between them stay fair. `sync` (e.g. cuda.synchronize)
    is called before and after each timed call.
    """
    for _ in range(warmup):
        for run in runs.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            if sync:
                sync()
            t0 = time.perf_counter()
            run()
            if sync:
                sync()
            times[name].append(time.perf_counter() - t0)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


# ------------------------------------------------------------------------------------------------
# Test clips


def make_clip(seconds: float, width: int = 640, height: int = 360, rate: int = 30) -> Path:
    """A testsrc2 H.264 clip of this size, generated with the ffmpeg command on first use. -> path."""
    path = OUT_DIR / f"testsrc2_{width}x{height}_{rate}fps_{int(seconds)}s.mp4"
    if path.exists():
        return path
    ffmpeg = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
    if not Path(ffmpeg).exists():
        raise SystemExit("the benchmarks need the `ffmpeg` command to generate their clips (apt install ffmpeg)")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    print(f"generating {path.name} ({seconds:.0f} s of {width}x{height} at {rate} fps) ...",
          file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    subprocess.run([ffmpeg, "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={width}x{height}:rate={rate}", "-t", str(seconds), "-c:v", "libx264",
                    "-preset", X264_PRESET, "-pix_fmt", "yuv420p", str(tmp)], check=True)
    tmp.rename(path)
    print(f"  done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return path


def make_long_clip(seconds: int, rate: int = 2) -> Path:
    """A small H.264 clip of this length (192x108 at `rate` frames per second, a moving block), made
    with PyAV once; long videos for the app's benchmarks, cheap to decode."""
    import av
    import numpy as np

    path = OUT_DIR / f"long_{seconds}s_192x108_{rate}fps.mp4"
    if path.exists():
        return path
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    w, h = 192, 108
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as c:
        s = c.add_stream("libx264", rate=rate, options={"preset": "veryfast", "g": "240"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(seconds * rate):
            planes = np.full((h * 3 // 2, w), 128, dtype=np.uint8)
            planes[:h] = 60 + int(60 * (1 + np.sin(i / 37.0)))
            x = (i * 3) % (w - 20)
            planes[20:60, x:x + 20] = 230
            for packet in s.encode(av.VideoFrame.from_ndarray(planes, format="yuv420p")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    tmp.rename(path)
    return path


# ------------------------------------------------------------------------------------------------
# Tiny models (random weights, real architectures), built once into benchmarks/out/models/


def tiny():
    """The tests' tiny models (tests/tiny_models.py: CLIP at once, each LVLM on first use), built once
    into benchmarks/out/models and reused by later runs."""
    from tests.tiny_models import TinyModels

    return TinyModels(MODELS_DIR)


# ------------------------------------------------------------------------------------------------
# Peak memory of a child process


def _tree_rss_kb(pid: int) -> int:
    """Resident memory (kB) of a process and its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue  # the process ended between two reads
    return total


def run_child(cmd: list[str], timeout_s: float | None = None) -> tuple[float, float, str]:
    """Run cmd; return (wall seconds, peak RSS MB of its process tree, stdout).

    The peak is the larger of /proc polling over the whole tree and the kernel's own maximum for
    the largest single process (wait4 ru_maxrss), so a short spike between two polls still counts.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)  # `-m benchmarks...` needs the root
    peak_kb = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak_kb
        while not done.is_set():
            peak_kb = max(peak_kb, _tree_rss_kb(proc.pid))
            done.wait(RSS_POLL_S)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    timer = threading.Timer(timeout_s, proc.kill) if timeout_s else None
    if timer:
        timer.start()
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    if timer:
        timer.cancel()
    wall = time.perf_counter() - start
    done.set()
    poller.join()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed with exit code {code}")
    peak_kb = max(peak_kb, usage.ru_maxrss)  # ru_maxrss is in kB on Linux
    return wall, peak_kb / 1024.0, out


def self_rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB, from /proc/self/status."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


# ------------------------------------------------------------------------------------------------
# Machine description and tables


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, with its family/model numbers (virtual machines often
    report a bare "AMD EPYC"; family 26 is Zen 5, for instance)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
                if not line.strip():
                    break  # the first processor is enough
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"
    except OSError:
        return "unknown"


def machine() -> dict[str, Any]:
    """CPU model, cores, architecture, torch version and thread count, CUDA device (or None), load."""
    info: dict[str, Any] = {"cpu": cpu_model(), "cores": os.cpu_count(), "arch": platform.machine(),
                            "python": platform.python_version(), "load": load_average()}
    try:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                    cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None)
    except ImportError:
        info.update(torch=None, torch_threads=None, cuda=None)
    return info


def machine_line(info: dict[str, Any] | None = None) -> str:
    m = info or machine()
    gpu = f"GPU {m['cuda']}" if m.get("cuda") else "no CUDA GPU"
    return (f"{m['cpu']} ({m['arch']}, {m['cores']} cores), {gpu}; torch {m.get('torch')} "
            f"({m.get('torch_threads')} threads), Python {m['python']}; load average {m['load']}")


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats to `digits` significant places, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"
    return str(value)


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """Fixed-width text table; each column as wide as its widest cell."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c).replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)
