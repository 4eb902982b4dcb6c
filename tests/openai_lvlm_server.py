"""A small OpenAI-compatible LVLM server for tests (a fixture, not a product feature).

It serves a transformers image-text-to-text model folder on 127.0.0.1 with the endpoints vLLM/SGLang
offer that the engine uses:
- `GET /v1/models`: the served name with `root` (the checkpoint) and `max_model_len`, as vLLM lists it
  (`describe=False`: the name only, as a plain OpenAI-style server; `list_models=False`: 404);
- `POST /tokenize` and `POST /detokenize` in vLLM's schema (`tokenize=False`: 404);
- `POST /v1/chat/completions` in the OpenAI schema: the user content is [image data URL, text]; the
  prompt is the processor's chat template (image first, generation prompt added); ONE full forward;
  log_softmax of the last position's raw logits; `top_logprobs` entries {token, logprob, bytes} with
  token strings decoded by the tokenizer, and the argmax token as the message content.
- `POST /generate` in SGLang's native schema: `text` (already templated, with the image placeholder),
  `image_data`, `return_logprob`, `token_ids_logprob` -> `meta_info.output_token_ids_logprobs`.

For the tests it records every request (arrival time, image hash, text, served or how it failed) and
the peak number of requests being handled at once, and it can inject faults: answer the next N
requests with an HTTP status (429, 500...), delay every answer, drop the connection without answering,
and stop / restart on the same port.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# vLLM's default --max-logprobs: asking for more is a 400 there too.
MAX_LOGPROBS = 20
MAX_MODEL_LEN = 4096  # what /v1/models and /tokenize report


@dataclass
class Record:
    """One request as the server saw it."""

    arrival_s: float  # time.monotonic() when the request line arrived
    path: str
    image_hash: str | None  # sha1 of the decoded image file bytes (first 16 hex digits)
    text: str | None
    outcome: str = "pending"  # "ok", "drop", "status:<code>", "error:<why>"
    top_ids: list[int] | None = None  # token ids returned in top_logprobs (chat completions)
    top: list[tuple[str, float]] | None = None  # the (token, logprob) pairs returned, in order


class LVLMTestServer:
    """Serve `model_dir` (a saved transformers image-text-to-text model) on 127.0.0.1.

    `url` is the OpenAI base URL (".../v1"), `root` the SGLang base. Use as a context manager or call
    start()/stop(). Fault knobs: fail_next(n, status), drop_next(n), delay_s; stop()/start() keep the port.
    """

    def __init__(self, model_dir: str | Path | None = None, served_name: str = "tiny-lvlm", port: int = 0,
                 share: "LVLMTestServer | None" = None, model: Any = None, processor: Any = None,
                 root: str | None = None, describe: bool = True, list_models: bool = True, tokenize: bool = True):
        """Load model_dir; or serve an already loaded model + processor; or reuse the model of `share`
        (a second replica, cheaply). root: what /v1/models reports as the checkpoint (default model_dir
        or share's root)."""
        self.served_name = served_name
        self.root_path = root or (str(model_dir) if model_dir else (share.root_path if share else "unknown"))
        self.describe, self.list_models, self.tokenize_enabled = describe, list_models, tokenize
        self.listings = 0  # GET /v1/models answered
        self.tokenize_calls = 0
        if share is not None:
            self.processor, self.model = share.processor, share.model
        elif model is not None and processor is not None:
            self.processor, self.model = processor, model.eval()
        else:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor

            self.processor = AutoProcessor.from_pretrained(str(model_dir))
            self.model = AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=torch.float32).eval()
        self.tokenizer = self.processor.tokenizer
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # One forward at a time: the model is shared, and the CPU has few cores anyway. Delays are
        # applied outside this lock, so concurrency stays visible to the tests.
        self._model_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self.records: list[Record] = []
        self.active = 0
        self.peak_active = 0
        self.delay_s = 0.0
        self._fail: list[int] = []  # statuses for the next requests, in order
        self._drops = 0
        self._delays: list[float] = []  # extra seconds before answering the next requests

    # --- lifecycle ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return self.root + "/v1"

    def start(self) -> "LVLMTestServer":
        """Listen (again) on the same port; the first start picks a free one."""
        handler = _make_handler(self)
        httpd = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        httpd.daemon_threads = True
        self._port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (keep-alive ones too), like a crashed server."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            _cut(conn)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def __enter__(self) -> "LVLMTestServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- fault knobs and observations ------------------------------------------------------------
    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next n requests with this HTTP status."""
        with self._lock:
            self._fail.extend([status] * n)

    def drop_next(self, n: int = 1) -> None:
        """Close the connection of the next n requests without answering."""
        with self._lock:
            self._drops += n

    def delay_next(self, n: int, seconds: float) -> None:
        """Answer the next n requests only after this many seconds (a client timeout shorter than
        that sees a timeout)."""
        with self._lock:
            self._delays.extend([seconds] * n)

    def clear_faults(self) -> None:
        with self._lock:
            self._fail, self._drops, self._delays = [], 0, []
            self.delay_s = 0.0

    def reset_log(self) -> None:
        with self._lock:
            self.records = []
            self.peak_active = 0

    def served(self) -> list[Record]:
        """Requests answered with a score, in arrival order."""
        with self._lock:
            return [r for r in self.records if r.outcome == "ok"]

    def serve(self, model: Any, processor: Any, root: str) -> None:
        """Serve another model under the same name (what a restart with other weights looks like)."""
        with self._model_lock:
            self.model, self.processor, self.tokenizer, self.root_path = model.eval(), processor, processor.tokenizer, root

    # --- model ---------------------------------------------------------------------------------------
    def _forward(self, prompt: str, image: Any):
        """([V] float64 log-probabilities of the first generated token from raw logits, one full
        forward; prompt length in tokens)."""
        import torch

        with self._model_lock, torch.inference_mode():
            # The chat template already holds the special tokens, so the tokenizer adds none.
            enc = self.processor(text=[prompt], images=[image], return_tensors="pt", add_special_tokens=False)
            logits = self.model(**enc, use_cache=False).logits[0, -1]
            return torch.log_softmax(logits.double(), dim=-1), int(enc["input_ids"].shape[1])

    def _token_entry(self, token_id: int, logprob: float) -> dict[str, Any]:
        text = self.tokenizer.decode([token_id])
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}

    def chat_completion(self, body: dict[str, Any], record: Record | None = None) -> tuple[int, dict[str, Any]]:
        import torch

        if body.get("model") != self.served_name:
            return 404, _error(f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        k = int(body.get("top_logprobs") or 0)
        if k > MAX_LOGPROBS:
            return 400, _error(f"top_logprobs={k} exceeds the maximum allowed {MAX_LOGPROBS}", "BadRequestError")
        parts = body["messages"][-1]["content"]
        image = _decode_data_url(parts[0]["image_url"]["url"])
        text = parts[1]["text"]
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        logprobs, n_prompt = self._forward(prompt, image)
        values, ids = torch.topk(logprobs, max(k, 1))
        best = int(ids[0])
        entry = self._token_entry(best, float(values[0]))
        entry["top_logprobs"] = [self._token_entry(int(i), float(v)) for v, i in zip(values[:k], ids[:k])]
        if record is not None:
            record.top_ids = [int(i) for i in ids[:k]]
            record.top = [(e["token"], e["logprob"]) for e in entry["top_logprobs"]]
        return 200, {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": self.served_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": entry["token"]},
                         "finish_reason": "length",
                         "logprobs": {"content": [entry] if body.get("logprobs") else None}}],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": 1, "total_tokens": n_prompt + 1},
        }

    def models(self) -> tuple[int, dict[str, Any]]:
        if not self.list_models:
            return 404, _error("no route /v1/models", "NotFoundError")
        with self._lock:
            self.listings += 1
        card = {"id": self.served_name, "object": "model", "created": 0, "owned_by": "zeal-test"}
        if self.describe:
            card.update(root=self.root_path, parent=None, max_model_len=MAX_MODEL_LEN)
        return 200, {"object": "list", "data": [card]}

    def tokenize(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not self.tokenize_enabled:
            return 404, _error("no route /tokenize", "NotFoundError")
        with self._lock:
            self.tokenize_calls += 1
        ids = self.tokenizer.encode(body["prompt"], add_special_tokens=bool(body.get("add_special_tokens", True)))
        return 200, {"count": len(ids), "max_model_len": MAX_MODEL_LEN, "tokens": ids, "token_strs": None}

    def detokenize(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not self.tokenize_enabled:
            return 404, _error("no route /detokenize", "NotFoundError")
        return 200, {"prompt": self.tokenizer.decode([int(t) for t in body["tokens"]])}

    def generate(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        logprobs, n_prompt = self._forward(body["text"], _decode_data_url(body["image_data"]))
        best = int(logprobs.argmax())
        ids = [int(i) for i in body.get("token_ids_logprob") or []]
        meta = {"id": uuid.uuid4().hex, "prompt_tokens": n_prompt, "completion_tokens": 1, "finish_reason": {"type": "length", "length": 1}}
        if body.get("return_logprob"):
            meta["output_token_logprobs"] = [[float(logprobs[best]), best, None]]
            meta["output_token_ids_logprobs"] = [[[float(logprobs[i]), i, None] for i in ids]]
        return 200, {"text": self.tokenizer.decode([best]), "output_ids": [best], "meta_info": meta}


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": None}}


def _decode_data_url(url: str):
    from PIL import Image

    header, payload = url.split(",", 1)
    if not header.startswith("data:image/") or ";base64" not in header:
        raise ValueError(f"not a base64 image data URL: {header[:40]}")
    return Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB")


def _image_hash(body: dict[str, Any]) -> str | None:
    try:
        url = body["image_data"] if "image_data" in body else body["messages"][-1]["content"][0]["image_url"]["url"]
    except (KeyError, IndexError, TypeError):
        return None
    return hashlib.sha1(base64.b64decode(url.split(",", 1)[1])).hexdigest()[:16]


def _text(body: dict[str, Any]) -> str | None:
    try:
        return body["text"] if "text" in body else body["messages"][-1]["content"][1]["text"]
    except (KeyError, IndexError, TypeError):
        return None


def _cut(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass


def _make_handler(server: LVLMTestServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the openai client expects

        def setup(self) -> None:
            super().setup()
            with server._lock:
                server._connections.add(self.connection)

        def finish(self) -> None:
            with server._lock:
                server._connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") == "/v1/models":
                status, payload = server.models()
            else:
                status, payload = 404, _error(f"no route {self.path}", "NotFoundError")
            self._send(status, payload)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") in ("/tokenize", "/detokenize"):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                handler = server.tokenize if self.path.rstrip("/") == "/tokenize" else server.detokenize
                self._send(*handler(body))
                return
            arrival = time.monotonic()
            with server._lock:
                server.active += 1
                server.peak_active = max(server.peak_active, server.active)
            try:
                self._handle(arrival)
            finally:
                with server._lock:
                    server.active -= 1

        def _handle(self, arrival: float) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            record = Record(arrival, self.path, _image_hash(body), _text(body))
            with server._lock:
                server.records.append(record)
                drop = server._drops > 0
                server._drops -= int(drop)
                status = server._fail.pop(0) if (not drop and server._fail) else None
                delay = server._delays.pop(0) if server._delays else 0.0
            if drop:
                record.outcome = "drop"
                self.close_connection = True
                _cut(self.connection)
                return
            if status is not None:
                record.outcome = f"status:{status}"
                self._send(status, _error(f"injected fault {status}", "InjectedFault"))
                return
            if server.delay_s or delay:
                time.sleep(server.delay_s + delay)
            try:
                if self.path.rstrip("/") == "/v1/chat/completions":
                    status, payload = server.chat_completion(body, record)
                elif self.path.rstrip("/") == "/generate":
                    status, payload = server.generate(body)
                else:
                    status, payload = 404, _error(f"no route {self.path}", "NotFoundError")
            except Exception as err:  # a malformed request is the client's bug: say so in a 400
                record.outcome = f"error:{type(err).__name__}: {err}"
                self._send(400, _error(f"{type(err).__name__}: {err}", "BadRequestError"))
                return
            record.outcome = "ok" if status == 200 else f"status:{status}"
            self._send(status, payload)

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the server was stopped under this request
                self.close_connection = True

    return Handler
