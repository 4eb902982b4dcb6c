"""zeal.video on real clips (tests/data, see NOTICE.md) and on small clips generated with PyAV.

Ground truth never comes from zeal.video itself: presentation times are read by demuxing packets
with PyAV here (sorted packet timestamps, which is the order a decoder returns frames in), and frame
identity is checked by comparing pixels with an independent decode.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media_factory import flip_nal_length, write_audio_only, write_clip, write_h264, write_timestamp_jump
from zeal import video
from zeal.errors import ConfigError, VideoError

DATA = Path(__file__).resolve().parent / "data"
VFR = DATA / "demo_demo_skeleton.mp4"  # 1080p, 70 steps of 1/30 s and one 0.2 s gap
AVI = DATA / "tests_data_test.avi"  # MPEG-4 part 2 with packed B-frames, 25 fps
MKV = DATA / "examples_flipping_a_pancake.mkv"  # container reports 0 frames; 310 real
CFR_MP4 = DATA / "tests_data_rawvideo_dataset_part_0.mp4"  # 32 frames, 30 fps
CORRUPTED = DATA / "tests_test_data_corrupted.mp4"
MOV_0 = DATA / "tests_test_data_video_0.mov"  # 568x320
MOV_90 = DATA / "tests_test_data_video_90.mov"  # same size, 90-degree rotation tag
UNORDERED = DATA / "tests_test_data_unordered.mov"  # packets out of presentation order

THUMB = 64  # max side of the thumbnails used to recognise frames


# ------------------------------------------------------------------------------------------------
# Independent ground truth


def true_times(path: Path) -> np.ndarray:
    """[n] float64 presentation times (s, from the stream start) of every frame, in display order,
    from the demuxed packets' timestamps (not from zeal.video)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        origin = s.start_time or 0
        pts = sorted(p.pts for p in c.demux(s) if p.size and p.pts is not None)
        return np.array([float((p - origin) * s.time_base) for p in pts])


def true_thumbs(path: Path, size: tuple[int, int]) -> np.ndarray:
    """[n, h, w, 3] every decoded frame in output (= display) order, scaled to size=(w, h)."""
    with av.open(str(path)) as c:
        return np.stack([f.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray()
                         for f in c.decode(video=0)])


def shown_at(times: np.ndarray, t: float) -> float:
    """Time of the frame on screen at t: the last frame starting at or before t, else the first."""
    i = np.searchsorted(times, t + 1e-9, side="right") - 1
    return float(times[max(i, 0)])


def concat(chunks: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.concatenate([c.images for c in chunks]), np.concatenate([c.times_s for c in chunks]),
            np.concatenate([c.indices for c in chunks]))


def assert_frames_are_true(images: np.ndarray, times: np.ndarray, truth_t: np.ndarray,
                           truth_img: np.ndarray, half_frame: float) -> None:
    """Each returned image is a real decoded frame whose true time is within half a frame of the
    returned time (near-identical neighbours, e.g. AVI 'not coded' frames, may stand in)."""
    for img, t in zip(images, times):
        diff = np.abs(truth_img.astype(np.int16) - img.astype(np.int16)).mean(axis=(1, 2, 3))
        same = np.flatnonzero(diff <= diff.min() + 0.5)
        assert diff.min() < 1.0, f"frame returned at {t:.3f} s is not a decoded frame"
        assert np.min(np.abs(truth_t[same] - t)) <= half_frame, (
            f"frame returned at {t:.4f} s is shown at {truth_t[same]} s")


# ------------------------------------------------------------------------------------------------
# probe


@pytest.mark.parametrize("path", [AVI, MKV, CFR_MP4, MOV_0, UNORDERED], ids=lambda p: p.name)
def test_probe_constant_rate_clips(path: Path) -> None:
    info = video.probe(path)
    truth = true_times(path)
    assert info.vfr is False
    assert info.n_frames == len(truth)
    assert info.fps == pytest.approx(1.0 / np.median(np.diff(truth)), rel=0.02)
    # Duration runs from the stream start to the end of the last frame.
    assert truth[-1] <= info.duration_s <= truth[-1] + 2.0 / info.fps
    assert info.path == str(path)


