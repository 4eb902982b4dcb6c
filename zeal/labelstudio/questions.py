"""The start/end questions for each label of a Label Studio project, looked up in this order:
the query file the backend was started with, our built-in library (names match ignoring case,
spaces, underscores and hyphens), then questions the LLM wrote for this project before; a label
none of them knows is written by the LLM (when one is configured) and saved with the project, so
it is written once. Questions carry the project's own label names, so predictions use them."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Iterable

from zeal.config import LLMConfig
from zeal.errors import LabelStudioError, QueryError
from zeal.export import safe_stem
from zeal.queries import ActionQuery, QuerySet, class_key, list_libraries, load_library

log = logging.getLogger(__name__)

PROJECTS_DIR = "projects"
QUERIES_FILE = "queries.json"


class QuestionBook:
    """queries: the user's query file (or None); llm / llm_key: the LLM that writes questions for
    unknown labels (None: such labels get no predictions); state_dir: where each project's
    LLM-written questions are kept (state_dir/projects/<project>/queries.json)."""

    def __init__(self, state_dir: Path, queries: QuerySet | None = None, llm: LLMConfig | None = None,
                 llm_key: str | None = None):
        self.state_dir = Path(state_dir)
        self.user_queries = queries
        self.llm, self._llm_key = llm, llm_key
        self._lock = threading.Lock()
        self._known: dict[str, ActionQuery] = {}
        for library in list_libraries():
            for q in load_library(library):
                self._known.setdefault(class_key(q.name), q)
        for q in queries or ():  # the user's file wins over the library
            self._known[class_key(q.name)] = q

    @property
    def can_write(self) -> bool:
        return self.llm is not None and bool(self.llm.base_url and self.llm.model)

    def fingerprint(self) -> str:
        """Changes when the user's query file does (part of the model version Label Studio sees)."""
        blob = json.dumps(self.user_queries.to_dict() if self.user_queries else {}, sort_keys=True)
        return hashlib.blake2b(blob.encode(), digest_size=6).hexdigest()

    def _project_file(self, project: str) -> Path:
        return self.state_dir / PROJECTS_DIR / safe_stem(project or "project") / QUERIES_FILE

    def _project_queries(self, project: str) -> QuerySet:
        path = self._project_file(project)
        if not path.exists():
            return QuerySet()
        try:
            return QuerySet.load(path)
        except QueryError as exc:
            log.warning("ignoring the saved questions of project %s (%s); they will be written again", project, exc)
            return QuerySet()

    def known(self, labels: Iterable[str], project: str) -> tuple[QuerySet, list[str]]:
        """(questions found without the LLM, under the labels' own names; labels without any)."""
        saved = self._project_queries(project)
        found, missing = [], []
        for label in labels:
            source = self._known.get(class_key(label)) or saved.get(label)
            if source is None:
                missing.append(label)
                continue
            try:
                found.append(ActionQuery(label, source.start, source.end, source.description))
            except QueryError as exc:
                log.warning("label %r cannot be used as a class name (%s); it gets no predictions", label, exc)
        return QuerySet(found), missing

    def resolve(self, labels: Iterable[str], project: str) -> QuerySet:
        """Questions for every label that can have them, asking the LLM (once per project) for the
        rest when one is configured. LabelStudioError when no label has questions."""
        labels = list(labels)
        with self._lock:
            found, missing = self.known(labels, project)
            if missing and self.can_write:
                from zeal.llm import generate_queries  # noqa: PLC0415 (loads the openai client)

                log.info("project %s: asking the LLM for questions for %s", project, ", ".join(missing))
                written = generate_queries(missing, self.llm, api_key=self._llm_key)
                saved = self._project_queries(project)
                for q in written:
                    saved = saved.replace(q)
                saved.save(self._project_file(project))
                found, missing = self.known(labels, project)
        if missing:
            log.warning("project %s: no questions for %s (give --queries FILE or an LLM); no predictions for them",
                        project, ", ".join(missing))
        if not len(found):
            raise LabelStudioError(no_questions_message(labels))
        return found


def no_questions_message(labels: list[str]) -> str:
    return (f"none of the project's labels ({', '.join(labels) or 'none'}) has questions in the query file or "
            "the built-in library; start `zeal serve-ls` with --queries FILE, or with --llm-base-url and "
            "--llm-model so an LLM writes them")
