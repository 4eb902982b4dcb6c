"""Reading videos: probe, sample at a fixed rate with real timestamps, grab frames at given times, hash.

This is the only module that imports a video decoder. PyAV (`av`) is the default backend and is also
used by `probe` for every backend; decord is an optional backend. Both are imported inside the
functions that need them, so `import zeal` stays cheap.

Why PyAV is the default (measured, see benchmarks/bench_video.py and tests/data/NOTICE.md): it gives
exact presentation timestamps on every container and, sampling a 10-minute 720p H.264 clip at 1 fps
on a shared 2-core x86_64 (two runs), took 1.02x / 0.89x the time of `ffmpeg -vf fps=1 -f null` at
129-143 MB peak resident. decord 0.6.0 was no faster within that machine's noise (1.20x / 0.87x) but
peaked at 372-423 MB (over the 300 MB target), returns garbage timestamps on AVI (the decord backend
refuses such files with a VideoError instead of returning wrong times) and has no wheels for
macOS arm64 / Linux aarch64; it stays available as backend="decord" for MP4/MKV/MOV.

Times: every time in seconds is measured from the start of the video stream (its `start_time`), i.e.
the clock a player shows. `Frames.times_s` holds the real presentation time of each returned frame,
never `index / fps`, so variable-frame-rate video is handled exactly.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from zeal.errors import ConfigError, VideoError
from zeal.types import Frames, VideoInfo

DEFAULT_BACKEND = "pyav"

# Slack when comparing two times in seconds: pts * time_base is exact as a Fraction, but targets
# k / fps are floats; a frame within a microsecond of a target counts as "at" the target.
TIME_EPS_S = 1e-6
# Packets whose timestamps are inspected to decide whether the frame rate is variable. Demuxing
# (no decoding) this many packets costs a few milliseconds even for 4K video.
VFR_PROBE_PACKETS = 300
# Variable frame rate when the average rate differs from FFmpeg's base (cadence) rate by more
# than this fraction ...
VFR_RATE_TOLERANCE = 0.01
# ... or when more than VFR_IRREGULAR_FRACTION of the frame-to-frame steps differ from the median
# step by more than VFR_STEP_TOLERANCE of it. The step tolerance absorbs millisecond rounding of
# Matroska timestamps (33/34 ms at 30 fps); the fraction lets a single dropped frame in an
# otherwise constant stream (as in tests/data/tests_data_rawvideo_dataset_part_0.mp4) stay CFR.
VFR_STEP_TOLERANCE = 0.25
VFR_IRREGULAR_FRACTION = 0.05
# frames_at(): decode forward from the current position instead of seeking when the next wanted
# time is at most this far ahead (a seek costs a keyframe decode; long-GOP keyframes are ~2-10 s apart).
FORWARD_DECODE_LIMIT_S = 2.0
# video_hash(): read the file in blocks this big (large reads keep hashing above 1 GB/s).
HASH_BLOCK_BYTES = 8 << 20
HASH_PERSON = b"zeal-video-v1"  # domain separation: changing the scheme changes every key
HASH_DIGEST_BYTES = 20
# Rotation angles are multiples of a quarter turn; display matrices carry float angles.
QUARTER_TURN_DEG = 90


# ---------------------------------------------------------------------------------------------
# Input checks and small helpers


def _check_path(path: str | os.PathLike[str]) -> Path:
    """The path as a Path, or a VideoError saying why it cannot be a video file."""
    p = Path(path)
    if not p.exists():
        raise VideoError(f"video file not found: {p} (check the path)")
    if p.is_dir():
        raise VideoError(f"{p} is a directory, not a video file (give the path of a video file)")
    try:
        size = p.stat().st_size
    except OSError as e:
        raise VideoError(f"cannot read video file {p}: {e.strerror or e}") from None
    if size == 0:
        raise VideoError(f"video file {p} is empty (0 bytes); it was probably not fully copied or uploaded")
    return p


def _check_fps(fps: float) -> float:
    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise ConfigError(f"sampling fps must be a positive number, got {fps}")
    return fps


def _check_max_side(max_side: int | None) -> int | None:
    if max_side is None:
        return None
    if int(max_side) < 1:
        raise ConfigError(f"max_side must be a positive number of pixels or None, got {max_side}")
    return int(max_side)


def expected_samples(info: VideoInfo, fps: float) -> int:
    """Number of sample times t_k = k / fps with t_k <= info.duration_s (at least 1).

    Meant for progress totals: `sample` may yield one fewer or more on variable-frame-rate or
    truncated video, so callers must not rely on equality.
    """
    fps = _check_fps(fps)
    duration = info.duration_s if math.isfinite(info.duration_s) and info.duration_s > 0 else 0.0
    return int(math.floor(duration * fps + TIME_EPS_S)) + 1


def _output_size(info: VideoInfo, max_side: int | None) -> tuple[int, int]:
    """(width, height) in pixels to scale decoded frames to, BEFORE rotation.

    info.width/height are the display size (sample aspect ratio applied, after rotation); the
    decoder's frames are unrotated, so for a quarter-turn the two sides swap.
    """
    w, h = info.width, info.height
    if info.rotation % 180 == QUARTER_TURN_DEG:
        w, h = h, w
    if max_side is not None and max(w, h) > max_side:
        scale = max_side / max(w, h)
        w, h = max(1, round(w * scale)), max(1, round(h * scale))
    return w, h


def _upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn an [H, W, 3] image `rotation` degrees clockwise (np.rot90 turns counter-clockwise)."""
    quarter_turns = (rotation // QUARTER_TURN_DEG) % 4
    if quarter_turns == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=-quarter_turns))