def test_probe_variable_rate_clip() -> None:
    info = video.probe(VFR)
    assert info.vfr is True
    assert (info.width, info.height, info.rotation) == (1920, 1080, 0)
    assert info.n_frames == len(true_times(VFR)) == 72


def test_probe_counts_frames_when_container_reports_none() -> None:
    with av.open(str(MKV)) as c:
        assert c.streams.video[0].frames == 0  # the premise of the test
    info = video.probe(MKV)
    assert info.n_frames == 310
    assert info.duration_s == pytest.approx(10.333, abs=0.01)
    assert info.fps == pytest.approx(30.0)


def test_probe_applies_rotation_and_aspect() -> None:
    assert (video.probe(MOV_0).width, video.probe(MOV_0).height, video.probe(MOV_0).rotation) == (568, 320, 0)
    info = video.probe(MOV_90)
    assert (info.width, info.height, info.rotation) == (320, 568, 90)
    # mmaction2's test clip stores 340x256 pixels with a 1024:765 sample aspect ratio.
    info = video.probe(CFR_MP4)
    with av.open(str(CFR_MP4)) as c:
        sar = c.streams.video[0].sample_aspect_ratio
    assert sar == Fraction(1024, 765)
    assert (info.width, info.height) == (round(340 * 1024 / 765), 256)


# ------------------------------------------------------------------------------------------------
# sample: timestamps


# decord refuses AVI (its timestamps are garbage there): see test_decord_refuses_avi_...
BACKENDS_FOR = {VFR: ["pyav", "decord"], AVI: ["pyav"], MKV: ["pyav", "decord"]}
TIMING_CASES = [(path, fps, backend) for path, fps in [(VFR, 30.0), (VFR, 7.3), (AVI, 25.0), (AVI, 3.7),
                                                       (MKV, 4.0)] for backend in BACKENDS_FOR[path]]


@pytest.mark.parametrize("path,fps,backend", TIMING_CASES, ids=lambda v: getattr(v, "name", v))
def test_sample_returns_true_times_of_shown_frames(path: Path, fps: float, backend: str) -> None:
    truth_t = true_times(path)
    info = video.probe(path)
    half_frame = 0.5 / info.fps
    chunks = list(video.sample(path, fps=fps, max_side=THUMB, chunk=5, backend=backend))
    images, times, indices = concat(chunks)
    assert all(len(c) <= 5 for c in chunks)
    np.testing.assert_array_equal(indices, np.arange(len(times)))
    assert abs(len(times) - video.expected_samples(info, fps)) <= 1
    assert np.all(np.diff(times) >= 0)
    for k, t in enumerate(times):
        assert abs(t - shown_at(truth_t, k / fps)) <= half_frame, f"sample {k} at {k / fps:.3f} s"
    size = (images.shape[2], images.shape[1])
    assert max(size) == THUMB
    assert_frames_are_true(images, times, truth_t, true_thumbs(path, size), half_frame)


def test_sample_vfr_gap_repeats_the_frame_shown() -> None:
    """Inside the 0.2 s gap the frame before it stays on screen; index / fps would be wrong here."""
    truth_t = true_times(VFR)
    gap = int(np.argmax(np.diff(truth_t)))
    _, times, _ = concat(list(video.sample(VFR, fps=30.0, max_side=THUMB)))
    in_gap = (np.arange(len(times)) / 30.0 > truth_t[gap] + 1e-6) & (np.arange(len(times)) / 30.0 < truth_t[gap + 1] - 1e-6)
    assert in_gap.sum() >= 4
    assert np.all(times[in_gap] == pytest.approx(truth_t[gap]))


