"""What an OpenAI-compatible server says about the model behind a served name, and which answer
spellings to count for it: the two things a remote scorer must know before its scores can be cached.

Identity: vLLM and SGLang answer `GET {base}/models` with each model's id, `root` (the checkpoint path
or hub id it was started with) and `max_model_len`; those go into the scorer's model_id, so another
model restarted under the same name never reuses the old scores. A server that says nothing beyond the
name gets one warning that the cache trusts the name.

Spellings, the same rule as the local scorer (zeal.scorers.answers), applied to the best tokenizer at
hand: the server's own (`POST {root}/tokenize` and `/detokenize`, as vLLM serves them), else a local
copy of the same model (the server's root or the served name, as a folder or in the Hugging Face
cache), else the plain-string rule.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from zeal.errors import ModelError
from zeal.retry import Backoff, GaveUp, Retryable, is_retryable_status, retry_after_s, with_retries
from zeal.scorers.answers import AnswerSpellings, plain_spellings, resolve_answer_ids
from zeal.scorers.identity import hub_snapshot

log = logging.getLogger(__name__)

# Fields of a /models entry that tell two models apart (vLLM and SGLang model cards).
IDENTITY_FIELDS = ("root", "parent", "max_model_len")
NOT_SERVED = (404, 405, 501)  # statuses of a server without the endpoint


def api_root(base_url: str) -> str:
    """The server's root URL for a base URL ending in /v1 (vLLM serves /tokenize at the root)."""
    return base_url[:-3] if base_url.endswith("/v1") else base_url


class Unreachable(ModelError):
    """A server that kept failing (timeouts, refused connections, 5xx) when asked about its model."""


class ServerCalls:
    """JSON requests to one server with the scorer's retry policy (timeouts, 429 and 5xx retried)."""

    def __init__(self, client: Any, max_retries: int, backoff: Backoff):
        self.client = client
        self.max_retries = max_retries
        self.backoff = backoff

    def request(self, method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """(status, parsed JSON or None). Transport failures and retryable statuses are retried;
        a server still failing after that is a ModelError."""
        import httpx

        def attempt() -> tuple[int, Any]:
            try:
                resp = self.client.request(method, url, json=body)
            except httpx.TransportError as err:
                raise Retryable(f"{url}: {type(err).__name__}: {err}") from err
            if is_retryable_status(resp.status_code):
                raise Retryable(f"{url}: HTTP {resp.status_code}", retry_after_s(resp.headers))
            try:
                return resp.status_code, resp.json()
            except ValueError:
                return resp.status_code, None

        try:
            return with_retries(attempt, self.max_retries, self.backoff)
        except GaveUp as gave_up:
            raise Unreachable(f"{gave_up.last}") from None


def describe_model(calls: ServerCalls, base_url: str, name: str) -> dict[str, Any]:
    """The identity fields the server gives for the served `name` ({} when it tells nothing beyond the
    name). ModelError when the server lists models but not this one."""
    status, data = calls.request("GET", f"{base_url}/models")
    if status in NOT_SERVED:
        return {}
    if status >= 400:
        raise ModelError(f"LVLM server {base_url} refused to list its models (HTTP {status}); check the API key")
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return {}
    cards = [c for c in data["data"] if isinstance(c, dict)]
    card = next((c for c in cards if c.get("id") == name), None)
    if card is None:
        served = [c.get("id") for c in cards]
        raise ModelError(f"LVLM server {base_url} does not serve a model named {name!r}; it serves {served}")
    return {k: card[k] for k in IDENTITY_FIELDS if card.get(k) is not None}


class _ServerTokenizer:
    """The served tokenizer through vLLM's /tokenize and /detokenize (the `Tokenizer` protocol)."""

    def __init__(self, calls: ServerCalls, root: str, name: str):
        self.calls, self.root, self.name = calls, root, name

    def encode(self, text: str) -> list[int]:
        status, data = self.calls.request("POST", f"{self.root}/tokenize",
                                          {"model": self.name, "prompt": text, "add_special_tokens": False})
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise LookupError(f"/tokenize answered HTTP {status}")
        return [int(t) for t in data["tokens"]]

    def decode(self, ids: Sequence[int]) -> str:
        status, data = self.calls.request("POST", f"{self.root}/detokenize", {"model": self.name, "tokens": list(ids)})
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
            raise LookupError(f"/detokenize answered HTTP {status}")
        return data["prompt"]


def local_copy(candidates: Sequence[str | None]) -> Path | None:
    """The first candidate (a folder, or a hub id in the local cache) that holds a tokenizer here."""
    for name in candidates:
        if not name:
            continue
        folder: Path | None = Path(str(name)).expanduser()
        if not folder.is_dir():
            folder = hub_snapshot(str(name), "tokenizer_config.json")
        if folder is not None and any((folder / f).is_file() for f in ("tokenizer_config.json", "tokenizer.json")):
            return folder
    return None


def model_type_of(folder: Path | None) -> str | None:
    """The transformers model_type in a local copy's config.json (None when unknown)."""
    if folder is None:
        return None
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def resolve_spellings(calls: ServerCalls, base_url: str, name: str, mode: str,
                      local_candidates: Sequence[str | None],
                      load_tokenizer: Callable[[Path], Any] | None = None) -> AnswerSpellings:
    """The answer spellings for the served model: through the server's tokenizer, else a local copy's,
    else the plain-string rule (see the module doc)."""
    folder = local_copy(local_candidates)
    model_type = model_type_of(folder)
    if mode == "exact" and model_type is None:
        log.info("answer_spellings='exact' for the served model %r: its architecture is unknown here (no local"
                 " config.json), so the published code's 'yes'/'no' (LLaVA-OneVision, Pixtral) is read", name)
    try:
        return resolve_answer_ids(_ServerTokenizer(calls, api_root(base_url), name), name, mode, model_type,
                                  source="server")
    except LookupError:
        pass  # no /tokenize here (not vLLM): the next best tokenizer
    if folder is not None:
        try:
            tokenizer = (load_tokenizer or _load_tokenizer)(folder)
        except Exception as err:  # noqa: BLE001 - a broken local copy: fall back, say so
            log.warning("cannot load the local tokenizer %s (%s); counting answers by their plain spelling",
                        folder, err)
        else:
            return resolve_answer_ids(tokenizer, name, mode, model_type, source="tokenizer")
    return plain_spellings(mode, model_type)


def _load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