def _stack(images: list[np.ndarray], times: list[float], indices: list[int], size: tuple[int, int],
           rotation: int) -> Frames:
    if images:
        arr = np.stack(images)
    else:  # no frame: keep the shape contract [0, H, W, 3]
        w, h = size
        if rotation % 180 == QUARTER_TURN_DEG:
            w, h = h, w
        arr = np.zeros((0, h, w, 3), dtype=np.uint8)
    return Frames(images=arr, times_s=np.asarray(times, dtype=np.float64),
                  indices=np.asarray(indices, dtype=np.int64))


# ---------------------------------------------------------------------------------------------
# PyAV: opening, probing


@contextmanager
def _open_pyav(path: Path) -> Iterator[tuple[Any, Any]]:
    """Open `path` with PyAV and yield (container, video stream); VideoError for anything unreadable."""
    import av

    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise VideoError(f"cannot open {path} as a video: {_reason(e)} "
                         "(is it a video file, and fully copied?)") from None
    try:
        streams = [s for s in container.streams.video
                   if not (s.disposition & av.stream.Disposition.attached_pic)]  # cover art is no video
        if not streams:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise VideoError(f"{path} has no video stream (streams: {', '.join(kinds)}); "
                             "give a file that contains video")
        stream = streams[0]
        if stream.time_base is None or stream.time_base <= 0:
            raise VideoError(f"{path}: the video stream has no valid time base; the file is damaged")
        yield container, stream
    finally:
        container.close()


def _reason(e: BaseException) -> str:
    """A short human reason from a decoder exception (PyAV messages carry errno and call names)."""
    import av

    if isinstance(e, av.FFmpegError) and getattr(e, "strerror", None):
        return str(e.strerror)
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:200]


def _origin(stream: Any) -> int:
    """The stream's start in time_base units: times are reported relative to it."""
    return int(stream.start_time) if stream.start_time is not None else 0


def _clockwise_rotation(frame: Any) -> int:
    """Degrees clockwise (0/90/180/270) to turn `frame` to display it upright.

    FFmpeg's display-matrix angle (VideoFrame.rotation) is counter-clockwise, so it is negated.
    """
    angle = float(getattr(frame, "rotation", 0) or 0)
    if not math.isfinite(angle):
        return 0
    quarter = round(-angle / QUARTER_TURN_DEG) % 4
    return quarter * QUARTER_TURN_DEG


