"""Decoding ahead of the models: the chunks of a decoder, produced by a background thread or a forked
child process at most `depth` chunks ahead of the consumer, in order, with errors and cancel reaching
the consumer at once. The pipeline's `_stream` takes its chunks from here (VideoConfig.decode_ahead,
decode_in, decode_threads)."""

from __future__ import annotations

import mmap
import multiprocessing
import os
import queue
import signal
import sys
import threading
from typing import Callable, Iterable, Iterator

import numpy as np

from zeal.errors import CANCELLED_MESSAGE, Cancelled, VideoError, ZealError
from zeal.types import Frames

CancelFn = Callable[[], bool]
# decode(skipped) -> the chunks; `skipped` receives the stretches decoding skipped
DecodeFn = Callable[[list], Iterable[Frames]]

# While the consumer waits for a chunk it asks cancel() this often; the producer looks this often
# whether it should stop.
CANCEL_POLL_S = 0.05
# A forked child decodes (VideoConfig.decode_in='process') only on Linux: fork is unsafe on macOS, absent on Windows.
FORK_AVAILABLE = sys.platform.startswith("linux")
PR_SET_PDEATHSIG = 1  # linux/prctl.h
_CHUNK, _END, _ERROR = "chunk", "end", "error"


def decoder_threads(requested: int | None, overlapped: bool, models_on_cpu: bool) -> int:
    """FFmpeg threads for the decoder (0: FFmpeg's choice, one per core). `requested` (a user's
    VideoConfig.decode_threads) wins; else, when the decoder works beside models running on this
    CPU, it gets the cores torch leaves free and at least one: more threads than cores only add
    frame-threading overhead (measured ~12% more CPU per frame) to a machine that is already full."""
    if requested is not None:
        return requested
    if not (overlapped and models_on_cpu):
        return 0
    import torch

    return max(1, _cores() - torch.get_num_threads())


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (containers, taskset)
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def decode_ahead(decode: DecodeFn, depth: int, decode_in: str, cancel: CancelFn | None, skipped: list,
                 source: str, chunk_shape: tuple[int, ...] | None = None) -> "DecodeAhead":
    """The context manager that yields decode(skipped)'s chunks: in the consumer's thread (depth 0),
    a forked child (decode_in "process", where fork is available and allowed) or a thread. `source`
    names the video in errors; `chunk_shape` [chunk, H, W, 3], the largest chunk, lets a child hand
    its chunks over in shared memory."""
    # a daemonic process (a multiprocessing.Pool worker) may not start children: a thread decodes there
    if depth and decode_in == "process" and FORK_AVAILABLE and not multiprocessing.current_process().daemon:
        return DecodeInProcess(decode, depth, cancel, skipped, source, chunk_shape)
    return DecodeAhead(decode, depth, cancel, skipped)


