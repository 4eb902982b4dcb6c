"""Content-addressed store of per-frame scores, so that no model call is ever paid twice.

An entry is a prefix of a per-frame array (frames are scored in time order), kept with the sampled
times it belongs to and a `complete` flag once the video has been read to its end. Keys are hashes
of everything the values depend on (video content, model, exact prompt text, sampling settings).
Writes are atomic (temp file + rename); an entry's checksum covers its key, its values and times,
so a corrupt entry, or one moved under another key's name, is reported and recomputed.

The cache is an optimisation, never a reason to fail: a folder that is read-only, full, a file, or
holds something unusable where an entry should be makes `get` answer "not cached" and `put` do
nothing. Each problem is logged and handed to whoever `watch`es the cache (a run collects them as
warnings for its result), one message per reason, naming the cache folder.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from zeal.atomic import write_atomic

log = logging.getLogger(__name__)

# 2: the checksum covers the entry's key. Entries of schema 1 are simply recomputed.
SCHEMA = 2
# What a user can do about any cache problem (the same for every reason).
CACHE_FIX = "the analysis goes on without caching; fix the folder or choose another with --cache-dir (ZEAL_CACHE_DIR)"


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


def _checksum(key: str, values: np.ndarray, times_s: np.ndarray, complete: bool) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(key.encode())  # an entry renamed (or swapped) to another key's file fails its check
    for arr in (values, times_s):
        h.update(str((arr.dtype.str, arr.shape)).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(b"1" if complete else b"0")
    return h.hexdigest()


def _reason(exc: OSError) -> str:
    """Why a write or read failed, in words a user acts on."""
    if exc.errno == errno.EROFS:
        return "it is on a read-only file system"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or type(exc).__name__


class _Notes:
    """The problems one watcher was told about: one message per reason, in order."""

    def __init__(self) -> None:
        self.by_reason: dict[str, str] = {}

    @property
    def messages(self) -> list[str]:
        return list(self.by_reason.values())


class ScoreCache:
    """Entries live under root/<key[:2]>/<key>.npz."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self._watchers: list[_Notes] = []
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    # --- problems ------------------------------------------------------------------------------
    @contextmanager
    def watch(self) -> Iterator[_Notes]:
        """Collect the cache problems met while the block runs (by any thread): `.messages`, one
        per reason. Runs at the same time each see every problem: they share the folder."""
        notes = _Notes()
        with self._lock:
            self._watchers.append(notes)
        try:
            yield notes
        finally:
            with self._lock:
                self._watchers.remove(notes)

    def _problem(self, reason: str, detail: str = "") -> None:
        message = f"the score cache {self.root} cannot be used: {reason}{detail}; {CACHE_FIX}"
        with self._lock:
            for notes in self._watchers:
                notes.by_reason.setdefault(reason, message)
            first = reason not in self._logged
            self._logged.add(reason)
        if first:  # a broken folder fails every write: log it once, not once per entry
            log.warning("%s", message)

    def _write_problem(self, exc: OSError, path: Path) -> None:
        if self.root.exists() and not self.root.is_dir():
            self._problem("it is a file, not a folder")
        elif path.is_dir():
            self._problem("a folder stands where an entry should be", f" ({path})")
        else:
            self._problem(f"cannot write to it ({_reason(exc)})")

    # --- entries ---------------------------------------------------------------------------------
    def get(self, key: str) -> CacheEntry | None:
        """The stored entry, or None if absent or unusable (a problem is reported, then ignored)."""
        path = self._path(key)
        try:
            mode = path.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            self._problem(f"cannot read its entries ({_reason(exc)})", f" ({path})")
            return None
        if stat.S_ISDIR(mode):
            self._problem("a folder stands where an entry should be", f" ({path})")
            return None
        if not stat.S_ISREG(mode):  # a named pipe or a device: reading it could block forever
            self._problem("an entry is not a regular file", f" ({path})")
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                values, times_s = data["values"], data["times_s"]
                complete = bool(data["complete"])
                ok = int(data["schema"]) == SCHEMA and str(data["checksum"]) == _checksum(key, values, times_s,
                                                                                          complete)
        except OSError as exc:
            if exc.errno is None:  # numpy's own "cannot read" of a damaged file
                log.warning("cache entry %s is unreadable (%s); it will be recomputed", path, exc)
            else:
                self._problem(f"cannot read its entries ({_reason(exc)})", f" ({path})")
            return None
        except Exception as exc:  # truncated zip, bad header, missing array: all mean "recompute"
            log.warning("cache entry %s is unreadable (%s); it will be recomputed", path, exc)
            return None
        if not ok or len(values) != len(times_s):
            log.warning("cache entry %s failed its checksum; it will be recomputed", path)
            return None
        return CacheEntry(values, times_s, complete)

    def put(self, key: str, values: np.ndarray, times_s: np.ndarray, complete: bool) -> None:
        """Store atomically: readers see the old entry or the new one, never half of one. A folder
        that refuses the write is reported (see `watch`), never raised."""
        values = np.asarray(values)
        times_s = np.asarray(times_s, dtype=np.float64)
        buf = io.BytesIO()
        np.savez(buf, values=values, times_s=times_s, complete=np.bool_(complete), schema=np.int64(SCHEMA),
                 checksum=np.str_(_checksum(key, values, times_s, complete)))
        path = self._path(key)
        try:
            write_atomic(path, buf.getvalue())
        except OSError as exc:
            self._write_problem(exc, path)