def test_sample_unordered_packets() -> None:
    truth_t = true_times(UNORDERED)
    images, times, _ = concat(list(video.sample(UNORDERED, fps=32.0)))
    # Targets 0, 1/32, ..., 4/32 = the duration; the last frame is still on screen at the end.
    assert len(times) == video.expected_samples(video.probe(UNORDERED), 32.0) == 5
    np.testing.assert_allclose(times, np.append(truth_t, truth_t[-1]), atol=1e-9)
    assert images.shape == (5, 50, 50, 3)
    assert_frames_are_true(images, times, truth_t, true_thumbs(UNORDERED, (50, 50)), 0.5 / 32)


def test_sample_mkv_with_zero_reported_frames() -> None:
    images, times, _ = concat(list(video.sample(MKV, fps=1.0)))
    assert len(times) == video.expected_samples(video.probe(MKV), 1.0) == 11
    assert images.shape[1:] == (240, 426, 3)
    assert times[-1] == pytest.approx(10.0)


def test_sample_is_lazy_and_chunked() -> None:
    gen = video.sample(MKV, fps=10.0, max_side=THUMB, chunk=7)
    first = next(gen)
    assert len(first) == 7 and first.images.dtype == np.uint8
    assert first.images.flags["C_CONTIGUOUS"]
    gen.close()  # stopping early closes the file without decoding the rest


# ------------------------------------------------------------------------------------------------
# sample: geometry


def test_rotated_mov_comes_out_upright() -> None:
    plain = next(video.sample(MOV_0)).images
    turned = next(video.sample(MOV_90)).images
    assert plain.shape[1:] == (320, 568, 3)
    assert turned.shape[1:] == (568, 320, 3)
    # Stored pixels turned a quarter clockwise, as FFmpeg's display matrix (-90 deg) asks.
    with av.open(str(MOV_90)) as c:
        stored = next(c.decode(video=0)).to_ndarray(format="rgb24")
    np.testing.assert_array_equal(turned[0], np.rot90(stored, k=-1))
    # decord rotates by itself: an independent decoder agrees on the orientation.
    by_decord = next(video.sample(MOV_90, backend="decord")).images
    assert by_decord.shape == turned.shape
    assert np.abs(by_decord.astype(int) - turned.astype(int)).mean() < 3.0
    assert np.abs(np.rot90(by_decord[0], k=2).astype(int) - turned[0].astype(int)).mean() > 20.0


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")
def test_rotation_matches_ffmpeg_autorotate(tmp_path: Path) -> None:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(MOV_90), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    by_ffmpeg = np.frombuffer(raw, np.uint8).reshape(568, 320, 3)
    ours = next(video.sample(MOV_90)).images[0]
    assert np.abs(by_ffmpeg.astype(int) - ours.astype(int)).mean() < 3.0


def test_resize_keeps_aspect_and_rotation() -> None:
    turned = next(video.sample(MOV_90, max_side=100)).images
    assert turned.shape[1:] == (100, round(100 * 320 / 568), 3)


def test_8k_frames_come_out_resized(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "8k.mp4", n_frames=2, size=(7680, 4320))
    info = video.probe(path)
    assert (info.width, info.height) == (7680, 4320)
    images, times, _ = concat(list(video.sample(path, fps=25.0, max_side=512)))
    assert images.shape[1:] == (288, 512, 3)
    np.testing.assert_allclose(times[:2], [0.0, 0.04])
    assert images[0, 10, 10, 0] > 200 and images[0, 200, 400, 0] < 100  # red quarter top-left
    one = video.frames_at(path, [0.04], max_side=512)
    assert one.images.shape == (1, 288, 512, 3)