class DecodeAhead:
    """The chunks of `decode(skipped)` in order, decoded by a background thread at most `depth` chunks
    ahead of the consumer (depth 0: decoded in the consumer's thread, one chunk at a time).

    A decoding error reaches the consumer as soon as the chunks decoded before it are taken, as it
    would without the thread; while the consumer waits for a chunk it asks cancel() every
    CANCEL_POLL_S and raises Cancelled at once. Leaving the `with` block (normally, by an error or a
    cancel) stops the thread: it decodes nothing after the chunk it is on.
    """

    def __init__(self, decode: DecodeFn, depth: int, cancel: CancelFn | None, skipped: list) -> None:
        self._decode, self._depth, self._cancel, self._skipped = decode, depth, cancel, skipped
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Iterable[Frames]:
        if self._depth == 0:
            return self._decode(self._skipped)
        self._thread = threading.Thread(target=self._produce, name="zeal-decode-ahead", daemon=True)
        self._thread.start()
        return self._consume()

    def __exit__(self, *exc_info) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._drain()
        # A producer waiting on the full queue ends within CANCEL_POLL_S; one in the middle of a chunk
        # finishes that chunk, drops it and ends by itself: a cancel does not wait for it.
        self._thread.join(2 * CANCEL_POLL_S)
        self._drain()

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def _put(self, item: tuple) -> bool:
        """Hand one item to the consumer; False when asked to stop first."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=CANCEL_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        chunks = None
        try:
            chunks = iter(self._decode(self._skipped))
            for chunk in chunks:
                if not self._put((_CHUNK, chunk)):
                    return
            self._put((_END, None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put((_ERROR, error))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:  # the decoder's file is closed by the thread that used it
                close()

    def _consume(self) -> Iterator[Frames]:
        while True:
            try:
                kind, value = self._queue.get(timeout=CANCEL_POLL_S)
            except queue.Empty:
                if self._cancel is not None and self._cancel():
                    raise Cancelled(CANCELLED_MESSAGE) from None
                self._check_producer()
                continue
            if kind == _END:
                self._ended(value)
                return
            if kind == _ERROR:
                raise value
            yield self._received(value)

    def _received(self, chunk):
        """The chunk as the consumer gets it."""
        return chunk

    def _ended(self, value) -> None:
        """The producer's last word (the child process sends the stretches it skipped)."""

    def _check_producer(self) -> None:
        """Raise when the producer is gone without a last word (a child process that crashed)."""


class _Slots:
    """`count` chunk-sized slots of memory shared with a forked child: the child writes a chunk's
    images into slot i % count and sends only its times and indices; the consumer copies the images
    out and frees the slot. Sending them through the pipe instead cost ~10x the CPU on both sides
    (pickling and ~170 pipe round trips per 11 MB chunk), most of it in the decoder, the slowest stage.
    The chunks are taken in order, so a semaphore of `count` free slots is all the bookkeeping."""

    def __init__(self, context, count: int, chunk_shape: tuple[int, ...]) -> None:
        self.count, self.shape = count, tuple(chunk_shape)
        self.image_bytes = int(np.prod(self.shape[1:]))
        self.slot_bytes = self.shape[0] * self.image_bytes
        self.memory = mmap.mmap(-1, max(1, count * self.slot_bytes))  # anonymous, shared with the child
        self.free = context.Semaphore(count)

    def view(self, slot: int, n: int) -> np.ndarray:
        """The first n images of a slot, [n, H, W, 3]."""
        return np.frombuffer(self.memory, np.uint8, n * self.image_bytes,
                             slot * self.slot_bytes).reshape((n, *self.shape[1:]))

    def fits(self, images: np.ndarray) -> bool:
        return images.dtype == np.uint8 and images.shape[1:] == self.shape[1:] and len(images) <= self.shape[0]

    def close(self) -> None:
        try:
            self.memory.close()
        except BufferError:  # a view still held somewhere: the mapping goes with it
            pass


