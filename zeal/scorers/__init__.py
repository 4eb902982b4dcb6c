"""The scorer contract and its builders.

A P(yes) scorer answers yes/no questions about frames (`PYesScorer`); a CLIP scorer embeds frames and
texts (`ClipScorerLike`). The pipeline needs nothing else of them, and keys every cached score on the
scorer's `model_id`, which must change whenever the scores could: other weights, another server model
behind the same name, another way of reading the answer.

Implementations: `local.LVLMScorer` (transformers, prefix-cached), `remote.RemoteScorer` (an
OpenAI-compatible server), `clip.ClipScorer` (open_clip). `build_lvlm` / `build_clip` turn the
configuration into one of them; the LVLM spec string ("openai:MODEL@URL" or a model name/folder) is
read here and nowhere else. Importing this package is cheap: the implementations import their heavy
libraries when built.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np

    from zeal.config import ClipConfig, LVLMConfig

REMOTE_PREFIX = "openai:"
log = logging.getLogger(__name__)


def is_remote(spec: str) -> bool:
    """Whether an LVLM spec names a server ("openai:MODEL@URL[,URL...]") rather than local weights."""
    return isinstance(spec, str) and spec.startswith(REMOTE_PREFIX)


def chat_messages(text: str) -> list[dict[str, Any]]:
    """The one chat layout every LVLM gets: a user turn with the frame first, then the text. The text
    part carries the text under both keys chat templates read ("text"; "content" in the Pixtral
    template of mistral-community/pixtral-12b, which the published code follows)."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text, "content": text}]}]


@runtime_checkable
class PYesScorer(Protocol):
    """P(yes) for (frame, question) pairs.

    model_id: identifies everything besides the inputs that the scores depend on (cache keys use it);
    stats: running counters of the work done (requests, frames, bounded answers...), plain ints.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def stats(self) -> dict[str, int]: ...

    def p_yes(self, images: Sequence[Any], texts: Sequence[str]) -> "np.ndarray":
        """images: [H,W,3] uint8 RGB arrays or PIL images; texts: full user texts.
        -> [len(images), len(texts)] float64 in [0, 1]."""
        ...


@runtime_checkable
class ClipScorerLike(Protocol):
    """Frame and text embeddings of one CLIP model (L2-normalised float32 rows: cosine = dot)."""

    @property
    def model_id(self) -> str: ...

    def embed_images(self, images: Sequence[Any]) -> "np.ndarray":
        """-> [n, D] float32."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> "np.ndarray":
        """-> [m, D] float32."""
        ...


def build_lvlm(config: "LVLMConfig") -> PYesScorer:
    """The scorer an LVLMConfig describes: a server client for "openai:MODEL@URL[,URL...]" (nothing is
    loaded; the server is asked what it serves on first use), else local weights (loaded now)."""
    if is_remote(config.model):
        from zeal.scorers.remote import RemoteScorer

        if config.image_budget != "full":
            log.warning("image_budget=%s applies to local models only: the server %s sizes images itself "
                        "(vLLM: --mm-processor-kwargs)", config.image_budget, config.model)
        return RemoteScorer.from_spec(config.model, max_in_flight=config.max_in_flight,
                                      timeout_s=config.request_timeout_s, max_retries=config.max_retries,
                                      answer_spellings=config.answer_spellings)
    from zeal.scorers.local import LVLMScorer

    return LVLMScorer.from_pretrained(config.model, device=config.device, dtype=config.dtype,
                                      frames_per_batch=config.frames_per_batch,
                                      answer_spellings=config.answer_spellings, image_budget=config.image_budget)


def local_lvlm_model_id(config: "LVLMConfig") -> str:
    """The `model_id` that `build_lvlm(config)` will have for local weights, without loading them."""
    from zeal.scorers.identity import lvlm_model_id

    if is_remote(config.model):
        raise ValueError("a server's model id comes from the server: build the scorer and read its model_id")
    return lvlm_model_id(config.model, config.answer_spellings, config.image_budget)


def build_clip(config: "ClipConfig") -> ClipScorerLike:
    """The open_clip scorer a ClipConfig describes (loaded now)."""
    from zeal.scorers.clip import ClipScorer

    return ClipScorer.from_pretrained(config.model, config.pretrained, device=config.device,
                                      batch_size=config.batch_size)


def clip_model_id(config: "ClipConfig") -> str:
    """The `model_id` that `build_clip(config)` will have, without loading it."""
    from zeal.scorers.identity import clip_model_id as compose

    return compose(config.model, config.pretrained)


__all__ = ["REMOTE_PREFIX", "ClipScorerLike", "PYesScorer", "build_clip", "build_lvlm", "chat_messages",
           "clip_model_id", "is_remote", "local_lvlm_model_id"]
