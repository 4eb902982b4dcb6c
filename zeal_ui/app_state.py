"""What one running app holds: its project, the shared pipeline, the background scoring queue, the
limits, and the media links. Created by `create_demo` and passed to the handlers (never a module
global).

Media links: the page's player gets `/zeal/media/<token>`, where the token is a random name made
for one video file when the page asks for it; it opens that file and nothing else. No URL the page
hands out names the project, its folder or a session, and the project's own files are never served.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from zeal.project import Project
from zeal_ui.scoring import ScoringQueue

MEDIA_ROUTE = "/zeal/media/{token}"


@dataclass(frozen=True)
class AppLimits:
    """Safety limits of one app instance. max_upload_mb: largest upload (MB); max_duration_min:
    longest video accepted for analysis (minutes)."""

    max_upload_mb: float = 2000.0
    max_duration_min: float = 240.0


@dataclass
class AppState:
    project: Project
    pipeline: object
    limits: AppLimits = field(default_factory=AppLimits)
    queue: ScoringQueue | None = None
    downloads: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="zeal-downloads-")))
    _media: dict[str, Path] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def media_url(self, vid: str) -> str | None:
        """A link to this video's file for the page's player (None when the file is missing)."""
        path = self.project.video_path(vid)
        if path is None:
            return None
        with self._lock:
            token = self._tokens.get(vid)
            if token is None or self._media.get(token) != path:
                token = secrets.token_urlsafe(18)
                self._tokens[vid], self._media[token] = token, path
        return MEDIA_ROUTE.format(token=token).lstrip("/")  # relative: works under a root path too

    def media_file(self, token: str) -> Path | None:
        with self._lock:
            path = self._media.get(token)
        return path if path is not None and path.is_file() else None

    def server_folders(self) -> list[Path]:
        """The server's own folders that no message in the browser should show (zeal_ui.notices)."""
        from zeal_ui.notices import upload_folder

        return [upload_folder(), self.downloads, self.project.root / "media"]

    def download_folder(self) -> Path:
        """A fresh folder for one export's files, outside the project: Gradio copies what a handler
        returns into its own cache and serves it from there, under a content hash."""
        self.downloads.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.downloads))


def add_media_route(app, state: AppState) -> None:
    """Serve `/zeal/media/<token>` (with byte ranges, so the player can seek) on Gradio's app."""
    from fastapi.responses import FileResponse, PlainTextResponse

    def media(token: str):
        path = state.media_file(token)
        if path is None:
            return PlainTextResponse("no such video", status_code=404)
        return FileResponse(path, headers={"Cache-Control": "private, no-store"},
                            filename=os.path.basename(path), content_disposition_type="inline")

    app.add_api_route(MEDIA_ROUTE, media, methods=["GET", "HEAD"])
