"""The one device resolver of every scorer: "auto" picks the best available accelerator, an explicit
device must exist (a clear error now rather than a crash in the first forward)."""

from __future__ import annotations

from zeal.errors import ModelError

DEVICE_KINDS = ("cpu", "cuda", "mps")


def _mps_available(torch) -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(device: str = "auto") -> str:
    """"auto" -> "cuda" if available, else "mps", else "cpu"; "cpu", "cuda", "cuda:N", "mps" as given
    when available. ModelError naming the fix otherwise."""
    import torch

    device = str(device)
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available(torch) else "cpu"
    kind = device.split(":")[0]
    if kind not in DEVICE_KINDS:
        raise ModelError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} asked for but CUDA is not available; use device='auto' or 'cpu'")
    if kind == "mps" and not _mps_available(torch):
        raise ModelError(f"device {device!r} asked for but Apple MPS is not available; use 'auto' or 'cpu'")
    return device


def gpu_present() -> bool:
    """Whether "auto" finds an accelerator (CUDA or Apple MPS): what decides the default preset."""
    try:
        return resolve_device("auto") != "cpu"
    except ImportError:  # no torch at all: nothing will run on a GPU
        return False
