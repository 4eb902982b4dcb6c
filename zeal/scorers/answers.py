"""Which tokens count as "yes" and as "no", the same for the local and the remote scorers, and P(yes)
read from a server's top log-probs with an honest bound for what the server did not return.

Two modes (`LVLMConfig.answer_spellings`):
- "all" (default): every spelling of YES_VARIANTS / NO_VARIANTS that the tokenizer holds as ONE token;
  a spelling is one token when encoding it gives a single id that decodes back to it.
- "exact": the one spelling per answer that the published ZEAL code reads for the architecture: the
  vocabulary tokens "yes"/"no" (LLaVA-OneVision, Pixtral: `convert_tokens_to_ids("yes")`; also every
  architecture the published code does not cover), "Yes"/"No" for Qwen2-VL (its hard-coded ids
  9454/2753 are those in the Qwen2 vocabulary).

The rule needs nothing but encode and decode, so a server that tokenizes (vLLM's /tokenize and
/detokenize) applies exactly the local rule to exactly the served tokenizer. Pure Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from zeal.errors import ConfigError, ModelError

YES_VARIANTS = ("yes", "Yes", "YES", " yes", " Yes", " YES")
NO_VARIANTS = ("no", "No", "NO", " no", " No", " NO")
SPELLING_MODES = ("all", "exact")
# The published code's single spelling per answer, by transformers model_type; every other type reads
# DEFAULT_EXACT_WORDS.
EXACT_WORDS = {"qwen2_vl": ("Yes", "No")}
DEFAULT_EXACT_WORDS = ("yes", "no")
# Word-boundary markers of tokenizer vocabularies: SentencePiece's "▁" and byte-level BPE's "Ġ" (a space).
SPACE_MARKERS = ("\u2581", "\u0120")
# An answer whose spellings missing from the top log-probs could move P(yes) by more than this is
# reported as bounded (counted in the scorer's stats and logged).
BOUND_TOLERANCE = 1e-3
SIDES = ("yes", "no")


class Tokenizer(Protocol):
    """What the spelling rule needs of a tokenizer: encode without special tokens, and decode."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class HFTokenizer:
    """A transformers tokenizer seen through the `Tokenizer` protocol."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def encode(self, text: str) -> list[int]:
        return [int(i) for i in self.tokenizer.encode(text, add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))


def spelling_key(text: str) -> str:
    """A token's text as compared with a spelling: a leading "▁" or "Ġ" reads as a space."""
    for marker in SPACE_MARKERS:
        if text.startswith(marker):
            return " " + text[len(marker):]
    return text


@dataclass(frozen=True)
class AnswerSpellings:
    """The tokens whose probabilities count as "yes" and as "no".

    yes / no: token ids (sorted; empty when no tokenizer was available, see `complete`);
    texts: spelling text -> (side, id or -1); complete: the texts list every counted token of the
    model, so a spelling missing from a server's top-k is known to exist (it can be bounded);
    mode: "all" or "exact"; source: "tokenizer", "server" or "plain" (the variant strings only).
    """

    yes: tuple[int, ...]
    no: tuple[int, ...]
    texts: tuple[tuple[str, str, int], ...]
    complete: bool
    mode: str
    source: str

    def lookup(self, token_text: str) -> tuple[str, int | str] | None:
        """(side, key) for a token text that is a counted spelling, else None. The key is the token id
        when known, else the text itself (one spelling)."""
        key = spelling_key(token_text)
        for text, side, token_id in self.texts:
            if text == key:
                return side, (token_id if token_id >= 0 else text)
        return None

    def count(self, side: str) -> int:
        """Number of distinct counted tokens on one side."""
        return len({(token_id if token_id >= 0 else text) for text, s, token_id in self.texts if s == side})

    def describe(self) -> str:
        """A short stable description (part of a remote model's identity)."""
        words = ",".join(sorted(f"{side}:{text!r}" for text, side, _ in self.texts))
        return f"{self.mode}/{self.source}[{words}]"


def check_mode(mode: str) -> str:
    if mode not in SPELLING_MODES:
        raise ConfigError(f"answer_spellings must be one of {SPELLING_MODES}, got {mode!r}")
    return mode


