"""Decoding ahead while the models score (VideoConfig.decode_ahead), in a thread or a forked child
process (decode_in): the same results and cache as decoding in turn, bounded memory, and errors and
cancels that reach the run at once.

The decoder is the real one (zeal.video.sample on a real clip). Where a test needs a decoder that is
slow or fails midway, it wraps the real one: the real chunks come through, then the delay or error.
"""

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import zeal.pipeline as pipeline_module
from tiny_models import single_thread, tiny_config
from zeal.cache import ScoreCache
from zeal.errors import VideoError
from zeal.pipeline import Cancelled, ZealPipeline

CLIP_FILE = "tests_data_test.mp4"  # 10 s, 30 fps: 21 frames at 2 fps, 6 chunks of 4
CLASSES = ["CliffDiving", "Diving"]
CHUNK = 4
THREAD_NAME = "zeal-decode-ahead"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture
def video(data_dir):
    return str(data_dir / CLIP_FILE)


def make_config(tiny, cache_dir, decode_ahead, chunk=CHUNK, decode_in="thread"):
    """decode_in "thread" by default: the wrapped decoder below is seen by a thread, not by a child."""
    return tiny_config(tiny, cache_dir, "qwen2_vl", lvlm={"frames_per_batch": 2},
                       video={"fps": 2.0, "max_side": 128, "chunk": chunk, "decode_ahead": decode_ahead,
                              "decode_in": decode_in})


