"""Content-addressed store of per-frame scores, so that no model call is ever paid twice.

An entry is a prefix of a per-frame array (frames are scored in time order), kept with the sampled
times it belongs to and a `complete` flag once the video has been read to its end. Keys are hashes
of everything the values depend on (video content, model, exact prompt text, sampling settings).
Writes are atomic (temp file + rename); an unreadable or corrupt entry is reported and recomputed.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zeal.atomic import write_atomic

log = logging.getLogger(__name__)

SCHEMA = 1


@dataclass
class CacheEntry:
    """values: [L, ...] scores of the first L sampled frames; times_s: [L] float64 seconds."""

    values: np.ndarray
    times_s: np.ndarray
    complete: bool

    def __len__(self) -> int:
        return len(self.times_s)


def cache_key(*parts: object) -> str:
    """A stable hex key for any JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.blake2b(blob, digest_size=20).hexdigest()


def _checksum(values: np.ndarray, times_s: np.ndarray, complete: bool) -> str:
    h = hashlib.blake2b(digest_size=16)
    for arr in (values, times_s):
        h.update(str((arr.dtype.str, arr.shape)).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(b"1" if complete else b"0")
    return h.hexdigest()


class ScoreCache:
    """Entries live under root/<key[:2]>/<key>.npz."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str) -> CacheEntry | None:
        """The stored entry, or None if absent or unusable (a corrupt file is reported, then ignored)."""
        path = self._path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                values, times_s = data["values"], data["times_s"]
                complete = bool(data["complete"])
                ok = int(data["schema"]) == SCHEMA and str(data["checksum"]) == _checksum(values, times_s, complete)
        except Exception as exc:  # truncated zip, bad header, missing array: all mean "recompute"
            log.warning("cache entry %s is unreadable (%s); it will be recomputed", path, exc)
            return None
        if not ok or len(values) != len(times_s):
            log.warning("cache entry %s failed its checksum; it will be recomputed", path)
            return None
        return CacheEntry(values, times_s, complete)

    def put(self, key: str, values: np.ndarray, times_s: np.ndarray, complete: bool) -> None:
        """Store atomically: readers see the old entry or the new one, never half of one."""
        values = np.asarray(values)
        times_s = np.asarray(times_s, dtype=np.float64)
        buf = io.BytesIO()
        np.savez(buf, values=values, times_s=times_s, complete=np.bool_(complete), schema=np.int64(SCHEMA),
                 checksum=np.str_(_checksum(values, times_s, complete)))
        write_atomic(self._path(key), buf.getvalue())