class DecodeInProcess(DecodeAhead):
    """As DecodeAhead, with the decoder in a forked child process: it shares no GIL with the scoring (a
    decoding thread waits for the GIL at every decoded frame, ~30 per sampled one, while the models run
    Python), and a decoder that crashes on a damaged file ends only the child, with a clear error. At most
    `depth` decoded chunks wait for the consumer, their images in shared memory (`_Slots`) when
    `chunk_shape` is known; the child ends when the run does or its parent is gone."""

    def __init__(self, decode: DecodeFn, depth: int, cancel: CancelFn | None, skipped: list, source: str,
                 chunk_shape: tuple[int, ...] | None = None) -> None:
        super().__init__(decode, depth, cancel, skipped)
        context = multiprocessing.get_context("fork")
        self._source = source
        self._in_thread = self._queue
        self._queue = context.Queue(maxsize=max(1, depth))
        self._slots: _Slots | None = None
        if chunk_shape is not None:
            try:
                self._slots = _Slots(context, max(1, depth), chunk_shape)
            except (OSError, ValueError, OverflowError):  # no shared memory to be had: through the pipe
                self._slots = None
        self._taken = 0
        self._process = context.Process(target=self._child, args=(os.getpid(),), name="zeal-decode", daemon=True)

    def __enter__(self) -> Iterable[Frames]:
        try:
            self._process.start()
        except OSError:  # no child to be had (memory, process limits): a thread decodes instead
            self._close_shared()
            self._queue, self._process = self._in_thread, None
            return super().__enter__()
        return self._consume()

    def __exit__(self, *exc_info) -> None:
        if self._process is None:
            super().__exit__(*exc_info)
            return
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(5.0)
        self._close_shared()

    def _close_shared(self) -> None:
        self._queue.close()
        self._queue.cancel_join_thread()  # chunks nobody will take: do not wait to flush them
        if self._slots is not None:
            self._slots.close()

    def _received(self, message) -> Frames:
        if isinstance(message, Frames):  # from the thread that decodes when no child could start
            return message
        images, times_s, indices = message
        if isinstance(images, int):  # a slot: copy the images out, so that the slot can be reused
            slot = images
            images = self._slots.view(slot, len(times_s)).copy()
            self._slots.free.release()
        elif self._slots is not None:
            self._slots.free.release()  # a chunk that did not fit a slot still held one
        return Frames(images=images, times_s=times_s, indices=indices)

    def _ended(self, skipped) -> None:
        if self._process is not None:  # the thread that decodes when no child could start filled it itself
            self._skipped.extend(skipped)

    def _check_producer(self) -> None:
        if self._process is not None and not self._process.is_alive() and self._queue.empty():
            raise VideoError(f"decoding {self._source} stopped: the decoder process ended with code "
                             f"{self._process.exitcode} (a damaged file? re-encode it, or set "
                             "VideoConfig(decode_in='thread'))")

    # --- in the child -----------------------------------------------------------------------
    def _child(self, parent: int) -> None:
        """decode() into the queue, then (END, skipped) or (ERROR, error)."""
        _end_with_parent()
        out = self._queue
        if os.getppid() != parent:  # the run was gone before that took hold
            out.cancel_join_thread()
            return
        skipped: list = []

        def alive() -> bool:  # an orphan (its run was killed) stops
            return os.getppid() == parent

        def send(item) -> bool:
            while alive():
                try:
                    out.put(item, timeout=1.0)
                    return True
                except queue.Full:
                    continue
            return False

        def hand_over(chunk: Frames) -> bool:
            slots = self._slots
            if slots is None:
                return send((_CHUNK, (chunk.images, chunk.times_s, chunk.indices)))
            while not slots.free.acquire(timeout=1.0):
                if not alive():
                    return False
            images: np.ndarray | int = chunk.images
            if slots.fits(chunk.images):
                slot = self._taken % slots.count
                slots.view(slot, len(chunk))[:] = chunk.images
                images = slot
            self._taken += 1
            return send((_CHUNK, (images, chunk.times_s, chunk.indices)))

        try:
            for chunk in self._decode(skipped):
                if not hand_over(chunk):
                    break  # an orphan
            else:
                send((_END, skipped))
        except BaseException as error:  # noqa: BLE001 - handed to the run, which raises it
            send((_ERROR, _portable(error)))
        if not alive():
            # An orphan: nobody reads the pipe, whose reading end this process holds too, so a flush
            # would wait for ever. What it holds is dropped.
            out.cancel_join_thread()
            return
        out.close()
        out.join_thread()  # all of it sent before the child exits


def _end_with_parent() -> None:
    """Ask Linux to kill this process when the thread that forked it ends: a run killed with SIGKILL
    (the app killed while scoring) leaves no decoder behind, wherever the decoder is stuck."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    except (OSError, AttributeError):  # not Linux's libc: the parent check in send() remains
        pass


def _portable(error: BaseException) -> ZealError:
    """An error of the decoding child as one the parent can unpickle and show."""
    if isinstance(error, ZealError):
        try:
            return type(error)(*error.args)
        except TypeError:
            pass
    return VideoError(f"decoding failed: {type(error).__name__}: {error}")
