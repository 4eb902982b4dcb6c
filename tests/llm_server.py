"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions schema with scripted answers
(shared by the LLM, bad-input and secret tests)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer:
    """POST /v1/chat/completions answers from a queue of scripted steps:
    ("ok", content) | ("status", code, message) | ("sleep", seconds, content) |
    ("raw", code, content type, body text) (e.g. a proxy's HTML login page)."""

    def __init__(self):
        self.script = []
        self.requests = []  # (path, headers dict lower-cased, parsed body)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()},
                                       json.loads(raw), raw.decode()))
                if self.path != "/v1/chat/completions":
                    return self.reply(404, {"error": {"message": f"no route {self.path}"}})
                step = owner.script.pop(0) if owner.script else ("status", 418, "script exhausted")
                if step[0] == "ok":
                    return self.reply(200, completion(step[1]))
                if step[0] == "sleep":
                    time.sleep(step[1])
                    return self.reply(200, completion(step[2]))
                if step[0] == "raw":
                    return self.reply(step[1], step[3].encode(), step[2])
                return self.reply(step[1], {"error": {"message": step[2], "type": "test_error"}})

            def reply(self, code, payload, content_type="application/json"):
                body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def bodies(self):
        return [r[2] for r in self.requests]


def completion(content):
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "test-model",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
