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

Damaged video is decoded around: a packet the decoder refuses (or a frame it marks corrupt) is
skipped and decoding goes on with the next one. Every sample that falls in a stretch with no
decodable frame is returned as missing (its time is NaN, its image black: nothing is invented for
it), and the stretches are reported (`sample(..., skipped=list)`, in seconds). Only a file with no
decodable frame at all is a VideoError. A timestamp jump (a packet hours after the others, as in a
badly cut file) is found by `probe`, which then takes the duration from the frames before the jump
and says so in `VideoInfo.warnings`.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
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
# Sampling faster than the video's own frame rate only repeats frames; this slack absorbs the
# rounding of container rates (29.97 vs 30000/1001).
RATE_SLACK = 1e-3
# A timestamp jump: a step between two frames longer than this many seconds and than
# JUMP_STEP_FACTOR typical steps. Real recordings pause (a camera off for minutes), but a frame an
# hour after the others in a two-second clip is a damaged or badly cut file.
TIMESTAMP_JUMP_S = 600.0
JUMP_STEP_FACTOR = 1000
# After a damaged packet, a step longer than a frame plus this fraction of one is a lost stretch;
# looked for during this many decoded frames (more than any decoder's frame-thread delay).
HOLE_FRACTION = 0.5
DAMAGE_WINDOW_FRAMES = 64
# Undecoded frames: a packet's frame may be left undecoded when a frame read at most this many
# packets before it comes later on screen (B-frames come right after the frame they lead up to).
UNDECODED_LOOKBACK_PACKETS = 16
# How many skipped stretches a sentence lists by time before it says "and N more".
LISTED_SPANS = 5


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


def check_sampling_rate(info: VideoInfo, fps: float) -> float:
    """fps as a float when it is a usable sampling rate for this video: finite, positive, and not
    above the video's own frame rate (sampling faster only scores copies of the same frames)."""
    fps = _check_fps(fps)
    limit = max(info.fps, info.max_fps)
    if limit > 0 and fps > limit * (1 + RATE_SLACK):
        allowed = math.floor(limit * 1000) / 1000
        raise ConfigError(f"sampling {fps:g} frames per second is more than the video's own frame rate "
                          f"({limit:.6g} fps, {Path(info.path).name}): it would score copies of the same frames; "
                          f"sample at most {allowed:g} frames per second (--fps {allowed:g})")
    return fps


def clock(t: float, decimals: int = 2) -> str:
    """Seconds as hh:mm:ss (with `decimals` decimals of a second when the time is not whole)."""
    t = max(0.0, float(t))
    whole = round(t, decimals) == int(round(t, decimals))
    h, rest = divmod(round(t, decimals), 3600)
    m, sec = divmod(rest, 60)
    text = f"{int(sec):02d}" if whole else f"{sec:0{3 + decimals}.{decimals}f}"
    return f"{int(h):02d}:{int(m):02d}:{text}"


def skipped_sentence(spans: Sequence[Sequence[float]]) -> str:
    """One sentence about the stretches decoding skipped: how many, how long in all, where
    ("" when there are none)."""
    if not len(spans):
        return ""
    total = sum(max(0.0, float(e) - float(s)) for s, e in spans)
    where = ", ".join(f"{clock(s)}-{clock(e)}" for s, e in spans[:LISTED_SPANS])
    more = f" and {len(spans) - LISTED_SPANS} more" if len(spans) > LISTED_SPANS else ""
    return (f"{len(spans)} damaged stretch(es) of video could not be decoded and were skipped "
            f"({total:.2f} s in all): {where}{more}; the curves have gaps there")


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


def _upright_shape(size: tuple[int, int], rotation: int) -> tuple[int, int, int]:
    """[H, W, 3] of an image of `size` (width, height, before rotation) turned upright."""
    w, h = size
    if rotation % 180 == QUARTER_TURN_DEG:
        w, h = h, w
    return h, w, 3


def image_shape(info: VideoInfo, max_side: int | None) -> tuple[int, int, int]:
    """[H, W, 3] of every image `sample` gives for this video and max_side."""
    return _upright_shape(_output_size(info, _check_max_side(max_side)), info.rotation)


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
        arr = np.zeros((0, *_upright_shape(size, rotation)), dtype=np.uint8)
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