def test_one_frame_video_and_video_shorter_than_a_step(tmp_path: Path) -> None:
    single = write_clip(tmp_path / "one frame.mp4", n_frames=1)
    frames = list(video.sample(single, fps=1.0))
    assert sum(len(c) for c in frames) == 1 and frames[0].times_s[0] == 0.0
    short = write_clip(tmp_path / "kurz ünïcode.mp4", n_frames=10)  # 0.4 s at 25 fps
    for fps in (1.0, 0.1):
        chunks = list(video.sample(short, fps=fps))
        assert sum(len(c) for c in chunks) == 1
        first = true_thumbs(short, (64, 48))[0]
        np.testing.assert_array_equal(chunks[0].images[0], first)


# ------------------------------------------------------------------------------------------------
# frames_at


@pytest.mark.parametrize("path,backend", [(VFR, "pyav"), (VFR, "decord"), (AVI, "pyav"), (MKV, "pyav"),
                                          (MKV, "decord")], ids=str)
def test_frames_at_gives_frames_shown_at_times(path: Path, backend: str) -> None:
    truth_t = true_times(path)
    info = video.probe(path)
    wanted = [info.duration_s * 0.9, 0.0, 1.5, 1.5, info.duration_s * 0.45, -1.0, info.duration_s + 5, 0.51]
    got = video.frames_at(path, wanted, max_side=THUMB, backend=backend)
    assert len(got) == len(wanted) and got.images.shape[0] == len(wanted)
    np.testing.assert_array_equal(got.indices, np.arange(len(wanted)))
    half_frame = 0.5 / info.fps
    for t_wanted, t in zip(wanted, got.times_s):
        assert abs(t - shown_at(truth_t, t_wanted)) <= half_frame, t_wanted
    size = (got.images.shape[2], got.images.shape[1])
    assert_frames_are_true(got.images, got.times_s, truth_t, true_thumbs(path, size), half_frame)


def test_frames_at_agrees_with_sample() -> None:
    images, times, _ = concat(list(video.sample(MKV, fps=1.0, max_side=THUMB)))
    got = video.frames_at(MKV, np.arange(len(times), dtype=float)[::-1], max_side=THUMB)
    np.testing.assert_array_equal(got.times_s, times[::-1])
    np.testing.assert_array_equal(got.images, images[::-1])


def test_frames_at_empty_and_bad_times() -> None:
    empty = video.frames_at(MOV_90, [], max_side=100)
    assert empty.images.shape == (0, 100, 56, 3)
    with pytest.raises(ConfigError):
        video.frames_at(MOV_0, [float("nan")])


# ------------------------------------------------------------------------------------------------
# Errors


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    return {"zero-byte": empty, "text": text, "audio-only": write_audio_only(tmp_path / "tone.wav"),
            "missing": tmp_path / "missing.mp4", "directory": folder}


EXPECTED_REASON = {"zero-byte": "empty", "text": "cannot open", "audio-only": "no video stream",
                   "missing": "not found", "directory": "directory"}


@pytest.mark.parametrize("case", sorted(EXPECTED_REASON))
@pytest.mark.parametrize("call", ["probe", "sample", "frames_at", "decord"])
def test_unreadable_inputs_raise_one_video_error(tmp_path: Path, case: str, call: str) -> None:
    path = _bad_inputs(tmp_path)[case]
    run = {"probe": lambda: video.probe(path), "sample": lambda: list(video.sample(path)),
           "frames_at": lambda: video.frames_at(path, [0.0]),
           "decord": lambda: list(video.sample(path, backend="decord"))}[call]
    with pytest.raises(VideoError) as err:
        run()
    message = str(err.value)
    assert str(path) in message and EXPECTED_REASON[case] in message
    assert "\n" not in message
    assert err.value.__cause__ is None  # no chained traceback
    assert err.value.__context__ is None or err.value.__suppress_context__


# ------------------------------------------------------------------------------------------------
# Damaged video is decoded around: missing samples, skipped stretches, a timestamp jump


