"""The HTTP side of the ML backend: the routes Label Studio calls, on Starlette + uvicorn (both
come with gradio, already in our stack). Every route answers JSON; /predict runs in a worker
thread so /health keeps answering within Label Studio's 1-second limit while videos are scored."""

from __future__ import annotations

import json
import logging

from zeal.errors import ZealError
from zeal.labelstudio.backend import ZealBackend

log = logging.getLogger(__name__)


def create_app(backend: ZealBackend):
    """A Starlette app with /health (GET), /setup, /predict, /webhook (POST) and /versions (GET)."""
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.concurrency import run_in_threadpool  # noqa: PLC0415
    from starlette.responses import JSONResponse  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    async def body_of(request) -> dict:
        try:
            body = json.loads(await request.body() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"the request body is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise ValueError("the request body must be a JSON object")
        return body

    def failed(exc: Exception, status: int) -> JSONResponse:
        log.error("%s", exc)
        return JSONResponse({"error": str(exc)}, status_code=status)

    async def health(request):
        return JSONResponse({"status": "UP", "model_class": "ZEAL"})

    async def setup(request):
        try:
            body = await body_of(request)
            return JSONResponse(backend.setup(str(body.get("project") or ""), body.get("schema") or ""))
        except (ValueError, ZealError) as exc:
            return failed(exc, 400)

    async def predict(request):
        try:
            body = await body_of(request)
            tasks = body.get("tasks") or []
            if not isinstance(tasks, list):
                raise ValueError("'tasks' must be a list")
            results = await run_in_threadpool(backend.predict, tasks, str(body.get("project") or ""),
                                              body.get("label_config") or "")
            return JSONResponse({"results": results})
        except (ValueError, ZealError) as exc:
            return failed(exc, 400)

    async def versions(request):
        return JSONResponse({"versions": []})

    async def webhook(request):  # training events: ZEAL is zero-shot, there is nothing to train
        return JSONResponse({"status": "ignored"})

    return Starlette(routes=[
        Route("/", health, methods=["GET"]), Route("/health", health, methods=["GET"]),
        Route("/setup", setup, methods=["POST"]), Route("/predict", predict, methods=["POST"]),
        Route("/versions", versions, methods=["GET"]), Route("/webhook", webhook, methods=["POST"]),
    ])


def serve(backend: ZealBackend, host: str, port: int) -> None:
    """Run the app until interrupted."""
    import uvicorn  # noqa: PLC0415

    uvicorn.run(create_app(backend), host=host, port=port, log_level="info", access_log=True)