def _decoded(stream: Any, packet: Any) -> Any | None:
    """The first usable frame decoding `packet` gives, or None (a damaged packet is no error here)."""
    import av

    try:
        frames = stream.decode(packet)
    except (av.FFmpegError, OSError, ValueError):
        return None
    return next((f for f in frames if not f.is_corrupt), None)


def _timestamp_jump(path: Path, origin: int, tb: Fraction) -> tuple[int, float, float, float] | None:
    """The first timestamp jump of the video stream, from every packet's timestamp (demux only):
    (frames before it, end of the last frame before it, time after it, typical step), seconds."""
    import av

    pts: list[int] = []
    with _open_pyav(path) as (container, stream):
        try:
            pts = [pk.pts for pk in container.demux(stream) if pk.size and pk.pts is not None]
        except (av.FFmpegError, OSError, ValueError):
            pass  # the packets read so far tell as much as they can
    times = np.unique(np.asarray(pts, dtype=np.int64))
    if len(times) < 2:
        return None
    steps = np.diff(times)
    typical = float(np.median(steps) * tb)
    seconds = steps.astype(np.float64) * float(tb)
    jumps = np.flatnonzero(seconds > max(TIMESTAMP_JUMP_S, JUMP_STEP_FACTOR * typical))
    if not len(jumps):
        return None
    i = int(jumps[0])
    before = float((int(times[i]) - origin) * tb)
    return i + 1, before + typical, float((int(times[i + 1]) - origin) * tb), typical


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe a video without decoding it all (decodes its first decodable frame, demuxes a few
    packets).

    Returns duration_s (seconds), n_frames (counted from packets when the container does not say),
    fps (average frames per second), max_fps (the highest rate, FFmpeg's base rate), width/height
    (display pixels: sample aspect ratio and rotation applied), rotation (degrees clockwise to
    display upright), vfr, and warnings (a timestamp jump: the duration then ends at the jump).
    Damaged packets before the first good frame are skipped. Raises VideoError for a missing,
    empty, non-video or audio-only file and for one with no decodable frame at all.
    """
    import av

    p = _check_path(path)
    with _open_pyav(p) as (container, stream):
        n_frames = int(stream.frames or 0)
        full_scan = n_frames <= 0  # e.g. Matroska reports no frame count: count packets instead
        pts: list[int] = []
        n_packets, end_pts, first = 0, None, None
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except (av.FFmpegError, OSError, ValueError) as e:
                if first is None:
                    raise VideoError(f"cannot decode {p}: {_reason(e)} (the file is damaged or in an "
                                     "unsupported format)") from None
                break  # the container is damaged further on: decoding will skip what it cannot read
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            n_packets += 1
            if packet.pts is not None:
                if len(pts) < VFR_PROBE_PACKETS:
                    pts.append(packet.pts)
                end = packet.pts + (packet.duration or 0)
                end_pts = end if end_pts is None else max(end_pts, end)
            if first is None:
                first = _decoded(stream, packet)
            if first is not None and not full_scan and n_packets >= VFR_PROBE_PACKETS:
                break
        if first is None:  # decoders with delay (B-frames, frame threads) give frames at flush
            first = _decoded(stream, None)
        if first is None:
            raise VideoError(f"{p} contains no decodable video frame (the file is damaged or in an unsupported "
                             "format); re-encode or re-copy it")
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
        max_fps = max(fps, float(base_rate or 0.0))
        warnings: list[str] = []
        # Frames at the base rate would cover far less than the duration: look for a timestamp jump.
        if base_rate and n_frames > 0 and duration > n_frames / float(base_rate) + TIMESTAMP_JUMP_S:
            jump = _timestamp_jump(p, origin, tb)
            if jump is not None:
                before, end_s, after_s, step_s = jump
                warnings.append(f"the video's timestamps jump from {clock(end_s - step_s)} to {clock(after_s)} "
                                f"after frame {before} of {n_frames} (a damaged or badly cut file): only the "
                                f"{clock(end_s)} before the jump are analysed; to analyse all of it, give it fresh "
                                "timestamps (ffmpeg -i IN -vf setpts=N/FRAME_RATE/TB OUT)")
                duration, fps = end_s, before / end_s
                max_fps = max(fps, float(base_rate))
        sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
        width, height = int(first.width), int(first.height)
        if sar and sar > 0 and sar != 1:
            width = max(1, round(width * float(sar)))  # display width, as a player shows it
        rotation = _clockwise_rotation(first)
        if rotation % 180 == QUARTER_TURN_DEG:
            width, height = height, width
        return VideoInfo(path=str(p), duration_s=duration, n_frames=n_frames, fps=fps, width=width,
                         height=height, rotation=rotation, vfr=_is_vfr(pts, average_rate, base_rate) and not warnings,
                         max_fps=max_fps, warnings=tuple(warnings))


# ---------------------------------------------------------------------------------------------
# Backends


class _Backend(Protocol):
    def sample(self, path: Path, info: VideoInfo, fps: float, max_side: int | None,
               chunk: int, skipped: list[tuple[float, float]], threads: int = 0) -> Iterator[Frames]: ...

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

    def blank(self) -> np.ndarray:
        """The image of a missing sample: black, at the output size (upright)."""
        return np.zeros(_upright_shape(self.size, self.rotation), dtype=np.uint8)


class _Batch:
    """The samples of one chunk being collected: images, times (NaN = missing), indices."""

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []
        self.times: list[float] = []
        self.indices: list[int] = []

    def add(self, image: np.ndarray, t: float, k: int) -> None:
        self.images.append(image)
        self.times.append(t)
        self.indices.append(k)

    def __len__(self) -> int:
        return len(self.images)

    def take(self, size: tuple[int, int], rotation: int) -> Frames:
        out = _stack(self.images, self.times, self.indices, size, rotation)
        self.images, self.times, self.indices = [], [], []
        return out


# Containers whose packet timestamps are frame counters in storage (decode) order, not presentation
# times: the decoder's per-frame pts come out permuted (measured on both AVI test clips, with MPEG-4
# packed B-frames and with H.264 B-frames). There the decoder's output order is the presentation
# order, so each output frame takes the smallest packet timestamp not yet used.
_COUNTER_PTS_FORMATS = frozenset({"avi"})


class _Undecoded:
    """Frames that sampling leaves undecoded.

    A frame no other frame is predicted from (FFmpeg's non-reference frames: most B-frames, ~45% of
    an H.264 stream with B-frames, ~40% of its decoding time) needs no decoding when no sample can
    show it: when no sample time falls between its own time and that of a frame read before it
    that comes after it on screen (the next frame on screen is no later than that one). The decoder
    is asked to skip such a packet's frame if it is a non-reference one; the packet's time span is
    kept, so that the gap it may leave is never taken for a lost stretch after a damaged packet.
    `shows_nothing(a, b)`: no sample time in [a, b)."""

    def __init__(self, shows_nothing: Callable[[float, float], bool]) -> None:
        self.shows_nothing = shows_nothing
        self._spans: list[tuple[float, float]] = []  # min-heap of (start, end) of frames maybe not decoded

    def add(self, start: float, end: float) -> None:
        heapq.heappush(self._spans, (start, end))

    def before(self, t: float) -> Iterator[tuple[float, float]]:
        """The spans of the frames maybe left undecoded that start before time t, in order (forgotten)."""
        while self._spans and self._spans[0][0] < t - TIME_EPS_S:
            yield heapq.heappop(self._spans)


_UNDECODED = object()  # _timed_frames: a frame it may have left undecoded


def _timed_frames(container: Any, stream: Any,
                  undecoded: _Undecoded | None = None) -> Iterator[tuple[Any, float | None]]:
    """Decode `stream` from the current position; yield (frame, presentation time in s or None).

    A packet the decoder refuses, or a frame it marks corrupt, yields (None, its time or None) and
    decoding goes on with the next packet; a container that cannot be read further yields
    (None, None) and ends. With `undecoded`, frames no sample shows may go undecoded (see
    _Undecoded) until the first damaged packet; after it, every frame is decoded. Each frame
    maybe left undecoded comes as (_UNDECODED, (start, end)) where it would have come out: before
    the first frame the decoder gives (good or corrupt) that comes after it on screen."""
    import av

    tb, origin = stream.time_base, _origin(stream)
    # int * int / int is rounded once, as float(Fraction) is, at a fraction of its cost per frame
    num, den = tb.numerator, tb.denominator
    reorder = container.format is not None and container.format.name in _COUNTER_PTS_FORMATS
    pending: list[int] = []  # min-heap of packet timestamps not yet given to a frame (reorder only)
    # Packet timestamps are presentation times except in `reorder` containers: only then can a
    # frame's place on screen be known before it is decoded.
    skipping = undecoded is not None and not reorder
    recent: deque[int] = deque(maxlen=UNDECODED_LOOKBACK_PACKETS)
    skip_mode = "DEFAULT"
    first_shown: int | None = None  # the first frame decoded: nothing before it is left undecoded

    def seconds(ts: int | None) -> float | None:
        return (ts - origin) * num / den if ts is not None else None

    def ask_decoder(mode: str) -> None:
        nonlocal skip_mode
        if mode != skip_mode:
            stream.codec_context.skip_frame = skip_mode = mode

    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except (av.FFmpegError, OSError, ValueError):
            yield None, None
            return
        if reorder and packet.size and packet.pts is not None:
            heapq.heappush(pending, packet.pts)
        if skipping:
            skip = False
            if packet.size and packet.pts is not None:
                if first_shown is not None and packet.pts > first_shown:
                    later = min((ts for ts in recent if ts > packet.pts), default=None)
                    start = seconds(packet.pts)
                    skip = later is not None and undecoded.shows_nothing(start, seconds(later))
                    if skip:
                        undecoded.add(start, start + (packet.duration or 0) * num / den)
                recent.append(packet.pts)
            ask_decoder("NONREF" if skip else "DEFAULT")
        try:
            frames = stream.decode(packet)  # the final empty packet flushes the decoder
        except (av.FFmpegError, OSError, ValueError):
            if reorder and packet.pts in pending:  # this packet will never give a frame
                pending.remove(packet.pts)
                heapq.heapify(pending)
            skipping = False  # from a damaged packet on, every frame is decoded
            ask_decoder("DEFAULT")
            yield None, seconds(packet.pts)
            continue
        for frame in frames:
            if reorder and pending:
                ts = heapq.heappop(pending)
            else:
                ts = frame.pts if frame.pts is not None else frame.dts
            if frame.is_corrupt and skipping:
                skipping = False
                ask_decoder("DEFAULT")
            if first_shown is None and ts is not None and not frame.is_corrupt:
                first_shown = ts
            if undecoded is not None and ts is not None:
                for span in undecoded.before(seconds(ts)):
                    yield _UNDECODED, span
            yield (None if frame.is_corrupt else frame), seconds(ts)


class _PyAVBackend:
    """Sequential decode with FFmpeg through PyAV; exact timestamps, bounded memory."""

    def sample(self, path: Path, info: VideoInfo, fps: float, max_side: int | None,
               chunk: int, skipped: list[tuple[float, float]], threads: int = 0) -> Iterator[Frames]:
        return self.sample_range(path, info, fps, max_side, chunk, skipped=skipped, threads=threads)

    def sample_range(self, path: Path, info: VideoInfo, fps: float, max_side: int | None, chunk: int,
                     k_start: int = 0, k_stop: int | None = None,
                     skipped: list[tuple[float, float]] | None = None, threads: int = 0) -> Iterator[Frames]:
        """Samples k_start <= k < k_stop only; seeks to the keyframe before t_{k_start} when k_start > 0.
        Stretches that could not be decoded are appended to `skipped` as (start_s, end_s). threads:
        FFmpeg's decoding threads (0: its own choice, one per core and one more).

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
        batch = _Batch()
        spans = skipped if skipped is not None else []
        k = k_start  # next target t_k = k * step
        prev, prev_t, prev_dur = None, 0.0, nominal_frame_s
        seen_end = 0.0  # where the last frame on the timeline ends, decoded or left undecoded
        # After a damaged packet (its error surfaces a few frames late with frame threads, so its
        # own timestamp says little), the first hole in the decoded timeline is what was lost.
        since_damage: int | None = None  # good frames decoded since the last damaged packet
        hole_s = max(TIME_EPS_S, HOLE_FRACTION * nominal_frame_s)
        blank: np.ndarray | None = None

        def missing() -> None:
            nonlocal k, blank
            if blank is None:
                blank = convert.blank()
            batch.add(blank, math.nan, k)
            k += 1

        def shown(frame: Any, t: float) -> None:
            nonlocal k
            batch.add(convert(frame), t, k)
            k += 1

        def shows_nothing(a: float, b: float) -> bool:  # no sample time in [a, b), with slack
            first = math.ceil((a - 2 * TIME_EPS_S) / step)
            return first * step >= b + 2 * TIME_EPS_S

        undecoded = _Undecoded(shows_nothing)
        with _open_pyav(path) as (container, stream):
            # Frame + slice threads: decoding is the bottleneck and FFmpeg's threads release the GIL.
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = threads
            tb = stream.time_base
            try:
                if k_start > 0:  # lands on the keyframe at or before t_{k_start}: exact from there
                    container.seek(_origin(stream) + int(math.floor(k_start * step / tb)), stream=stream,
                                   backward=True, any_frame=False)
            except (av.FFmpegError, OSError, ValueError) as e:
                raise VideoError(f"seeking in {path} failed: {_reason(e)} (the file is damaged; re-encode "
                                 "or re-copy it)") from None
            # Sequential decode, no per-sample seeking: with long GOPs every seek re-decodes from a
            # keyframe (measured 4x slower than decoding everything once).
            for frame, t in _timed_frames(container, stream, undecoded):
                if frame is _UNDECODED:  # a frame no sample shows, left undecoded: `t` is its span
                    start, end = t
                    if prev is None or start <= prev_t:
                        continue
                    t = start
                elif frame is None:
                    since_damage = 0
                    continue
                if t is None:
                    t = prev_t + prev_dur if prev is not None else 0.0
                if prev is not None and t <= prev_t:
                    continue  # a duplicate or out-of-order timestamp cannot be "shown" later
                expected = seen_end if prev is not None else 0.0
                hole = since_damage is not None and t > expected + hole_s
                # Every target before this frame (before the hole, when one ends here) shows `prev`,
                # or before the first frame, the first frame.
                limit = expected if hole else t
                while k < n_targets and k * step < limit - TIME_EPS_S:
                    if prev is not None:
                        shown(prev, prev_t)
                    else:
                        shown(frame, t)
                    if len(batch) >= chunk:
                        yield batch.take(convert.size, info.rotation)
                if hole:  # nothing decodable was shown from `expected` to t: those samples are missing
                    while k < n_targets and k * step < t - TIME_EPS_S:
                        missing()
                        if len(batch) >= chunk:
                            yield batch.take(convert.size, info.rotation)
                    spans.append((expected, t))
                    since_damage = None
                elif since_damage is not None:
                    since_damage += 1
                    if since_damage > DAMAGE_WINDOW_FRAMES:
                        since_damage = None  # the decoder concealed it: no frame was lost
                if k >= n_targets:
                    break
                if frame is _UNDECODED:  # on the timeline, but `prev` stays the frame to show
                    seen_end = max(seen_end, end if end > start else start + nominal_frame_s)
                    continue
                prev, prev_t = frame, t
                prev_dur = frame.duration * tb.numerator / tb.denominator if frame.duration else nominal_frame_s
                seen_end = prev_t + prev_dur
        if prev is None:
            raise VideoError(f"{path} contains no decodable video frame (the file is damaged or in an "
                             "unsupported format); re-encode or re-copy it")
        end = max(prev_t + prev_dur, 0.0)
        if since_damage is not None and k < n_targets:
            # The stream ended in a damaged stretch: from the last good frame on, nothing is known.
            while k < n_targets and k * step < end - TIME_EPS_S:
                shown(prev, prev_t)
                if len(batch) >= chunk:
                    yield batch.take(convert.size, info.rotation)
            if k < n_targets:
                spans.append((end, max(end, info.duration_s)))
            while k < n_targets:
                missing()
                if len(batch) >= chunk:
                    yield batch.take(convert.size, info.rotation)
        else:
            # End of stream: the last frame stays on screen until the video ends. Stop at its end
            # rather than at the container's duration so a truncated file does not repeat its last
            # frame for minutes.
            while k < n_targets and k * step <= end + TIME_EPS_S:
                shown(prev, prev_t)
                if len(batch) >= chunk:
                    yield batch.take(convert.size, info.rotation)
        if len(batch):
            yield batch.take(convert.size, info.rotation)

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
    """Finds the frame shown at ascending times, seeking to a keyframe only when it pays. Damaged
    packets are passed over: the frame shown is the last decodable one."""

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
            if frame is None or t is None:
                continue  # damaged, or without any timestamp: cannot be placed in time
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

    def _reader(self, path: Path, info: VideoInfo, max_side: int | None, threads: int = 0) -> Any:
        try:
            import decord
        except ImportError:
            raise ConfigError("the decord backend needs the decord package, which is not installed "
                              "(it has no wheels for macOS arm64 or Linux aarch64); use backend='pyav'") from None
        w, h = _output_size(info, max_side)
        if info.rotation % 180 == QUARTER_TURN_DEG:
            w, h = h, w  # decord applies rotation itself and takes the display (rotated) size
        try:
            return decord.VideoReader(str(path), ctx=decord.cpu(0), width=w, height=h, num_threads=threads)
        except (decord.DECORDError, RuntimeError) as e:
            raise VideoError(f"decord cannot open {path}: {_reason(e)}") from None

    def _timestamps(self, path: Path, vr: Any, info: VideoInfo) -> np.ndarray:
        """[n] float64 start time (s) of each frame, checked for sanity."""
        n = len(vr)
        if n == 0:
            raise VideoError(f"{path} contains no decodable video frame (decord)")
        ts = np.asarray(vr.get_frame_timestamp(np.arange(n)), dtype=np.float64).reshape(n, -1)[:, 0]
        tolerance = 1.0 + (1.0 / info.fps if info.fps > 0 else 0.0)
        if info.warnings and np.all(np.isfinite(ts)):  # the probe found a timestamp jump: keep what precedes it
            ts = ts[: max(1, int(np.searchsorted(ts, info.duration_s + tolerance, side="right")))]
        ok = (np.all(np.isfinite(ts)) and ts[0] >= -tolerance and ts[-1] <= info.duration_s + tolerance
              and np.all(np.diff(ts) >= -TIME_EPS_S))
        if not ok:
            raise VideoError(f"decord returns invalid frame timestamps for {path} (a known decord 0.6 "
                             "bug, e.g. with AVI files); use backend='pyav'")
        return ts

    @staticmethod
    def _fetch(vr: Any, indices: list[int]) -> dict[int, np.ndarray]:
        """The decodable frames among `indices` (one batch; frame by frame when the batch fails)."""
        import decord

        if not indices:
            return {}
        try:
            return dict(zip(indices, vr.get_batch(indices).asnumpy()))
        except (decord.DECORDError, RuntimeError):
            pass
        out = {}
        for i in indices:
            try:
                out[i] = vr[i].asnumpy()
            except (decord.DECORDError, RuntimeError):
                continue  # damaged: its samples are missing
        return out

    def sample(self, path: Path, info: VideoInfo, fps: float, max_side: int | None,
               chunk: int, skipped: list[tuple[float, float]], threads: int = 0) -> Iterator[Frames]:
        vr = self._reader(path, info, max_side, threads)
        ts = self._timestamps(path, vr, info)
        frame_s = 1.0 / info.fps if info.fps > 0 else 0.0
        targets = np.arange(expected_samples(info, fps), dtype=np.float64) / fps
        targets = targets[targets <= ts[-1] + frame_s + TIME_EPS_S]  # not past the last frame's end
        idx = np.clip(np.searchsorted(ts, targets + TIME_EPS_S, side="right") - 1, 0, len(ts) - 1)
        size = _output_size(info, max_side)
        blank = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        last: tuple[int, np.ndarray | None] | None = None  # the previous chunk's last frame
        bad: set[int] = set()
        for start in range(0, len(idx), chunk):
            part = idx[start:start + chunk]
            # A frame shown at several sample times (long VFR gaps, fps above the video's) is
            # decoded once: decord decodes every index it is given, repeats included.
            unique, inverse = np.unique(part, return_inverse=True)
            fetch = [int(i) for i in unique if last is None or i != last[0]]
            decoded: dict[int, np.ndarray | None] = dict(self._fetch(vr, fetch))
            bad.update(i for i in fetch if i not in decoded)
            if last is not None:
                decoded.setdefault(last[0], last[1])
            images = [decoded.get(int(i)) for i in unique[inverse]]
            last = (int(part[-1]), images[-1])
            times = [math.nan if im is None else float(ts[i]) for im, i in zip(images, part)]
            yield _stack([blank if im is None else im for im in images], times,
                         list(range(start, start + len(part))), size, 0)
        for i in sorted(bad):  # each damaged frame's stretch: until the next frame starts
            end = float(ts[i + 1]) if i + 1 < len(ts) else float(ts[i]) + frame_s
            if skipped and skipped[-1][1] >= float(ts[i]) - TIME_EPS_S:
                skipped[-1] = (skipped[-1][0], end)
            else:
                skipped.append((float(ts[i]), end))

    def frames_at(self, path: Path, info: VideoInfo, times_s: np.ndarray,
                  max_side: int | None) -> Frames:
        vr = self._reader(path, info, max_side)
        ts = self._timestamps(path, vr, info)
        idx = np.clip(np.searchsorted(ts, times_s + TIME_EPS_S, side="right") - 1, 0, len(ts) - 1)
        size = _output_size(info, max_side)
        if len(idx) == 0:
            return _stack([], [], [], size, info.rotation)
        unique = np.unique(idx).tolist()
        decoded = self._fetch(vr, unique)
        # A damaged frame: the next decodable one within FORWARD_DECODE_LIMIT_S stands in for it.
        for i in unique:
            j = i
            while j not in decoded and j + 1 < len(ts) and ts[j + 1] - ts[i] <= FORWARD_DECODE_LIMIT_S:
                j += 1
                decoded.update(self._fetch(vr, [j]))
            if j not in decoded:
                raise VideoError(f"decoding {path} failed near t={ts[i]:.3f} s (the file is damaged; re-encode "
                                 "it, or use backend='pyav', which decodes around damage)")
            decoded[i] = decoded[j]
        return _stack([decoded[int(i)] for i in idx], ts[idx].tolist(), list(range(len(idx))), size, 0)


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
           backend: str = DEFAULT_BACKEND, *, info: VideoInfo | None = None,
           skipped: list[tuple[float, float]] | None = None, threads: int = 0) -> Iterator[Frames]:
    """Yield the frames shown at t_k = k / fps seconds (k = 0, 1, ... while t_k <= duration), in chunks.

    Each Frames holds at most `chunk` frames: images [n, H, W, 3] uint8 RGB upright, scaled so that
    max(H, W) <= max_side when given (aspect kept); times_s [n] float64 real presentation time (s)
    of each frame (the last frame with pts <= t_k, the first frame for t_k before it), NaN for a
    missing sample (one in a stretch that could not be decoded; its image is black and must not be
    used); indices [n] int64 = k. Memory is bounded by one chunk. `info` (from `probe`) skips
    probing again. `skipped`: a list that receives every stretch (start_s, end_s) decoding skipped.
    threads: the decoder's threads (0: FFmpeg's choice, about one per core).
    fps must not exceed the video's own frame rate (`check_sampling_rate`).
    Raises VideoError for unreadable files and for a file with no decodable frame.
    """
    max_side = _check_max_side(max_side)
    if int(chunk) < 1:
        raise ConfigError(f"chunk must be at least 1 frame, got {chunk}")
    impl = _backend(backend)
    p = _check_path(path)
    info = info if info is not None else probe(p)
    fps = check_sampling_rate(info, fps)
    if int(threads) < 0:
        raise ConfigError(f"threads must be 0 (the decoder's choice) or more, got {threads}")
    return impl.sample(p, info, fps, max_side, int(chunk), skipped if skipped is not None else [], int(threads))


def frames_at(path: str | os.PathLike[str], times_s: Sequence[float] | np.ndarray, max_side: int | None = None,
              backend: str = DEFAULT_BACKEND, *, info: VideoInfo | None = None) -> Frames:
    """The frames shown at the given times (seconds), in the given order (for thumbnails and
    the CLIP filtering frames). Seeks to the keyframe before each time and decodes forward.

    Returns Frames with images [n, H, W, 3] uint8 RGB upright (max(H, W) <= max_side when given),
    times_s [n] the real presentation times of the returned frames, indices [n] = 0..n-1. A time
    past the end gives the last frame; in a damaged stretch, the last decodable frame before it.
    """
    max_side = _check_max_side(max_side)
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(times)):
        raise ConfigError(f"frame times must be finite numbers of seconds, got {times.tolist()}")
    impl = _backend(backend)
    p = _check_path(path)
    info = info if info is not None else probe(p)
    # Past the end every time shows the last frame: clipping keeps seek offsets finite.
    times = np.clip(times, 0.0, max(info.duration_s, 0.0) + 1.0)
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