class WrappedVideo:
    """The zeal.video module as the pipeline sees it, with sample() wrapped: it counts the chunks the
    real decoder produced (in a file, so that a decoding child's count is seen too) and the decoder
    threads it was asked for, and before chunk number `at` it sleeps `delay_s` or raises `error`."""

    def __init__(self, real, log: Path, at=None, delay_s=0.0, error=None):
        self._real, self.log, self.at, self.delay_s, self.error = real, log, at, delay_s, error
        self.threads = []

    def __getattr__(self, name):
        return getattr(self._real, name)

    @property
    def produced(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def sample(self, *args, **kwargs):
        self.threads.append(kwargs.get("threads"))
        for index, chunk in enumerate(self._real.sample(*args, **kwargs)):
            if index == self.at:
                time.sleep(self.delay_s)
                if self.error is not None:
                    raise self.error
            with self.log.open("a") as f:
                f.write(".")
            yield chunk


@pytest.fixture
def wrapped(monkeypatch, tmp_path):
    def install(**kwargs):
        video = WrappedVideo(pipeline_module.video_io, tmp_path / "produced.log", **kwargs)
        monkeypatch.setattr(pipeline_module, "video_io", video)
        return video
    return install


def cache_entries(cache_dir):
    cache = ScoreCache(cache_dir)
    return {p.stem: cache.get(p.stem) for p in Path(cache_dir).rglob("*.npz")}


def decoder_threads():
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def decoder_children():
    return [p for p in multiprocessing.active_children() if p.name == "zeal-decode"]


def wait_for_no_child(timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while decoder_children() and time.monotonic() < deadline:
        time.sleep(0.02)
    return decoder_children()


def wait_for_no_decoder(timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while decoder_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return decoder_threads()


@pytest.mark.parametrize("decode_in", ["thread", "process"])
def test_decoding_ahead_gives_exactly_the_results_and_cache_of_decoding_in_turn(tiny, video, tmp_path, decode_in):
    in_turn = ZealPipeline.from_config(make_config(tiny, tmp_path / "in_turn", 0)).run(
        video, classes=CLASSES, known_classes=True)
    ahead = ZealPipeline.from_config(make_config(tiny, tmp_path / "ahead", 2, decode_in=decode_in)).run(
        video, classes=CLASSES, known_classes=True)
    np.testing.assert_array_equal(ahead.times_s, in_turn.times_s)
    for name in CLASSES:
        a, b = ahead.classes[name], in_turn.classes[name]
        for field in ("start_raw", "end_raw", "actionness"):
            np.testing.assert_array_equal(getattr(a.curves, field), getattr(b.curves, field))
        assert a.intervals == b.intervals
    assert ahead.run.run_key == in_turn.run.run_key  # a speed setting: the same run
    want, got = cache_entries(tmp_path / "in_turn"), cache_entries(tmp_path / "ahead")
    assert set(got) == set(want) and len(got) >= 5  # 4 curves, actionness, CLIP frame embeddings
    for key, entry in want.items():
        assert got[key].complete and entry.complete
        np.testing.assert_array_equal(got[key].values, entry.values)
        np.testing.assert_array_equal(got[key].times_s, entry.times_s)
    assert wait_for_no_decoder() == [] and wait_for_no_child() == []


@pytest.mark.parametrize("decode_in", ["thread", "process"])
def test_the_decoder_runs_at_most_decode_ahead_chunks_ahead(tiny, video, tmp_path, wrapped, decode_in):
    """A slow scorer: the decoder fills the queue (or, in a child, the shared slots) and waits; it never
    holds more than decode_ahead chunks plus the one it is handing over (memory stays flat however
    long the video)."""
    depth = 2
    source = wrapped()
    lead = []

    def slow_progress(stage, done, total):
        if stage == "scoring frames":
            time.sleep(0.3)  # the decoder has time to run as far ahead as it may
            lead.append(source.produced - -(-done // CHUNK))

    ZealPipeline.from_config(make_config(tiny, tmp_path / "cache", depth, decode_in=decode_in)).run(
        video, classes=CLASSES, known_classes=True, progress=slow_progress)
    assert source.produced == 6
    assert max(lead) == depth + 1  # it did decode ahead, and no further
    assert all(x <= depth + 1 for x in lead)


def test_a_decoding_error_midway_reaches_the_run_with_the_chunks_before_it_cached(tiny, video, tmp_path, wrapped):
    source = wrapped(at=2, error=VideoError("cannot decode tests_data_test.mp4 at 4.0 s: damaged packet"))
    with pytest.raises(VideoError, match="damaged packet"):
        ZealPipeline.from_config(make_config(tiny, tmp_path / "cache", 2)).run(
            video, classes=CLASSES, known_classes=True)
    assert source.produced == 2
    entries = cache_entries(tmp_path / "cache")
    curves = [e for e in entries.values() if e is not None and e.values.ndim == 1]
    assert curves and all(len(e) == 2 * CHUNK and not e.complete for e in curves)  # both chunks, as in turn
    assert wait_for_no_decoder() == []


def test_cancel_reaches_the_run_at_once_while_the_decoder_is_slow(tiny, video, tmp_path, wrapped):
    wrapped(at=2, delay_s=3.0)  # the third chunk takes 3 s to decode
    state = {"frames": 0, "since": None}

    def progress(stage, done, total):
        if stage == "scoring frames":
            state["frames"] = done

    def cancel():
        if state["frames"] >= 2 * CHUNK and state["since"] is None:
            state["since"] = time.monotonic()
        return state["since"] is not None

    with pytest.raises(Cancelled):
        ZealPipeline.from_config(make_config(tiny, tmp_path / "cache", 2)).run(
            video, classes=CLASSES, known_classes=True, progress=progress, cancel=cancel)
    waited = time.monotonic() - state["since"]
    assert waited < 1.0, f"the run took {waited:.1f} s to stop after cancel; the decoder was busy for 3 s"
    curves = [e for e in cache_entries(tmp_path / "cache").values() if e is not None and e.values.ndim == 1]
    assert curves and all(len(e) == 2 * CHUNK for e in curves)
    assert wait_for_no_decoder() == []  # it ends by itself after the chunk it was on


def test_a_scorer_error_stops_the_decoder(tiny, video, tmp_path, wrapped):
    source = wrapped()
    pipe = ZealPipeline.from_config(make_config(tiny, tmp_path / "cache", 2, chunk=1))  # 21 chunks
    real = pipe.lvlm

    class FailingSecondCall:
        model_id, stats, calls = real.model_id, real.stats, 0

        def p_yes(self, images, texts):
            FailingSecondCall.calls += 1
            if FailingSecondCall.calls == 2:
                raise RuntimeError("the GPU fell off the bus")
            return real.p_yes(images, texts)

    pipe._lvlm = FailingSecondCall()
    with pytest.raises(RuntimeError, match="fell off"):
        pipe.run(video, classes=CLASSES, known_classes=True)
    assert wait_for_no_decoder() == []
    # two chunks taken, two in the queue, one in hand at most: not the whole video
    assert source.produced <= 2 + 2 + 1


def test_the_decoding_child_sends_the_stretches_it_skipped(tiny, tmp_path):
    """A clip with one damaged packet: the child decodes around it and its skipped stretches reach the
    result as the thread's do."""
    from media_factory import flip_nal_length, write_h264

    clip = str(flip_nal_length(write_h264(tmp_path / "clean.mp4", 250), tmp_path / "damaged.mp4", at_s=6.0))
    runs = {mode: ZealPipeline.from_config(make_config(tiny, tmp_path / mode, 2, decode_in=mode)).run(
        clip, classes=CLASSES, known_classes=True) for mode in ("thread", "process")}
    assert runs["process"].run.skipped and runs["process"].run.skipped == runs["thread"].run.skipped
    np.testing.assert_array_equal(runs["process"].times_s, runs["thread"].times_s)


def test_a_decoding_child_that_dies_is_a_clear_error_and_cancel_ends_it(tiny, video, tmp_path):
    state = {"killed": False}

    def progress(stage, done, total):
        if stage == "scoring frames" and not state["killed"]:
            (child,) = decoder_children()
            os.kill(child.pid, signal.SIGKILL)  # what a decoder crash on a damaged file looks like
            state["killed"] = True

    with pytest.raises(VideoError, match="decoder process ended with code -9"):
        ZealPipeline.from_config(make_config(tiny, tmp_path / "a", 2, chunk=1, decode_in="process")).run(
            video, classes=CLASSES, known_classes=True, progress=progress)
    with pytest.raises(Cancelled):
        ZealPipeline.from_config(make_config(tiny, tmp_path / "b", 1, chunk=1, decode_in="process")).run(
            video, classes=CLASSES, known_classes=True, cancel=lambda: bool(decoder_children()))
    assert wait_for_no_child() == []


def test_without_a_child_process_a_thread_decodes(tiny, video, tmp_path, monkeypatch):
    """fork refused (memory, process limits): the run is the same, decoded in a thread."""
    def refuse(self):
        raise OSError(12, "Cannot allocate memory")

    expected = ZealPipeline.from_config(make_config(tiny, tmp_path / "a", 0)).run(video, classes=CLASSES, known_classes=True)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)
    got = ZealPipeline.from_config(make_config(tiny, tmp_path / "b", 2, decode_in="process")).run(
        video, classes=CLASSES, known_classes=True)
    np.testing.assert_array_equal(got.times_s, expected.times_s)
    assert [c.intervals for c in got.classes.values()] == [c.intervals for c in expected.classes.values()]
    assert wait_for_no_decoder() == []


ORPHAN_SCRIPT = """
import os, sys
from zeal import video as video_io
from zeal.decode_ahead import DecodeInProcess
path = sys.argv[1]
info = video_io.probe(path)
sampling = {"fps": 10.0, "max_side": None, "chunk": 4, "backend": "pyav", "info": info}  # chunks larger than a pipe holds
ahead = DecodeInProcess(lambda into: video_io.sample(path, skipped=into, **sampling), 1, None, [], path,
                        (4, *video_io.image_shape(info, None)) if sys.argv[2] == "shared" else None)
chunks = iter(ahead.__enter__())
next(chunks)  # the child decodes on, into a queue nobody will empty
print(ahead._process.pid, flush=True)
os.kill(os.getpid(), 9)  # the run is killed: no clean-up of any kind
"""


@pytest.mark.parametrize("handover", ["pipe", "shared"])
def test_a_decoding_child_whose_run_was_killed_ends(tmp_path, handover):
    """SIGKILL of the run (the app killed while scoring): its decoding child must not live on, also
    when what it has decoded is more than the pipe to its dead parent holds, or when it waits for a
    free slot of shared memory."""
    import subprocess
    import sys

    from media_factory import write_clip

    clip = write_clip(tmp_path / "wide.mp4", 120, size=(640, 360), rate=25)
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", ORPHAN_SCRIPT, str(clip), handover], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return  # gone
        if state in ("Z", "X"):  # ended (a zombie until its new parent reaps it)
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"the decoding child {pid} outlived its killed run by 20 s")


def test_the_decoder_leaves_the_models_on_this_cpu_their_cores(tiny, video, tmp_path, wrapped):
    """Beside models on this CPU the decoder gets the cores torch leaves free (at least one); decoding
    in turn, or with a user's VideoConfig.decode_threads, it gets what was asked (0: FFmpeg's choice)."""
    import torch

    cores = len(os.sched_getaffinity(0))
    source = wrapped()
    for ahead, threads in ((2, None), (0, None), (2, 3)):
        config = make_config(tiny, tmp_path / f"cache{len(source.threads)}", ahead)
        config.video.decode_threads = threads
        ZealPipeline.from_config(config).run(video, classes=CLASSES, known_classes=True)
    assert source.threads == [max(1, cores - torch.get_num_threads()), 0, 3]


def test_decoder_threads_without_models_on_this_cpu_are_ffmpegs_choice():
    from zeal.decode_ahead import decoder_threads

    assert decoder_threads(None, overlapped=True, models_on_cpu=False) == 0  # a GPU or a server scores
    assert decoder_threads(None, overlapped=False, models_on_cpu=True) == 0
    assert decoder_threads(2, overlapped=True, models_on_cpu=True) == 2
