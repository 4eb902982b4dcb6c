"""Is each configured model on this machine, and if not, how to get it; and the check that makes a
missing model fail in seconds instead of after a minute of hub retries.

`model_availability(config)` reads only the file system (local folders and files, the Hugging Face
cache): no network, no heavy import, milliseconds. `require_obtainable(status)` runs before a model
that is not here is loaded: in offline mode, or when one short TCP connect to the hub fails, it raises
one short ModelError naming the model and the fix.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from zeal.errors import ModelError
from zeal.scorers import REMOTE_PREFIX
from zeal.scorers.identity import hub_cache_dir, hub_snapshot

# One connect attempt to the hub, in seconds: long enough for a slow link, short enough that a machine
# without network hears about it at once.
HUB_CONNECT_TIMEOUT_S = 3.0
DEFAULT_HUB = "https://huggingface.co"
HTTPS_PORT = 443
HTTP_PORT = 80
TRUE_WORDS = ("1", "true", "yes", "on")
# Weight file names open_clip downloads from a hub repo.
OPEN_CLIP_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


@dataclass(frozen=True)
class ModelStatus:
    """One configured model. role: "lvlm" or "clip"; name: as configured; present: usable without a
    download; where: "local folder", "local file", "Hugging Face cache", "server" or "not on this
    machine"; fix: what to do to get it (empty when present)."""

    role: str
    name: str
    present: bool
    where: str
    fix: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"role": self.role, "name": self.name, "present": self.present, "where": self.where,
                "fix": self.fix}


def offline() -> bool:
    """The user asked for no hub access (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE)."""
    return any(os.environ.get(v, "").strip().lower() in TRUE_WORDS for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_address() -> tuple[str, int]:
    """(host, port) of the hub endpoint ($HF_ENDPOINT or huggingface.co)."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or DEFAULT_HUB)
    port = url.port or (HTTP_PORT if url.scheme == "http" else HTTPS_PORT)
    return url.hostname or "huggingface.co", port


def hub_reachable(timeout_s: float = HUB_CONNECT_TIMEOUT_S) -> bool:
    """Whether one TCP connection to the hub opens within timeout_s."""
    try:
        with socket.create_connection(hub_address(), timeout=timeout_s):
            return True
    except OSError:
        return False


def _is_path(name: str) -> bool:
    """A name that can only be a path (a hub id is "name" or "org/name")."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1


def lvlm_status(model: str) -> ModelStatus:
    """Availability of an LVLM given as a local folder, a hub id or an openai:... server spec."""
    if model.startswith(REMOTE_PREFIX):
        return ModelStatus("lvlm", model, True, "server")
    path = Path(model).expanduser()
    if path.is_dir():
        return ModelStatus("lvlm", model, True, "local folder")
    if _is_path(model):
        return ModelStatus("lvlm", model, False, "not on this machine",
                           f"no folder {path}: pass --lvlm with the folder that holds the model"
                           " (config.json, weights, processor files)")
    if hub_snapshot(model) is not None:
        return ModelStatus("lvlm", model, True, "Hugging Face cache")
    return ModelStatus("lvlm", model, False, "not on this machine",
                       f"download it where there is internet (`hf download {model}`) into the Hugging Face cache"
                       " (HF_HOME), or pass --lvlm /path/to/model-folder")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _cached_repo_names(cache_dir: str | None = None) -> list[str]:
    """Names of the model repos in the hub cache that hold at least one snapshot."""
    root = Path(cache_dir or hub_cache_dir())
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    return [e.name[len("models--"):].replace("--", "/") for e in entries
            if e.name.startswith("models--") and any((e / "snapshots").glob("*/*"))]


def clip_weights_repo(model: str, pretrained: str) -> str | None:
    """The hub repo open_clip downloads `pretrained` of `model` from, when open_clip is already loaded
    (importing it costs seconds of torch import; the loader asks with it loaded)."""
    if "open_clip" not in sys.modules:
        return None
    import open_clip

    try:
        repo = (open_clip.get_pretrained_cfg(model, pretrained) or {}).get("hf_hub") or ""
    except Exception:  # an architecture open_clip does not know: no repo
        return None
    return repo.strip("/") or None


def clip_status(model: str, pretrained: str, cache_dir: str | None = None) -> ModelStatus:
    """Availability of CLIP weights: a local checkpoint file, or an open_clip tag in the hub cache
    (cache_dir, default the user's; exact when open_clip is loaded, else by the cached repos' names,
    which carry the tag)."""
    name = f"{model} / {pretrained}"
    if not pretrained:
        return ModelStatus("clip", name, True, "random weights")
    path = Path(pretrained).expanduser()
    if path.is_file():
        return ModelStatus("clip", name, True, "local file")
    if _is_path(pretrained) or pretrained.lower().endswith((".pt", ".pth", ".bin", ".safetensors")):
        return ModelStatus("clip", name, False, "not on this machine",
                           f"no file {path}: pass --clip-pretrained with an existing checkpoint file")
    repo = clip_weights_repo(model, pretrained)
    if repo is not None:
        present = any(hub_snapshot(repo, f, cache_dir) is not None for f in OPEN_CLIP_WEIGHT_FILES)
    else:
        tag = _norm(pretrained)
        present = bool(tag) and any(tag in _norm(r) for r in _cached_repo_names(cache_dir))
    if present:
        return ModelStatus("clip", name, True, "Hugging Face cache")
    source = f"`hf download {repo}`" if repo else "open_clip's download of this tag"
    return ModelStatus("clip", name, False, "not on this machine",
                       f"download it where there is internet ({source}) into the Hugging Face cache (HF_HOME),"
                       " or pass --clip-pretrained /path/to/checkpoint")


def model_availability(config) -> list[ModelStatus]:
    """The LVLM and the CLIP of a ZealConfig, each with where it is or how to get it."""
    return [lvlm_status(config.lvlm.model), clip_status(config.clip.model, config.clip.pretrained)]


def require_obtainable(status: ModelStatus) -> None:
    """Return when the model is here or can be downloaded now; else one short ModelError with the fix.
    Called before loading, so a machine without network knows in seconds, not after hub retries."""
    if status.present:
        return
    what = "LVLM" if status.role == "lvlm" else "CLIP"
    if not status.fix.startswith("download"):  # a local path that does not exist: no download can help
        raise ModelError(f"{what} {status.name}: {status.fix}")
    if offline():
        raise ModelError(f"{what} {status.name} is not on this machine and hub access is off (HF_HUB_OFFLINE):"
                         f" {status.fix}")
    if not hub_reachable():
        host, _ = hub_address()
        raise ModelError(f"{what} {status.name} is not on this machine and {host} cannot be reached: {status.fix}")
