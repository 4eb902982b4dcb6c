"""Small real media files generated with PyAV for the tests: a clip of any size and length, and an
audio-only file. Shared by the video tests and the bad-input table."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

LUMA_SPAN = 200  # grey levels 40..239: 14 distinct frames, then the ramp starts again


def write_clip(path: Path, n_frames: int, size: tuple[int, int] = (64, 48), rate: int = 25,
               codec: str = "mpeg4") -> Path:
    """A small real clip: frame i is grey (luma 40 + 15 i, wrapping after 13 frames so long clips stay
    in range) with a red top-left quarter.

    Frames are built directly in YUV 4:2:0, which keeps an 8K test clip cheap to make.
    """
    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n_frames):
            planes = np.full((h * 3 // 2, w), 128, dtype=np.uint8)  # Y rows, then U and V rows
            planes[:h] = 40 + (15 * i) % LUMA_SPAN
            planes[: h // 2, : w // 2] = 81  # red: Y 81, U 90, V 240
            u = planes[h: h + h // 4].reshape(h // 2, w // 2)
            v = planes[h + h // 4:].reshape(h // 2, w // 2)
            u[: h // 4, : w // 4], v[: h // 4, : w // 4] = 90, 240
            for p in s.encode(av.VideoFrame.from_ndarray(planes, format="yuv420p")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def write_audio_only(path: Path) -> Path:
    """A half-second 440 Hz sine as WAV: a real media file without any video stream."""
    rate = 16000
    t = np.arange(rate // 2) / rate
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)[None, :]
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def write_h264(path: Path, n_frames: int, rate: int = 25, gop: int = 25, size: tuple[int, int] = (64, 48)) -> Path:
    """A real H.264 clip (libx264, no B-frames, a keyframe every `gop` frames): frame i is grey
    (luma ramp as in write_clip). Its packets carry AVCC NAL length prefixes, as MP4 stores them."""
    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"g": str(gop), "keyint_min": str(gop), "bf": "0", "tune": "zerolatency"}
        for i in range(n_frames):
            planes = np.full((h * 3 // 2, w), 128, dtype=np.uint8)
            planes[:h] = 40 + (15 * i) % LUMA_SPAN
            for p in s.encode(av.VideoFrame.from_ndarray(planes, format="yuv420p")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def flip_nal_length(src: Path, dst: Path, at_s: float) -> Path:
    """A copy of an MP4 (H.264) clip with one damaged packet: the NAL length prefix of the packet
    presented at `at_s` seconds gets its top bit pattern flipped, as a bad disk sector or a torn
    download leaves it. FFmpeg refuses that packet ("Invalid data found")."""
    with av.open(str(src)) as c:
        stream = c.streams.video[0]
        packets = [(float(p.pts * stream.time_base), p.pos) for p in c.demux(stream) if p.size]
    pos = min(packets, key=lambda tp: abs(tp[0] - at_s))[1]
    data = bytearray(src.read_bytes())
    data[pos] ^= 0x40  # the length's high byte: the NAL unit now claims ~1 GB
    dst.write_bytes(bytes(data))
    return dst


def write_timestamp_jump(path: Path, n_frames: int = 50, rate: int = 25, jump_s: float = 36000.0) -> Path:
    """A clip of n_frames at `rate` whose last packet says it comes `jump_s` seconds later (a file
    cut badly): the container then claims a duration of hours."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=rate)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        packets = []
        for i in range(n_frames):
            planes = np.full((72, 64), 128, dtype=np.uint8)
            planes[:48] = 40 + (15 * i) % LUMA_SPAN
            packets += s.encode(av.VideoFrame.from_ndarray(planes, format="yuv420p"))
        packets += s.encode()
        shift = int(jump_s / packets[-1].time_base)
        packets[-1].pts += shift
        packets[-1].dts += shift
        for p in packets:
            c.mux(p)
    return path