def _words(mode: str, model_type: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if mode == "exact":
        yes, no = EXACT_WORDS.get(model_type or "", DEFAULT_EXACT_WORDS)
        return (yes,), (no,)
    return YES_VARIANTS, NO_VARIANTS


def resolve_answer_ids(tokenizer: Any, name: str = "model", mode: str = "all", model_type: str | None = None,
                       source: str = "tokenizer") -> AnswerSpellings:
    """The counted spellings of `tokenizer` (a `Tokenizer`, or a transformers tokenizer). ModelError
    when one side has no single-token spelling (P(yes) cannot be read from such a model)."""
    check_mode(mode)
    # a transformers tokenizer (it knows its special tokens) is wrapped so that encode adds none
    view = HFTokenizer(tokenizer) if hasattr(tokenizer, "all_special_ids") else tokenizer
    unknown = getattr(tokenizer, "unk_token_id", None)
    texts: list[tuple[str, str, int]] = []
    ids: dict[str, set[int]] = {side: set() for side in SIDES}
    for side, words in zip(SIDES, _words(mode, model_type)):
        for word in words:
            encoded = view.encode(word)
            # one token, not the unknown token, and it decodes back to the word (a normalizer that
            # lower-cases would otherwise make "YES" count as the id of "yes")
            if len(encoded) == 1 and encoded[0] != unknown and view.decode(encoded).strip() == word.strip():
                ids[side].add(encoded[0])
                texts.append((word, side, encoded[0]))
    missing = [side for side in SIDES if not ids[side]]
    if missing:
        tried = [w for words in _words(mode, model_type) for w in words]
        raise ModelError(f"the tokenizer of {name} has no single token for {' or '.join(missing)!r} "
                         f"(tried {tried}); P(yes) cannot be read from its logits: choose a model whose "
                         "vocabulary holds the words yes/no")
    return AnswerSpellings(yes=tuple(sorted(ids["yes"])), no=tuple(sorted(ids["no"])), texts=tuple(texts),
                           complete=True, mode=mode, source=source)


def plain_spellings(mode: str = "all", model_type: str | None = None) -> AnswerSpellings:
    """Without any tokenizer: the variant strings themselves (which of them are tokens is unknown)."""
    check_mode(mode)
    texts = tuple((word, side, -1) for side, words in zip(SIDES, _words(mode, model_type)) for word in words)
    return AnswerSpellings(yes=(), no=(), texts=texts, complete=False, mode=mode, source="plain")


# --- P(yes) from top log-probs ----------------------------------------------------------------------
def _logsumexp(values: Sequence[float]) -> float:
    if not values:
        return -math.inf
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def sigmoid(x: float) -> float:
    if x == math.inf:
        return 1.0
    if x == -math.inf:
        return 0.0
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclass(frozen=True)
class Answer:
    """P(yes) of one request. absent: sides (0-2) with no spelling among the returned log-probs;
    bounded: the spellings not returned could move p_yes by more than the tolerance."""

    p_yes: float
    absent: int
    bounded: bool


def read_top_logprobs(top: Sequence[tuple[str, float]], spellings: AnswerSpellings,
                      tolerance: float = BOUND_TOLERANCE) -> Answer:
    """P(yes) from the (token text, log-prob) pairs of the first generated position.

    The counted spellings of each side are gathered by logsumexp and P(yes) = sigmoid(lse(yes) -
    lse(no)). Any token not returned is at most as likely as the smallest returned one (the floor):
    a side with no spelling returned takes one spelling at the floor (both absent: 0.5). When the
    spellings are known (`complete`), each missing one may lie anywhere up to the floor; if that range
    moves P(yes) by more than `tolerance`, the answer is bounded.
    """
    if not top:
        raise ModelError("the server returned no top log-probs; start it with logprobs enabled"
                         " (vLLM: --max-logprobs 20)")
    found: dict[str, dict[Any, float]] = {side: {} for side in SIDES}
    for text, logprob in top:
        hit = spellings.lookup(text)
        if hit is not None and math.isfinite(logprob):
            side, key = hit
            found[side][key] = max(logprob, found[side].get(key, -math.inf))
    finite = [lp for _, lp in top if math.isfinite(lp)]
    floor = min(finite) if finite else 0.0
    low: dict[str, float] = {}
    estimate: dict[str, float] = {}
    high: dict[str, float] = {}
    for side in SIDES:
        values = list(found[side].values())
        missing = spellings.count(side) - len(values) if spellings.complete else int(not values)
        low[side] = _logsumexp(values)
        estimate[side] = low[side] if values else floor
        high[side] = _logsumexp(values + [floor] * max(missing, 0))
    absent = sum(1 for side in SIDES if not found[side])
    p = 0.5 if absent == 2 else sigmoid(estimate["yes"] - estimate["no"])
    p_low = sigmoid(low["yes"] - high["no"])
    p_high = sigmoid(high["yes"] - low["no"])
    return Answer(p_yes=p, absent=absent, bounded=max(p_high - p, p - p_low) > tolerance)


def p_yes_from_id_logprobs(logprobs: dict[int, float], spellings: AnswerSpellings) -> float:
    """P(yes) from exact log-probs of the counted token ids (SGLang's token_ids_logprob)."""
    missing = [i for i in (*spellings.yes, *spellings.no) if i not in logprobs]
    if missing:
        raise ModelError(f"the server did not return log-probs for token ids {missing}; "
                         "check that it serves the model whose tokenizer gave these ids")
    yes = _logsumexp([logprobs[i] for i in spellings.yes])
    no = _logsumexp([logprobs[i] for i in spellings.no])
    return sigmoid(yes - no)