@pytest.fixture(scope="module")
def h264(tmp_path_factory) -> Path:
    """A 12 s H.264 clip, 25 fps, a keyframe every second (300 frames)."""
    return write_h264(tmp_path_factory.mktemp("h264") / "clip.mp4", n_frames=300)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_the_corrupted_clip_is_decoded_around(backend: str) -> None:
    skipped: list = []
    images, times, indices = concat(list(video.sample(CORRUPTED, fps=10.0, max_side=THUMB, backend=backend,
                                                      skipped=skipped)))
    truth_t = true_times(CORRUPTED)
    lost = np.isnan(times)
    assert lost.any() and not lost.all() and skipped  # some samples are missing, and said so
    assert np.array_equal(indices, np.arange(len(times)))  # every sample keeps its place
    assert np.all(images[lost] == 0)  # a missing sample's image is black: nothing invented
    for k in np.flatnonzero(lost):  # each missing sample lies in a reported stretch
        assert any(s - 1e-6 <= k / 10.0 < e + 1e-6 for s, e in skipped), (k, skipped)
    kept = ~lost
    assert np.all([abs(t - shown_at(truth_t, k / 10.0)) < 0.1 + 1e-6 for k, t in zip(indices[kept], times[kept])])


def test_one_damaged_packet_loses_one_frame_and_says_where(h264: Path, tmp_path: Path) -> None:
    damaged = flip_nal_length(h264, tmp_path / "damaged.mp4", at_s=6.2)
    assert video.probe(damaged).duration_s == video.probe(h264).duration_s
    skipped: list = []
    _, times, _ = concat(list(video.sample(damaged, fps=5.0, skipped=skipped)))
    _, clean, _ = concat(list(video.sample(h264, fps=5.0)))
    assert skipped == [(pytest.approx(6.2), pytest.approx(6.24))]  # the one lost frame
    assert np.flatnonzero(np.isnan(times)).tolist() == [31]  # t = 6.2 s
    np.testing.assert_array_equal(np.delete(times, 31), np.delete(clean, 31))  # the rest as from the clean copy
    assert video.skipped_sentence(skipped) == (
        "1 damaged stretch(es) of video could not be decoded and were skipped (0.04 s in all): "
        "00:00:06.20-00:00:06.24; the curves have gaps there")


def test_a_damaged_first_gop_leaves_the_file_readable(h264: Path, tmp_path: Path) -> None:
    damaged = flip_nal_length(h264, tmp_path / "first_gop.mp4", at_s=0.0)
    info = video.probe(damaged)  # the probe skips the damaged keyframe and finds a later frame
    assert (info.width, info.height, info.duration_s) == (64, 48, 12.0)
    skipped: list = []
    _, times, _ = concat(list(video.sample(damaged, fps=1.0, skipped=skipped)))
    assert np.isnan(times[0]) and np.isfinite(times[1:]).all() and len(times) == 13
    assert skipped[0][0] == 0.0 and 0.0 < skipped[0][1] <= 1.0
    # frames_at (CLIP's filtering frames) gives the first decodable frame for t = 0
    assert video.frames_at(damaged, [0.0]).times_s[0] == pytest.approx(skipped[0][1])


def test_a_file_with_no_decodable_frame_is_a_video_error(h264: Path, tmp_path: Path) -> None:
    data = bytearray(h264.read_bytes())
    with av.open(str(h264)) as c:
        for p in c.demux(c.streams.video[0]):
            if p.size:
                data[p.pos] ^= 0x40  # every packet damaged
    path = tmp_path / "nothing.mp4"
    path.write_bytes(bytes(data))
    with pytest.raises(VideoError, match="contains no decodable video frame") as err:
        video.probe(path)
    assert str(path) in str(err.value)