def _is_vfr(pts: list[int], average_rate: Fraction | None, base_rate: Fraction | None) -> bool:
    """Variable frame rate from container rates and the first packets' presentation steps."""
    if average_rate and base_rate and average_rate > 0 and base_rate > 0:
        if abs(float(average_rate / base_rate) - 1.0) > VFR_RATE_TOLERANCE:
            return True
    steps = np.diff(np.unique(np.asarray(pts, dtype=np.int64)))
    if len(steps) < 2:
        return False
    median = float(np.median(steps))
    irregular = np.abs(steps - median) > VFR_STEP_TOLERANCE * median
    return bool(irregular.mean() > VFR_IRREGULAR_FRACTION)


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe a video without decoding it all (decodes its first frame, demuxes a few packets).

    Returns duration_s (seconds), n_frames (counted from packets when the container does not say),
    fps (average frames per second), width/height (display pixels: sample aspect ratio and
    rotation applied), rotation (degrees clockwise to display upright) and vfr. Raises VideoError
    for a missing, empty, non-video, audio-only or undecodable file.
    """
    import av

    p = _check_path(path)
    with _open_pyav(p) as (container, stream):
        n_frames = int(stream.frames or 0)
        full_scan = n_frames <= 0  # e.g. Matroska reports no frame count: count packets instead
        pts: list[int] = []
        n_packets, end_pts, first = 0, None, None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                n_packets += 1
                if packet.pts is not None:
                    if len(pts) < VFR_PROBE_PACKETS:
                        pts.append(packet.pts)
                    end = packet.pts + (packet.duration or 0)
                    end_pts = end if end_pts is None else max(end_pts, end)
                if first is None:
                    first = next(iter(stream.decode(packet)), None)
                if first is not None and not full_scan and n_packets >= VFR_PROBE_PACKETS:
                    break
            if first is None:  # decoders with delay (B-frames, frame threads) give frames at flush
                first = next(iter(stream.decode(None)), None)
        except (av.FFmpegError, OSError, ValueError) as e:
            raise VideoError(f"cannot decode {p}: {_reason(e)} (the file is damaged or in an "
                             "unsupported format)") from None
        if first is None:
            raise VideoError(f"{p} contains no decodable video frame")
        tb = stream.time_base
        origin = _origin(stream)
        if full_scan:
            n_frames = n_packets
        duration = None
        if full_scan and end_pts is not None:
            duration = float((end_pts - origin) * tb)
        elif stream.duration:
            duration = float(stream.duration * tb)
        elif container.duration:
            duration = container.duration / av.time_base
        average_rate = stream.average_rate if stream.average_rate and stream.average_rate > 0 else None
        base_rate = stream.base_rate if stream.base_rate and stream.base_rate > 0 else None
        fps = float(average_rate or base_rate or 0.0)
        if duration is None or not math.isfinite(duration) or duration <= 0:
            duration = n_frames / fps if fps > 0 else 0.0
        if fps <= 0:
            fps = n_frames / duration if duration > 0 else 0.0
        sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
        width, height = int(first.width), int(first.height)
        if sar and sar > 0 and sar != 1:
            width = max(1, round(width * float(sar)))  # display width, as a player shows it
        rotation = _clockwise_rotation(first)
        if rotation % 180 == QUARTER_TURN_DEG:
            width, height = height, width
        return VideoInfo(path=str(p), duration_s=duration, n_frames=n_frames, fps=fps, width=width,
                         height=height, rotation=rotation, vfr=_is_vfr(pts, average_rate, base_rate))


# ---------------------------------------------------------------------------------------------
# Backends


class _Backend(Protocol):
    def sample(self, path: Path, info: VideoInfo, fps: float, max_side: int | None,
               chunk: int) -> Iterator[Frames]: ...

    def frames_at(self, path: Path, info: VideoInfo, times_s: np.ndarray,
                  max_side: int | None) -> Frames: ...


@dataclass
class _Converter:
    """Decoded frame -> upright RGB array at the output size, reusing the last result for repeats."""

    size: tuple[int, int]
    rotation: int
    _last_frame: Any = None
    _last_image: np.ndarray | None = None

    def __call__(self, frame: Any) -> np.ndarray:
        if frame is not self._last_frame:
            w, h = self.size
            # Scale and convert in one swscale call: a 4K/8K frame is never expanded to full-size RGB.
            rgb = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
            self._last_frame, self._last_image = frame, _upright(rgb, self.rotation)
        return self._last_image


# Containers whose packet timestamps are frame counters in storage (decode) order, not presentation
# times: the decoder's per-frame pts come out permuted (measured on both AVI test clips, with MPEG-4
# packed B-frames and with H.264 B-frames). There the decoder's output order is the presentation
# order, so each output frame takes the smallest packet timestamp not yet used.
_COUNTER_PTS_FORMATS = frozenset({"avi"})


def _timed_frames(container: Any, stream: Any) -> Iterator[tuple[Any, float | None]]:
    """Decode `stream` from the current position; yield (frame, presentation time in s or None)."""
    tb, origin = stream.time_base, _origin(stream)
    reorder = container.format is not None and container.format.name in _COUNTER_PTS_FORMATS
    pending: list[int] = []  # min-heap of packet timestamps not yet given to a frame (reorder only)
    for packet in container.demux(stream):
        if reorder and packet.size and packet.pts is not None:
            heapq.heappush(pending, packet.pts)
        for frame in stream.decode(packet):  # the final empty packet flushes the decoder
            if reorder and pending:
                ts = heapq.heappop(pending)
            else:
                ts = frame.pts if frame.pts is not None else frame.dts
            yield frame, (float((ts - origin) * tb) if ts is not None else None)


class _PyAVBackend:
    """Sequential decode with FFmpeg through PyAV; exact timestamps, bounded memory."""

    def sample(self, path: Path, info: VideoInfo, fps: float, max_side: int | None,
               chunk: int) -> Iterator[Frames]:
        return self.sample_range(path, info, fps, max_side, chunk)

    def sample_range(self, path: Path, info: VideoInfo, fps: float, max_side: int | None, chunk: int,
                     k_start: int = 0, k_stop: int | None = None) -> Iterator[Frames]:
        """Samples k_start <= k < k_stop only; seeks to the keyframe before t_{k_start} when k_start > 0.

        The whole file is one range in `sample`; benchmarks/bench_video.py decodes several ranges
        in parallel processes with it.
        """
        import av

        step = 1.0 / fps
        n_targets = expected_samples(info, fps)
        if k_stop is not None:
            n_targets = min(n_targets, k_stop)
        convert = _Converter(_output_size(info, max_side), info.rotation)
        nominal_frame_s = 1.0 / info.fps if info.fps > 0 else 0.0
        images: list[np.ndarray] = []
        times: list[float] = []
        indices: list[int] = []
        k = k_start  # next target t_k = k * step
        prev, prev_t, prev_dur = None, 0.0, nominal_frame_s

        def keep(frame: Any, t: float) -> None:
            nonlocal k
            images.append(convert(frame))
            times.append(t)
            indices.append(k)
            k += 1

        with _open_pyav(path) as (container, stream):
            # Frame + slice threads: decoding is the bottleneck and FFmpeg's threads release the GIL.
            stream.thread_type = "AUTO"
            tb = stream.time_base
            try:
                if k_start > 0:  # lands on the keyframe at or before t_{k_start}: exact from there
                    container.seek(_origin(stream) + int(math.floor(k_start * step / tb)), stream=stream,
                                   backward=True, any_frame=False)
                # Sequential decode, no per-sample seeking: with long GOPs every seek re-decodes from
                # a keyframe (measured 4x slower than decoding everything once).
                for frame, t in _timed_frames(container, stream):
                    if t is None:
                        t = prev_t + prev_dur if prev is not None else 0.0
                    if prev is not None and t <= prev_t:
                        continue  # a duplicate or out-of-order timestamp cannot be "shown" later
                    # Every target before this frame's time is showing `prev` (or, before the first
                    # frame, the first frame).
                    while k < n_targets and k * step < t - TIME_EPS_S:
                        keep(prev if prev is not None else frame, prev_t if prev is not None else t)
                        if len(images) >= chunk:
                            yield _stack(images, times, indices, convert.size, info.rotation)
                            images, times, indices = [], [], []
                    if k >= n_targets:
                        break
                    prev, prev_t = frame, t
                    prev_dur = float(frame.duration * tb) if frame.duration else nominal_frame_s
            except (av.FFmpegError, OSError, ValueError) as e:
                raise VideoError(f"decoding {path} failed at t={prev_t:.3f} s: {_reason(e)} "
                                 "(the file is damaged; re-encode or re-copy it)") from None
        # End of stream: the last frame stays on screen until the video ends. Stop at its end
        # rather than at the container's duration so a truncated file does not repeat its last
        # frame for minutes.
        if prev is None:
            raise VideoError(f"{path} contains no decodable video frame")
        end = max(prev_t + prev_dur, 0.0)
        while k < n_targets and k * step <= end + TIME_EPS_S:
            keep(prev, prev_t)
            if len(images) >= chunk:
                yield _stack(images, times, indices, convert.size, info.rotation)
                images, times, indices = [], [], []
        if images:
            yield _stack(images, times, indices, convert.size, info.rotation)

    def frames_at(self, path: Path, info: VideoInfo, times_s: np.ndarray,
                  max_side: int | None) -> Frames:
        import av

        convert = _Converter(_output_size(info, max_side), info.rotation)
        order = np.argsort(times_s, kind="stable")
        picked: dict[int, tuple[np.ndarray, float]] = {}
        with _open_pyav(path) as (container, stream):
            cursor = _PyAVCursor(container, stream)
            try:
                for i in order:
                    frame, t = cursor.shown_at(float(times_s[i]))
                    picked[int(i)] = (convert(frame), t)
            except (av.FFmpegError, OSError, ValueError) as e:
                raise VideoError(f"decoding {path} failed near t={cursor.position:.3f} s: "
                                 f"{_reason(e)} (the file is damaged; re-encode or re-copy it)") from None
        ordered = [picked[i] for i in range(len(times_s))]
        return _stack([im for im, _ in ordered], [t for _, t in ordered], list(range(len(ordered))),
                      convert.size, info.rotation)


class _PyAVCursor:
    """Finds the frame shown at ascending times, seeking to a keyframe only when it pays."""

    def __init__(self, container: Any, stream: Any) -> None:
        self.container, self.stream = container, stream
        self.tb, self.origin = stream.time_base, _origin(stream)
        self._frames: Iterator[tuple[Any, float | None]] | None = None
        self.shown: tuple[Any, float] | None = None  # last decoded frame with time <= target
        self.ahead: tuple[Any, float] | None = None  # first decoded frame after the target
        self.position = 0.0

    def _seek(self, t: float) -> None:
        # backward=True lands on the keyframe at or before t; decoding forward from there is exact.
        offset = self.origin + max(0, int(math.floor(t / self.tb)))
        self.container.seek(offset, stream=self.stream, backward=True, any_frame=False)
        self._frames = _timed_frames(self.container, self.stream)
        self.shown = self.ahead = None

    def _next(self) -> tuple[Any, float] | None:
        assert self._frames is not None
        for frame, t in self._frames:
            if t is None:
                continue  # a frame without any timestamp cannot be placed in time
            self.position = t
            return frame, t
        return None

    def _advance(self, t: float) -> None:
        while True:
            if self.ahead is None:
                self.ahead = self._next()
                if self.ahead is None:
                    return  # end of stream: `shown` stays on screen
            if self.ahead[1] <= t + TIME_EPS_S:
                self.shown, self.ahead = self.ahead, None
            else:
                return

    def shown_at(self, t: float) -> tuple[Any, float]:
        """(frame, its time in s) shown at time t (s); the first frame for t before it."""
        here = self.ahead[1] if self.ahead else (self.shown[1] if self.shown else None)
        behind = self.shown is not None and t < self.shown[1] - TIME_EPS_S
        if self._frames is None or here is None or behind or t - here > FORWARD_DECODE_LIMIT_S:
            self._seek(t)
        self._advance(t)
        if self.shown is None and t > 0:
            # The seek landed after t (a file with a poor index): decode from the very start.
            self._seek(0.0)
            self._advance(t)
        found = self.shown or self.ahead
        if found is None:
            raise VideoError(f"{self.container.name} has no decodable frame near t={t:.3f} s")
        return found


class _DecordBackend:
    """decord 0.6 (optional): frame indices from decord's own timestamps; refuses files where those
    timestamps are invalid (AVI) rather than returning wrong times."""

    def _reader(self, path: Path, info: VideoInfo, max_side: int | None) -> Any:
        try:
            import decord
        except ImportError:
            raise ConfigError("the decord backend needs the decord package, which is not installed "
                              "(it has no wheels for macOS arm64 or Linux aarch64); use backend='pyav'") from None
        w, h = _output_size(info, max_side)
        if info.rotation % 180 == QUARTER_TURN_DEG:
            w, h = h, w  # decord applies rotation itself and takes the display (rotated) size
        try:
            return decord.VideoReader(str(path), ctx=decord.cpu(0), width=w, height=h)
        except (decord.DECORDError, RuntimeError) as e:
            raise VideoError(f"decord cannot open {path}: {_reason(e)}") from None

    def _timestamps(self, path: Path, vr: Any, info: VideoInfo) -> np.ndarray:
        """[n] float64 start time (s) of each frame, checked for sanity."""
        n = len(vr)
        if n == 0:
            raise VideoError(f"{path} contains no decodable video frame (decord)")
        ts = np.asarray(vr.get_frame_timestamp(np.arange(n)), dtype=np.float64).reshape(n, -1)[:, 0]
        tolerance = 1.0 + (1.0 / info.fps if info.fps > 0 else 0.0)
        ok = (np.all(np.isfinite(ts)) and ts[0] >= -tolerance and ts[-1] <= info.duration_s + tolerance
              and np.all(np.diff(ts) >= -TIME_EPS_S))
        if not ok:
            raise VideoError(f"decord returns invalid frame timestamps for {path} (a known decord 0.6 "
                             "bug, e.g. with AVI files); use backend='pyav'")
        return ts

    def sample(self, path: Path, info: VideoInfo, fps: float, max_side: int | None,
               chunk: int) -> Iterator[Frames]:
        import decord

        vr = self._reader(path, info, max_side)
        ts = self._timestamps(path, vr, info)
        frame_s = 1.0 / info.fps if info.fps > 0 else 0.0
        targets = np.arange(expected_samples(info, fps), dtype=np.float64) / fps
        targets = targets[targets <= ts[-1] + frame_s + TIME_EPS_S]  # not past the last frame's end
        idx = np.clip(np.searchsorted(ts, targets + TIME_EPS_S, side="right") - 1, 0, len(ts) - 1)
        size = _output_size(info, max_side)
        last: tuple[int, np.ndarray] | None = None  # the previous chunk's last frame
        for start in range(0, len(idx), chunk):
            part = idx[start:start + chunk]
            # A frame shown at several sample times (long VFR gaps, fps above the video's) is
            # decoded once: decord decodes every index it is given, repeats included.
            unique, inverse = np.unique(part, return_inverse=True)
            fetch = [int(i) for i in unique if last is None or i != last[0]]
            try:
                decoded = dict(zip(fetch, vr.get_batch(fetch).asnumpy())) if fetch else {}
            except (decord.DECORDError, RuntimeError) as e:
                raise VideoError(f"decoding {path} failed near t={ts[part[0]]:.3f} s: {_reason(e)} "
                                 "(the file is damaged; re-encode or re-copy it)") from None
            if last is not None:
                decoded.setdefault(last[0], last[1])
            images = [decoded[int(i)] for i in unique[inverse]]
            last = (int(part[-1]), images[-1])
            yield _stack(images, ts[part].tolist(), list(range(start, start + len(part))), size, 0)

    def frames_at(self, path: Path, info: VideoInfo, times_s: np.ndarray,
                  max_side: int | None) -> Frames:
        import decord

        vr = self._reader(path, info, max_side)
        ts = self._timestamps(path, vr, info)
        idx = np.clip(np.searchsorted(ts, times_s + TIME_EPS_S, side="right") - 1, 0, len(ts) - 1)
        size = _output_size(info, max_side)
        if len(idx) == 0:
            return _stack([], [], [], size, info.rotation)
        unique, inverse = np.unique(idx, return_inverse=True)
        try:
            batch = vr.get_batch(unique.tolist()).asnumpy()
        except (decord.DECORDError, RuntimeError) as e:
            raise VideoError(f"decoding {path} failed: {_reason(e)} (the file is damaged)") from None
        return _stack(list(batch[inverse]), ts[idx].tolist(), list(range(len(idx))), size, 0)


# Name -> implementation. The default is the backend that meets every requirement (exact times on
# all containers, bounded memory) and was faster in benchmarks/bench_video.py.
BACKENDS: dict[str, type] = {"pyav": _PyAVBackend, "decord": _DecordBackend}


def list_backends() -> list[str]:
    """Names accepted by the `backend` argument."""
    return list(BACKENDS)


def _backend(name: str) -> _Backend:
    try:
        return BACKENDS[name]()
    except (KeyError, TypeError):
        raise ConfigError(f"unknown video backend {name!r}; valid backends: "
                          f"{', '.join(BACKENDS)}") from None


# ---------------------------------------------------------------------------------------------
# Public API


def sample(path: str | os.PathLike[str], fps: float = 1.0, max_side: int | None = None, chunk: int = 16,
           backend: str = DEFAULT_BACKEND, *, info: VideoInfo | None = None) -> Iterator[Frames]:
    """Yield the frames shown at t_k = k / fps seconds (k = 0, 1, ... while t_k <= duration), in chunks.

    Each Frames holds at most `chunk` frames: images [n, H, W, 3] uint8 RGB upright, scaled so that
    max(H, W) <= max_side when given (aspect kept); times_s [n] float64 real presentation time (s)
    of each frame (the last frame with pts <= t_k, the first frame for t_k before it); indices [n]
    int64 = k. Memory is bounded by one chunk. `info` (from `probe`) skips probing again.
    Raises VideoError for unreadable files and for decode errors midway (naming the time).
    """
    fps = _check_fps(fps)
    max_side = _check_max_side(max_side)
    if int(chunk) < 1:
        raise ConfigError(f"chunk must be at least 1 frame, got {chunk}")
    impl = _backend(backend)
    p = _check_path(path)
    info = info if info is not None else probe(p)
    return impl.sample(p, info, fps, max_side, int(chunk))


def frames_at(path: str | os.PathLike[str], times_s: Sequence[float] | np.ndarray, max_side: int | None = None,
              backend: str = DEFAULT_BACKEND, *, info: VideoInfo | None = None) -> Frames:
    """The frames shown at the given times (seconds), in the given order (for thumbnails and
    the CLIP filtering frames). Seeks to the keyframe before each time and decodes forward.

    Returns Frames with images [n, H, W, 3] uint8 RGB upright (max(H, W) <= max_side when given),
    times_s [n] the real presentation times of the returned frames, indices [n] = 0..n-1.
    """
    max_side = _check_max_side(max_side)
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(times)):
        raise ConfigError(f"frame times must be finite numbers of seconds, got {times.tolist()}")
    impl = _backend(backend)
    p = _check_path(path)
    info = info if info is not None else probe(p)
    return impl.frames_at(p, info, times, max_side)


def video_hash(path: str | os.PathLike[str]) -> str:
    """Hex content hash of the whole file (BLAKE2b, 160 bits), used as the score-cache key.

    Why the whole file and not a sample of blocks: a cache key that misses an edit in the middle
    would silently reuse stale scores. Hashing is I/O bound (BLAKE2b runs at ~1.4 GB/s per core
    here), a few seconds for a multi-GB video, which is small next to decoding it. The file size
    is hashed first, so a truncated copy can never collide with its prefix.
    """
    p = _check_path(path)
    h = hashlib.blake2b(digest_size=HASH_DIGEST_BYTES, person=HASH_PERSON)
    buf = bytearray(HASH_BLOCK_BYTES)
    view = memoryview(buf)
    try:
        with open(p, "rb", buffering=0) as f:
            h.update(os.fstat(f.fileno()).st_size.to_bytes(8, "little"))
            while n := f.readinto(buf):
                h.update(view[:n])
    except OSError as e:
        raise VideoError(f"cannot read video file {p}: {e.strerror or e}") from None
    return h.hexdigest()
