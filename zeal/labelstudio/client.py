"""Fetch a task's video from Label Studio, the way its own player does, with the user's API key.

Label Studio 1.23 hands out two kinds of key: a personal access token (a JWT refresh token, the
default) is exchanged at /api/token/refresh/ for a short-lived access token sent as
"Authorization: Bearer ..."; a legacy token (when the organization enables them) is sent as
"Authorization: Token ...". Only a personal access token opens /data/local-files/ (a plain Django
view that knows no legacy tokens); uploads (/data/upload/) open with either.

The key goes only to Label Studio's own origin: a video on another host (a web server, a presigned
storage URL Label Studio redirects to) is fetched without it. Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

from zeal.errors import LabelStudioError

URL_ENV, KEY_ENV = "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"
DEFAULT_TIMEOUT_S = 60.0
CHUNK_BYTES = 1 << 20
_REMOTE_SCHEMES = ("s3", "gs", "azure-blob", "azure-spi")  # cloud storage URIs Label Studio resolves


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class LabelStudioClient:
    """url: Label Studio's address as the backend reaches it (http://host:8080); api_key: a personal
    access token or a legacy token. Thread-safe."""

    def __init__(self, url: str, api_key: str, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.url = (url or "").rstrip("/")
        self._key = (api_key or "").strip()
        self.timeout_s = timeout_s
        self._access: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> "LabelStudioClient":
        return cls(os.environ.get(URL_ENV, ""), os.environ.get(KEY_ENV, ""))

    @property
    def configured(self) -> bool:
        return bool(self.url and self._key)

    @property
    def personal_token(self) -> bool:
        """A JWT (three dot-separated parts) is a personal access token; anything else is legacy."""
        return self._key.count(".") == 2

    # --- authentication ----------------------------------------------------------------------
    def _auth_header(self, fresh: bool = False) -> str:
        if not self.personal_token:
            return f"Token {self._key}"
        with self._lock:
            if self._access is None or fresh:
                self._access = self._refresh()
            return f"Bearer {self._access}"

    def _refresh(self) -> str:
        request = urllib.request.Request(f"{self.url}/api/token/refresh/", method="POST",
                                         data=json.dumps({"refresh": self._key}).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())["access"]
        except urllib.error.HTTPError as exc:
            raise LabelStudioError(f"Label Studio at {self.url} refused the personal access token in "
                                   f"{KEY_ENV} (HTTP {exc.code}); copy a fresh one from Account & Settings") from None
        except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
            raise LabelStudioError(f"cannot reach Label Studio at {self.url} to use the access token ({exc}); "
                                   f"check {URL_ENV}") from None

    # --- media -------------------------------------------------------------------------------
    def media_url(self, ref: str, task_id: int | None = None) -> str:
        """The absolute URL of a task's video reference: "/data/upload/..." and "/data/local-files/?d=..."
        are on Label Studio; "s3://..." and other storage URIs go through its resolver."""
        ref = str(ref or "").strip()
        if not ref:
            raise LabelStudioError("the task has no video URL in its data")
        scheme = urllib.parse.urlsplit(ref).scheme.lower()
        if scheme in ("http", "https"):
            return ref
        if scheme in _REMOTE_SCHEMES:
            if task_id is None:
                raise LabelStudioError(f"cannot resolve {ref!r} without the task id")
            token = base64.urlsafe_b64encode(ref.encode()).decode()
            return self._on_ls(f"/tasks/{int(task_id)}/resolve/?fileuri={urllib.parse.quote(token)}")
        if ref.startswith("/"):
            return self._on_ls(ref)
        raise LabelStudioError(f"the task's video {ref!r} is neither a URL nor a Label Studio path; import "
                               "the video into Label Studio or give a URL (see `zeal export --media-url`)")

    def _on_ls(self, path: str) -> str:
        if not self.url:
            raise LabelStudioError(f"the task's video {path!r} lies on Label Studio, but {URL_ENV} is not set; "
                                   f"start `zeal serve-ls` with {URL_ENV}=http://your-label-studio:8080")
        return self.url + path

    def download(self, ref: str, folder: Path, task_id: int | None = None) -> Path:
        """The video of `ref`, fetched once into `folder` (named by a hash of its URL, keeping its
        file extension) and reused afterwards. LabelStudioError with what to fix when it fails."""
        url = self.media_url(ref, task_id)
        suffix = _suffix(ref) or _suffix(url) or ".mp4"
        path = Path(folder) / (hashlib.blake2b(url.encode(), digest_size=12).hexdigest() + suffix)
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            self._fetch(url, part)
            os.replace(part, path)
        finally:
            part.unlink(missing_ok=True)
        return path

    def _fetch(self, url: str, dest: Path) -> None:
        own = self.url and _origin(url) == _origin(self.url)
        if own and not self._key:
            raise LabelStudioError(f"Label Studio asks for a login to send {url}; set {KEY_ENV} to a personal "
                                   "access token (Account & Settings in Label Studio)")
        for attempt in range(2):
            request = urllib.request.Request(url)
            if own:  # unredirected: the key never follows a redirect to another host
                request.add_unredirected_header("Authorization", self._auth_header(fresh=attempt > 0))
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response, open(dest, "wb") as fh:
                    shutil.copyfileobj(response, fh, CHUNK_BYTES)
                return
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and own and self.personal_token and attempt == 0:
                    continue  # the access token expired: refresh once
                raise LabelStudioError(_http_advice(url, exc.code, self.personal_token)) from None
            except (urllib.error.URLError, OSError) as exc:
                raise LabelStudioError(f"cannot fetch the task's video {url}: {exc}") from None


def _suffix(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    name = (query.get("d") or [parts.path])[0]  # local-files keep the path in ?d=
    suffix = PurePosixPath(urllib.parse.unquote(name)).suffix.lower()
    return suffix if 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ""


def _http_advice(url: str, code: int, personal: bool) -> str:
    if code in (401, 403):
        hint = ("the key is not accepted: use a personal access token of a user of this project"
                if personal else "legacy tokens cannot open local files and may be disabled: use a personal "
                "access token (Account & Settings)")
        if "/data/local-files/" in url:
            hint += "; local files also need LOCAL_FILES_SERVING_ENABLED=true and a local storage on the project"
        return f"Label Studio answered HTTP {code} for the task's video {url}: {hint}"
    if code == 404:
        return (f"Label Studio answered 404 for the task's video {url}: the file is not where the task says "
                "(for /data/local-files/ check LOCAL_FILES_DOCUMENT_ROOT and the project's local storage path)")
    return f"Label Studio answered HTTP {code} for the task's video {url}"
