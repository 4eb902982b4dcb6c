"""What a model is, without loading it: the one fingerprint every cache key and run key uses.

A local file or folder is its resolved path plus a hash of every file's relative name, size and
modification time (new weights, a new tokenizer or chat template: a new identity; gigabytes are never
read). A Hugging Face id is pinned to the snapshot the local cache holds (`org/name@<commit>`), since
that is what loads; an id not in the cache stays as given.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

FINGERPRINT_DIGEST_BYTES = 8
# A hub model is looked up in the local cache by this file, which every transformers model has.
HUB_PROBE_FILE = "config.json"


def _looks_like_hub_id(name: str) -> bool:
    """"org/name" or "name": no scheme, at most one slash, not a relative/absolute path."""
    return bool(name) and name.count("/") <= 1 and not name.startswith((".", "/", "~")) and ":" not in name


def hub_snapshot(repo_id: str, filename: str = HUB_PROBE_FILE, cache_dir: str | None = None) -> Path | None:
    """The local snapshot folder of `repo_id` holding `filename` in the Hugging Face cache (cache_dir,
    default `hub_cache_dir()`), or None. No network."""
    if not _looks_like_hub_id(repo_id):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir or hub_cache_dir())
    except Exception:  # a malformed id, an unreadable cache: not there
        return None
    return Path(found).parent if isinstance(found, str) else None


def hub_cache_dir() -> str:
    """The Hugging Face hub cache folder, read from the environment at call time (HF_HUB_CACHE,
    else HF_HOME/hub, else ~/.cache/huggingface/hub), so a test or a user may set it late."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.path.join(home, "hub")


def fingerprint(name_or_path: str) -> str:
    """A stable identity for a model given as a local file/folder or a hub id (see the module doc)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        digest = hashlib.blake2b(digest_size=FINGERPRINT_DIGEST_BYTES)
        for f in files:
            st = f.stat()
            digest.update(f"{f.relative_to(path.parent)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        return f"{path.resolve()}@{digest.hexdigest()}"
    snapshot = hub_snapshot(name_or_path)
    return f"{name_or_path}@{snapshot.name}" if snapshot is not None else name_or_path


def with_answers(weights_id: str, answer_spellings: str, image_budget: str | int = "full") -> str:
    """An LVLM's `model_id`: what its weights are, how its answer is read and, unless it is the model's
    own ("full", left out so that the scores cached before budgets existed stay valid), its image budget."""
    budget = "" if image_budget == "full" else f"|image={image_budget}"
    return f"{weights_id}|answers={answer_spellings}{budget}"


def lvlm_model_id(weights: str, answer_spellings: str, image_budget: str | int = "full") -> str:
    """A local LVLM's `model_id`, from its name or folder, without loading it."""
    return with_answers(fingerprint(weights), answer_spellings, image_budget)


def clip_model_id(model: str, pretrained: str) -> str:
    """A CLIP's `model_id`: the architecture name and the fingerprint of its weights (tag or file)."""
    return f"{model}/{fingerprint(pretrained) if pretrained else ''}"