def test_a_timestamp_jump_plans_samples_only_for_frames_that_exist(tmp_path: Path) -> None:
    """A 2 s clip whose last packet says 10 hours: the duration is that of the frames before the
    jump (not 36,000 samples), and the probe says so."""
    path = write_timestamp_jump(tmp_path / "jump.mp4", n_frames=50, jump_s=36000.0)
    with av.open(str(path)) as c:  # the container itself believes in the jump
        assert c.duration / av.time_base > 36000
    info = video.probe(path)
    assert info.duration_s == pytest.approx(1.96) and info.fps == pytest.approx(25.0)
    assert len(info.warnings) == 1 and "jump from 00:00:01.92 to 10:00:01.96" in info.warnings[0]
    assert video.expected_samples(info, 1.0) == 2
    for backend in video.list_backends():
        _, times, _ = concat(list(video.sample(path, fps=1.0, backend=backend)))
        assert times.tolist() == [0.0, 1.0], backend


def test_sampling_faster_than_the_video_is_refused() -> None:
    for fps in (31.0, 1000.0, 1e9, 1e308):  # the clip runs at 30 fps
        with pytest.raises(ConfigError, match=r"more than the video's own frame rate \(30 fps.*at most 30 frames"):
            list(video.sample(CFR_MP4, fps=fps))
    assert len(np.concatenate([c.times_s for c in video.sample(CFR_MP4, fps=30.0)])) == 33  # 0 .. 32/30 s


def test_decord_refuses_avi_instead_of_returning_wrong_times() -> None:
    with pytest.raises(VideoError, match="backend='pyav'"):
        list(video.sample(AVI, backend="decord"))


def test_unknown_backend_and_bad_settings() -> None:
    with pytest.raises(ConfigError) as err:
        video.sample(MOV_0, backend="opencv")
    assert "opencv" in str(err.value) and "pyav" in str(err.value) and "decord" in str(err.value)
    assert video.list_backends() == ["pyav", "decord"]
    for bad in ({"fps": 0.0}, {"fps": float("inf")}, {"max_side": 0}, {"chunk": 0}):
        with pytest.raises(ConfigError):
            video.sample(MOV_0, **bad)


def test_expected_samples() -> None:
    info = video.probe(MKV)
    assert video.expected_samples(info, 1.0) == 11  # 0, 1, ..., 10 <= 10.333
    assert video.expected_samples(info, 0.5) == 6
    short = video.probe(UNORDERED)
    assert video.expected_samples(short, 1.0) == 1


# ------------------------------------------------------------------------------------------------
# video_hash


def test_video_hash_follows_content(tmp_path: Path) -> None:
    original = MKV.read_bytes()
    copy = tmp_path / "copy of clip.mkv"
    copy.write_bytes(original)
    h = video.video_hash(MKV)
    assert len(h) == 40 and int(h, 16) >= 0
    assert video.video_hash(copy) == h  # content, not path
    seen = {h}
    for where in (0, 100, len(original) // 2, len(original) - 1):
        changed = bytearray(original)
        changed[where] ^= 0x01
        copy.write_bytes(bytes(changed))
        seen.add(video.video_hash(copy))
    copy.write_bytes(original[:-1])
    seen.add(video.video_hash(copy))
    assert len(seen) == 6
    with pytest.raises(VideoError):
        video.video_hash(tmp_path / "missing.mkv")


def test_importing_zeal_video_loads_no_decoder() -> None:
    code = "import sys, zeal, zeal.video; print('av' in sys.modules, 'decord' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ------------------------------------------------------------------------------------------------
# Fuzz: damaged copies decode or raise VideoError, in bounded time

SEED_CLIP = CFR_MP4.read_bytes()
PER_FILE_LIMIT_S = 10.0


def _exercise(path: Path, backend: str) -> None:
    try:
        info = video.probe(path)
        for chunk in video.sample(path, fps=10.0, max_side=THUMB, info=info, backend=backend):
            assert chunk.images.ndim == 4 and chunk.images.shape[-1] == 3
            missing = np.isnan(chunk.times_s)  # a sample in a stretch that could not be decoded
            assert np.all(np.isfinite(chunk.times_s[~missing])) and np.all(chunk.images[missing] == 0)
        video.frames_at(path, [0.0, 0.5], max_side=THUMB, info=info, backend=backend)
    except VideoError as e:
        assert str(path) in str(e)


@pytest.mark.timeout(240)
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cut=st.one_of(st.none(), st.integers(1, len(SEED_CLIP) - 1)),
       flips=st.lists(st.tuples(st.one_of(st.integers(0, 4095), st.integers(0, len(SEED_CLIP) - 1)),
                                st.integers(0, 7)), max_size=12))
