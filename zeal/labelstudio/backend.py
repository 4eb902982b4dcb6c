"""The ML backend's logic, free of HTTP: what /setup and /predict answer.

Label Studio waits ML_TIMEOUT_PREDICT (100 s by default) for /predict, and the task page waits with
it when the task is opened. So every task is analysed in a background worker (one at a time: one
GPU) and /predict waits at most `wait_s` for the tasks it was asked about. A task whose analysis is
done (or comes straight from the score cache, which takes seconds) is answered with its
prediction; a task still being scored is answered with an empty list of predictions, which Label
Studio accepts and stores nothing for. The task then has no prediction, so Label Studio asks again
the next time the task is opened (or on "Retrieve Predictions"), and by then the answer is ready.
What the annotator sees: the first opening of a long video shows no regions; a later opening (or
a page reload) shows them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Sequence

from zeal.errors import LabelStudioError, ZealError
from zeal.export import labelstudio_prediction, labelstudio_regions
from zeal.labelstudio.client import LabelStudioClient
from zeal.labelstudio.config import LabelingConfig, parse_labeling_config
from zeal.labelstudio.questions import QuestionBook, no_questions_message
from zeal.review import select
from zeal.types import Result

log = logging.getLogger(__name__)

DEFAULT_WAIT_S = 20.0  # well inside Label Studio's 100 s, short enough for a task page to open
MAX_KEPT_JOBS = 256  # finished analyses kept in memory; older ones come back from the score cache
VIDEOS_DIR = "videos"


class ZealBackend:
    """pipeline: a ZealPipeline (its models and score cache are the app's and the CLI's);
    client: fetches task videos from Label Studio; questions: the questions per label;
    state_dir: downloaded videos and per-project questions; known_classes: score every label
    (skip CLIP's class filtering); wait_s: how long /predict waits for unfinished tasks."""

    def __init__(self, pipeline, client: LabelStudioClient, questions: QuestionBook, state_dir: Path,
                 known_classes: bool = False, wait_s: float = DEFAULT_WAIT_S):
        self.pipeline, self.client, self.questions = pipeline, client, questions
        self.videos_dir = Path(state_dir) / VIDEOS_DIR
        self.known_classes, self.wait_s = known_classes, float(wait_s)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zeal-ls")
        self._jobs: dict[str, Future] = {}
        self._lock = threading.Lock()

    # --- the protocol ------------------------------------------------------------------------
    def model_version(self, config: LabelingConfig) -> str:
        """zeal-<version>-<hash of the settings, the labels and the query file>: it changes when
        any of them does, so Label Studio asks again for tasks predicted under the old one."""
        from zeal import __version__  # noqa: PLC0415

        settings = self.pipeline.config.to_dict()
        settings.pop("cache_dir", None)
        settings.pop("llm", None)
        blob = json.dumps([settings, list(config.labels), self.questions.fingerprint(), self.known_classes],
                          sort_keys=True, default=str)
        return f"zeal-{__version__}-{hashlib.blake2b(blob.encode(), digest_size=4).hexdigest()}"

    def setup(self, project: str, schema: str) -> dict[str, str]:
        """/setup: check the labeling config (fast: Label Studio waits 3 s) and name the model
        version. LabelStudioError when ZEAL cannot predict anything for this project."""
        config = parse_labeling_config(schema)
        found, missing = self.questions.known(config.labels, project)
        if missing and not self.questions.can_write:
            if not len(found):
                raise LabelStudioError(no_questions_message(list(config.labels)))
            log.warning("project %s: no questions for %s; they get no predictions (give --queries FILE or an LLM)",
                        project, ", ".join(missing))
        return {"model_version": self.model_version(config)}

    def predict(self, tasks: Sequence[dict[str, Any]], project: str, label_config: str) -> list:
        """/predict: one entry per task, in order: a prediction {"result": regions, "score",
        "model_version"}, or [] (no prediction) for a task still being scored or one that failed
        (the reason goes to the log)."""
        config = parse_labeling_config(label_config)
        version = self.model_version(config)
        deadline = time.monotonic() + self.wait_s
        jobs = []
        for task in tasks:
            try:
                jobs.append(self._job(task, config, project))
            except ZealError as exc:
                log.error("task %s: %s", task.get("id"), exc)
                jobs.append(None)
        out: list = []
        for task, job in zip(tasks, jobs):
            if job is None:
                out.append([])
                continue
            try:
                result = job.result(timeout=max(0.0, deadline - time.monotonic()))
                out.append(self.prediction(result, config, task, version))
            except FutureTimeout:
                log.info("task %s: still scoring; answered without a prediction (Label Studio asks again when "
                         "the task is opened)", task.get("id"))
                out.append([])
            except ZealError as exc:
                log.error("task %s: %s", task.get("id"), exc)
                out.append([])
            except Exception:  # a bug on one task must not fail the others
                log.exception("task %s: unexpected error", task.get("id"))
                out.append([])
        return out

    def prediction(self, result: Result, config: LabelingConfig, task: dict[str, Any], version: str) -> dict:
        """The review set (one candidate per action) as timeline regions at the config's frame rate."""
        regions = labelstudio_regions(select(result, proposals="review"), config.fps(task.get("data") or {}),
                                      from_name=config.from_name, to_name=config.to_name)
        prediction = labelstudio_prediction(regions)
        prediction["model_version"] = version
        return prediction

    # --- background analyses -----------------------------------------------------------------
    def _job(self, task: dict[str, Any], config: LabelingConfig, project: str) -> Future:
        data = task.get("data") or {}
        ref = data.get(config.video_key)
        if not ref:
            raise LabelStudioError(f"the task has no {config.video_key!r} in its data (the <Video> value "
                                   f"is ${config.video_key})")
        key = json.dumps([str(ref), list(config.labels), project, self.model_version(config)])
        with self._lock:
            job = self._jobs.get(key)
            if job is None or (job.done() and job.exception() is not None):  # new, or failed before: try again
                job = self._worker.submit(self._analyse, str(ref), task.get("id"), config.labels, project)
                self._jobs[key] = job
                self._forget_old()
            return job

    def _analyse(self, ref: str, task_id, labels: Sequence[str], project: str) -> Result:
        queries = self.questions.resolve(labels, project)
        t0 = time.monotonic()
        video = self.client.download(ref, self.videos_dir, task_id)
        result = self.pipeline.run(str(video), queries=queries, known_classes=self.known_classes)
        stats = result.run.stats if result.run is not None else {}
        log.info("task %s: %d interval(s) in %.1f s (%s question(s) scored, %s from the cache)", task_id,
                 len(result.intervals), time.monotonic() - t0, stats.get("questions_scored"),
                 stats.get("questions_cached"))
        return result

    def _forget_old(self) -> None:
        finished = [k for k, job in self._jobs.items() if job.done()]
        for key in finished[: max(0, len(self._jobs) - MAX_KEPT_JOBS)]:
            del self._jobs[key]

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
