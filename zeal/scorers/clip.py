"""CLIP for class filtering (step 2) and actionness (step 3). The only module that imports open_clip.

`ClipScorer.from_pretrained(model, pretrained)` does the loading; the scorer itself is built from
already-built parts (model, preprocess, tokenizer) so tests can pass tiny models in.
"""

from __future__ import annotations

import difflib
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from zeal.errors import ConfigError, ModelError
from zeal.scorers.availability import clip_status, require_obtainable
from zeal.scorers.device import resolve_device
from zeal.scorers.identity import clip_model_id

# Local weight files open_clip can load as `pretrained` (anything else is taken as a tag).
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".npz", ".ckpt")
# Text embeddings are reused across calls (class names, descriptions edited in the UI): keep this many.
TEXT_CACHE_SIZE = 4096
# Longest part of a library error message quoted back to the user.
MAX_REASON_CHARS = 500
LIST_MODELS_HINT = "python -c \"import open_clip; print(open_clip.list_models())\""
LOCAL_WEIGHTS_HINT = ("pass a local checkpoint file as `pretrained` (e.g. open_clip_pytorch_model.bin),"
                      " or put the weights in the Hugging Face cache (HF_HOME) and set HF_HUB_OFFLINE=1")


def class_text(name: str) -> str:
    """The text CLIP sees for a class name: CamelCase and snake_case split into words
    ("CliffDiving" -> "Cliff Diving", "long_jump" -> "long jump"), as CLIP was trained on prose."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return re.sub(r"[\s_\-]+", " ", words).strip()


def _looks_like_path(pretrained: str) -> bool:
    return (os.sep in pretrained or "/" in pretrained or pretrained.lower().endswith(CHECKPOINT_SUFFIXES)
            or os.path.exists(pretrained))


def _check_model_name(open_clip: Any, model: str) -> None:
    if model.startswith(("hf-hub:", "local-dir:")):
        return
    known = open_clip.list_models()
    if model.replace("/", "-") not in known:
        close = difflib.get_close_matches(model, known, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelError(f"unknown open_clip model {model!r}.{hint} List the known model names with:"
                         f" {LIST_MODELS_HINT}")


def mean_similarity(image_embs: np.ndarray, text_embs: np.ndarray) -> np.ndarray:
    """Cosine between the mean of image_embs [n, D] (n >= 1) and each of text_embs [m, D] -> [m] float32."""
    image_embs = np.asarray(image_embs, np.float32)
    if image_embs.ndim != 2 or image_embs.shape[0] == 0:
        raise ValueError(f"image_embs must be [n, D] with n >= 1, got shape {image_embs.shape}")
    mean = image_embs.mean(axis=0)
    mean = mean / max(float(np.linalg.norm(mean)), np.finfo(np.float32).tiny)
    return (np.asarray(text_embs, np.float32) @ mean).astype(np.float32)


def frame_similarity(frame_embs: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """Cosine between each frame [N, D] and one text embedding [D] -> [N] float32."""
    frame_embs = np.asarray(frame_embs, np.float32)
    if frame_embs.ndim != 2:
        raise ValueError(f"frame_embs must be [N, D], got shape {frame_embs.shape}")
    return (frame_embs @ np.asarray(text_emb, np.float32)).astype(np.float32)


class ClipScorer:
    """Frame and text embeddings of one open_clip model, and the two uses the method makes of them.

    Embeddings are L2-normalised float32 numpy arrays; cosine similarity is a dot product.
    """

    def __init__(self, model: Any, preprocess: Callable[[Any], Any], tokenizer: Callable[..., Any],
                 model_id: str, device: str | None = None, batch_size: int = 32) -> None:
        import torch

        if batch_size < 1:
            raise ModelError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.batch_size = batch_size
        first = next(model.parameters(), None)
        self.device = torch.device(device) if device is not None else (
            first.device if first is not None else torch.device("cpu"))
        # Half precision only where it pays and is safe: matmuls on CUDA. CPU/MPS stay fp32.
        self._amp_dtype = None
        if self.device.type == "cuda":
            self._amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._dim: int | None = None

    @classmethod
    def from_pretrained(cls, model: str, pretrained: str, device: str = "auto", batch_size: int = 32,
                        cache_dir: str | None = None) -> "ClipScorer":
        """Load an open_clip model by name and weights: `pretrained` is an open_clip tag
        (e.g. "merged2b_s4b_b131k") or a local checkpoint path. cache_dir: where hub downloads go
        (default: the Hugging Face cache). Raises ModelError with the fix when anything is missing."""
        import open_clip
        import torch

        _check_model_name(open_clip, model)
        device = resolve_device(device)
        model_id = clip_model_id(model, pretrained)
        if pretrained and _looks_like_path(pretrained):
            path = Path(pretrained).expanduser()
            if not path.is_file():
                raise ModelError(f"CLIP checkpoint {str(path)!r} for model {model!r} not found; give the path"
                                 " of an existing weights file, or an open_clip pretrained tag")
            pretrained = str(path.resolve())
        elif pretrained and not model.startswith(("hf-hub:", "local-dir:")):
            tags = open_clip.list_pretrained_tags_by_model(model.replace("/", "-"))
            if pretrained not in tags:
                raise ModelError(f"unknown pretrained tag {pretrained!r} for CLIP model {model!r}; known tags:"
                                 f" {tags or 'none'}; or {LOCAL_WEIGHTS_HINT}")
            require_obtainable(clip_status(model, pretrained, cache_dir))
        precision = "fp32"
        if device.startswith("cuda"):
            # Low-precision weights halve GPU memory (EVA02-E is 4.4B parameters); autocast does the rest.
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        try:
            net, _, preprocess = open_clip.create_model_and_transforms(
                model, pretrained=pretrained or None, device=device, precision=precision, cache_dir=cache_dir)
            tokenizer = open_clip.get_tokenizer(model, cache_dir=cache_dir)
        except ModelError:
            raise
        except Exception as exc:  # open_clip raises RuntimeError/OSError/ValueError for all of these
            reason = " ".join(str(exc).split())[:MAX_REASON_CHARS]
            if "download" in reason.lower() or "hub" in reason.lower() or isinstance(exc, OSError):
                raise ModelError(f"cannot load the weights of CLIP model {model!r} / {pretrained!r}: they are not"
                                 f" on this machine and could not be downloaded ({reason}). To use local"
                                 f" weights, {LOCAL_WEIGHTS_HINT}") from None
            raise ModelError(f"cannot load CLIP model {model!r} with weights {pretrained!r}: {reason}. Check that"
                             " the checkpoint belongs to this model architecture") from None
        return cls(net, preprocess, tokenizer, model_id, device=device, batch_size=batch_size)

    # -- embeddings ----------------------------------------------------------------------------
    def _autocast(self) -> Any:
        import contextlib

        import torch

        if self._amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self._amp_dtype)

    def _finish(self, features: Any) -> np.ndarray:
        import torch

        features = torch.nn.functional.normalize(features.float(), dim=-1)
        return features.cpu().numpy().astype(np.float32, copy=False)

    @property
    def dim(self) -> int:
        """Embedding size D."""
        if self._dim is None:
            self._dim = int(self.embed_texts([""]).shape[1])
        return self._dim

    def embed_images(self, images: Sequence[Any]) -> np.ndarray:
        """images: HxWx3 uint8 RGB arrays (or PIL images) -> [n, D] float32, L2-normalised."""
        import torch
        from PIL import Image

        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for lo in range(0, len(images), self.batch_size):
            pils = []
            for i, img in enumerate(images[lo:lo + self.batch_size], start=lo):
                if isinstance(img, np.ndarray):
                    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                        raise ValueError(f"image {i}: expected an HxWx3 uint8 RGB array, got shape"
                                         f" {img.shape} dtype {img.dtype}")
                    img = Image.fromarray(img)
                pils.append(img.convert("RGB"))
            batch = torch.stack([self.preprocess(p) for p in pils]).to(self.device)
            with torch.inference_mode(), self._autocast():
                out.append(self._finish(self.model.encode_image(batch)))
        result = np.concatenate(out)
        self._dim = result.shape[1]
        return result

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """texts -> [m, D] float32, L2-normalised. Recent texts are served from a small cache."""
        import torch

        texts = [str(t) for t in texts]
        missing = list(dict.fromkeys(t for t in texts if t not in self._text_cache))
        for lo in range(0, len(missing), self.batch_size):
            chunk = missing[lo:lo + self.batch_size]
            tokens = self.tokenizer(chunk).to(self.device)
            with torch.inference_mode(), self._autocast():
                feats = self._finish(self.model.encode_text(tokens))
            for text, feat in zip(chunk, feats):
                self._text_cache[text] = feat
                if len(self._text_cache) > TEXT_CACHE_SIZE:
                    self._text_cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        # Fetch after inserting: the cache may have evicted a text of this call only if the call
        # itself has more than TEXT_CACHE_SIZE texts, in which case we recompute (rare, correct).
        rows = []
        for text in texts:
            feat = self._text_cache.get(text)
            if feat is None:
                tokens = self.tokenizer([text]).to(self.device)
                with torch.inference_mode(), self._autocast():
                    feat = self._finish(self.model.encode_text(tokens))[0]
            rows.append(feat)
        result = np.stack(rows)
        self._dim = result.shape[1]
        return result

    # -- the method's two uses -----------------------------------------------------------------
    def rank_classes(self, image_embs: np.ndarray, names: Sequence[str]) -> list[tuple[str, float]]:
        """Step 2: cosine between the mean image feature of `image_embs` [n, D] and each class name's
        text (see class_text), as (name, cosine), best first (ties keep the given order)."""
        if not names:
            return []
        scores = mean_similarity(image_embs, self.embed_texts([class_text(n) for n in names]))
        order = sorted(range(len(names)), key=lambda i: -scores[i])
        return [(names[i], float(scores[i])) for i in order]

    def filter_classes(self, image_embs: np.ndarray, names: Sequence[str], k: int = 3) -> list[str]:
        """The k best classes of rank_classes (all of them, ranked, when k >= len(names))."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        return [name for name, _ in self.rank_classes(image_embs, names)[:k]]

    def actionness(self, frame_embs: np.ndarray, description: str) -> np.ndarray:
        """Step 3: cosine between each frame [N, D] and the class description -> [N] float32."""
        return frame_similarity(frame_embs, self.embed_texts([description])[0])

    def __repr__(self) -> str:
        return f"ClipScorer(model_id={self.model_id!r}, device={str(self.device)!r})"


def register_model_config(path: str) -> str:
    """Make a custom open_clip architecture known under the file's stem (an open_clip model config
    JSON, as in open_clip's model_configs/*.json); returns that name for `from_pretrained`."""
    import json

    file = Path(path).expanduser()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"CLIP model config {str(file)!r} is not a readable JSON file ({exc})") from None
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if not isinstance(data, dict) or k not in data]
    if missing:
        raise ConfigError(f"CLIP model config {str(file)!r} lacks {', '.join(missing)}; it must be an open_clip"
                          " model config (see open_clip's model_configs/*.json)")
    import open_clip

    open_clip.add_model_config(str(file))
    return file.stem