def test_damaged_copies_decode_or_raise_video_error(tmp_path: Path, cut: int | None,
                                                    flips: list[tuple[int, int]]) -> None:
    data = bytearray(SEED_CLIP[:cut] if cut else SEED_CLIP)
    for pos, bit in flips:
        if pos < len(data):
            data[pos] ^= 1 << bit
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    for backend in video.list_backends():
        start = time.monotonic()
        _exercise(path, backend)
        assert time.monotonic() - start < PER_FILE_LIMIT_S, backend


def _bframe_clip(path: Path, n_frames: int = 120, rate: int = 30) -> Path:
    """An H.264 clip with B-frames (libx264's defaults: 3 B-frames, pyramid), each frame different."""
    w, h = 96, 64
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"g": "48", "bf": "3"}
        for i in range(n_frames):
            img = np.zeros((h, w, 3), dtype=np.uint8)
            img[:, : (i * 7) % w] = 200
            img[..., 1] = (i * 11) % 256
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _sampled(path: Path, fps: float):
    info = video.probe(path)
    skipped: list = []
    chunks = list(video.sample(path, fps=fps, max_side=None, chunk=8, info=info, skipped=skipped))
    return (np.concatenate([c.images for c in chunks]), np.concatenate([c.times_s for c in chunks]),
            np.concatenate([c.indices for c in chunks]), skipped)


def test_frames_left_undecoded_change_no_sample(tmp_path, monkeypatch):
    """Sampling leaves undecoded the frames no sample shows (non-reference frames away from every
    sample time): every time, index and skipped stretch, and every image up to the first damaged
    stretch, is what decoding every frame gives, on real clips, on a B-frame clip, and on copies of
    it damaged at an anchor or at a B-frame."""
    bframes = _bframe_clip(tmp_path / "bframes.mp4")
    clips = [bframes, VFR, AVI, MKV, CFR_MP4, CORRUPTED, MOV_0, MOV_90, UNORDERED, DATA / "tests_data_test.mp4"]
    clips += [flip_nal_length(bframes, tmp_path / f"damaged_{k}.mp4", at_s) for k, at_s in enumerate((1.0, 1.4, 2.5, 3.2))]
    real = video._Undecoded
    left: list[tuple[float, float]] = []

    class Counted(real):
        def add(self, start, end):
            left.append((start, end))
            super().add(start, end)

    for clip in clips:
        for fps in (1.0, 2.0, 7.5):
            monkeypatch.setattr(video, "_Undecoded", Counted)
            got = _sampled(clip, fps)
            monkeypatch.setattr(video, "_Undecoded", lambda shows_nothing: real(lambda a, b: False))
            every = _sampled(clip, fps)
            what = f"{clip.name} at {fps} fps"
            np.testing.assert_array_equal(got[1], every[1], err_msg=what)  # times (NaN: missing)
            np.testing.assert_array_equal(got[2], every[2], err_msg=what)
            assert got[3] == every[3], what  # the stretches decoding skipped
            # After damage, the pixels FFmpeg makes up for what was lost depend on what it decoded
            # before (both are guesses): up to the first damaged stretch, and on undamaged clips
            # throughout, every pixel is the same.
            first_damage = min((a for a, _ in got[3]), default=np.inf)
            same = got[1] < first_damage - 1e-6
            np.testing.assert_array_equal(got[0][same], every[0][same], err_msg=what)
    assert len(left) > 100  # frames were left undecoded: the comparison is not between two equal runs
