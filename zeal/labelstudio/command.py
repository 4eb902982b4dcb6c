"""`zeal serve-ls`: build the backend from the command line's settings and serve it."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from zeal.errors import ConfigError

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 9090
STATE_SUBDIR = "label-studio"


def serve_ls(args, config) -> int:
    """args: the parsed `zeal serve-ls` flags; config: the ZealConfig from the model flags."""
    from zeal.config import LLMConfig
    from zeal.labelstudio.backend import ZealBackend
    from zeal.labelstudio.client import KEY_ENV, URL_ENV, LabelStudioClient
    from zeal.labelstudio.questions import QuestionBook
    from zeal.labelstudio.server import serve
    from zeal.pipeline import ZealPipeline
    from zeal.queries import QuerySet

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    queries = QuerySet.load(Path(args.queries).expanduser()) if args.queries else None
    if bool(args.llm_base_url) != bool(args.llm_model):
        raise ConfigError("an LLM needs both --llm-base-url URL and --llm-model NAME")
    llm = (LLMConfig(base_url=args.llm_base_url, model=args.llm_model, api_key_env=args.llm_api_key_env)
           if args.llm_base_url else None)
    client = LabelStudioClient.from_env()
    if not client.configured:
        print(f"zeal serve-ls: warning: {URL_ENV} and {KEY_ENV} are not both set; videos stored in Label "
              "Studio (uploads, local files, cloud storage) cannot be fetched", file=sys.stderr)
    state_dir = Path(args.state_dir).expanduser() if args.state_dir else Path(config.cache_dir).expanduser() / STATE_SUBDIR
    pipeline = ZealPipeline(config)
    print("zeal serve-ls: loading the models ...", file=sys.stderr, flush=True)
    _ = pipeline.clip, pipeline.lvlm  # a bad model path fails here, once, not on every task
    questions = QuestionBook(state_dir, queries, llm, llm_key=os.environ.get(args.llm_api_key_env) if llm else None)
    backend = ZealBackend(pipeline, client, questions, state_dir, known_classes=args.known_classes,
                          wait_s=args.wait)
    print(f"zeal serve-ls: Label Studio ML backend on http://{args.host}:{args.port} (add this URL in the "
          f"project's Settings > Model); videos from {client.url or '(no Label Studio URL)'}", file=sys.stderr,
          flush=True)
    try:
        serve(backend, args.host, args.port)
    finally:
        backend.close()
    return 0
