"""Wiring only: video -> (CLIP filtering) -> per-frame CLIP embeddings and LVLM P(yes) curves
-> proposals -> Result. Every per-frame series goes through the score cache, keyed on the scorers'
own `model_id`, so a second run of the same video, or a run after one edited question, only computes
what is new, and a different model never gets another model's scores.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from zeal import video as video_io
from zeal.cache import ScoreCache, cache_key
from zeal.config import ProposalParams, ZealConfig, get_preset, result_settings
from zeal.decode_ahead import decode_ahead, decoder_threads
from zeal.errors import CANCELLED_MESSAGE, Cancelled, ConfigError, ZealError
from zeal.proposals import normalize, propose
from zeal.queries import ActionQuery, QuerySet, lookup, prompt_text
from zeal.review import CarryOver, carry_over, mark_review_set, unique_ids
from zeal.scorers import (ClipScorerLike, PYesScorer, build_clip, build_lvlm, clip_model_id, is_remote,
                          local_lvlm_model_id)
from zeal.types import ClassResult, Curves, Interval, Result, RunInfo

ProgressFn = Callable[[str, int, int], None]
CancelFn = Callable[[], bool]

# A long run writes its partial curves to the cache this often, so a crash loses at most this much.
FLUSH_INTERVAL_S = 20.0
@dataclass
class _Series:
    """A per-frame array being filled in time order, starting from what the cache already had."""

    key: str
    parts: list[np.ndarray] = field(default_factory=list)
    count: int = 0
    complete: bool = False
    times_s: np.ndarray | None = None  # of the cached prefix

    def values(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0)


class ZealPipeline:
    """Localize actions in videos. Built from already-built scorers (tests pass tiny models in; any
    `PYesScorer` / `ClipScorerLike` will do), or from a configuration with `from_config`, which loads
    each model on its first use only.

    One pipeline may serve several users at once: models load once, under a lock, and each run keeps
    its state on the stack.
    """

    def __init__(self, config: ZealConfig, clip: ClipScorerLike | None = None, lvlm: PYesScorer | None = None,
                 cache: ScoreCache | None = None):
        self.config = copy.deepcopy(config)
        self._clip = clip
        self._lvlm = lvlm
        self.cache = cache if cache is not None else ScoreCache(self.config.cache_dir)
        self._load_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: ZealConfig | str = "balanced") -> "ZealPipeline":
        """A pipeline whose models load lazily. config: a ZealConfig or a preset name."""
        return cls(get_preset(config) if isinstance(config, str) else config)

    # --- models, loaded on first use -------------------------------------------------------
    @property
    def clip(self) -> ClipScorerLike:
        with self._load_lock:
            if self._clip is None:
                self._clip = build_clip(self.config.clip)
            return self._clip

    @property
    def lvlm(self) -> PYesScorer:
        with self._load_lock:
            if self._lvlm is None:
                self._lvlm = build_lvlm(self.config.lvlm)
            return self._lvlm

    def models_loaded(self) -> dict[str, bool]:
        return {"clip": self._clip is not None, "lvlm": self._lvlm is not None}

    def model_ids(self) -> dict[str, str]:
        """{"clip": ..., "lvlm": ...}: the scorers' model_id, which keys every cached score. Before a
        local model is loaded, the id it will have (its fingerprint); a server is always asked."""
        clip = self._clip.model_id if self._clip is not None else clip_model_id(self.config.clip)
        if self._lvlm is None and not is_remote(self.config.lvlm.model):
            lvlm = local_lvlm_model_id(self.config.lvlm)
        else:
            lvlm = self.lvlm.model_id
        return {"clip": clip, "lvlm": lvlm}

    def run_key(self, video_hash: str, queries: QuerySet, known_classes: bool,
                model_ids: dict[str, str] | None = None) -> str:
        """What a result of `run(video, queries=queries, known_classes=...)` depends on: the video's
        content, the settings that change scores or intervals, the models, the questions."""
        return cache_key("run", video_hash, result_settings(self.config), model_ids or self.model_ids(),
                         queries.to_dict(), bool(known_classes))

    # --- public API ------------------------------------------------------------------------
    def rank_classes(self, video: str, classes: Sequence[str] | QuerySet) -> list[tuple[str, float]]:
        """CLIP's ranking of classes for this video: the mean feature of n_filter_frames frames spread
        over the video against each class's name or description (ClipConfig.filter_text); (name,
        cosine), best first. classes: names (descriptions from the built-in library) or a QuerySet."""
        video = _video_path(video)
        queries = classes if isinstance(classes, QuerySet) else None
        names = queries.names if queries is not None else ([classes] if isinstance(classes, str) else list(classes))
        if not names:
            raise ConfigError("no classes to rank: pass class names (e.g. ['CliffDiving', 'Diving']) or a query set")
        if queries is None and self.config.clip.filter_text == "description":
            queries = lookup(names)
        return self._rank(video, video_io.probe(video), video_io.video_hash(video), names, queries)

    def _filter_texts(self, names: Sequence[str], queries: QuerySet | None) -> list[str]:
        from zeal.scorers.clip import class_text

        if self.config.clip.filter_text == "description":
            if queries is None:
                raise ConfigError("class filtering by description needs the classes' queries; pass a QuerySet")
            return [queries[n].description for n in names]
        return [class_text(n) for n in names]

    def _rank(self, video: str, info, vhash: str, names: Sequence[str], queries: QuerySet | None,
              clip_id: str | None = None) -> list[tuple[str, float]]:
        from zeal.scorers.clip import mean_similarity

        c, v = self.config.clip, self.config.video
        texts = self._filter_texts(names, queries)
        key = cache_key("ranking", vhash, clip_id or self.model_ids()["clip"], c.n_filter_frames, v.fps,
                        v.max_side, v.backend, list(names), texts)
        entry = self.cache.get(key)
        if entry is None:
            n = max(1, video_io.expected_samples(info, v.fps))
            # As the published stage 3: indices linspace(0, N-1, k) truncated, repeats kept (they weigh
            # in the mean) when the video has fewer than k sampled frames.
            idx = np.linspace(0, n - 1, c.n_filter_frames).astype(int)
            frames = video_io.frames_at(video, idx / v.fps, max_side=v.max_side, backend=v.backend, info=info)
            clip = self.clip
            scores = mean_similarity(clip.embed_images(list(frames.images)), clip.embed_texts(texts)).astype(np.float64)
            self.cache.put(key, scores, np.zeros(len(names)), complete=True)
        else:
            scores = entry.values
        order = np.argsort(-scores, kind="stable")
        return [(names[i], float(scores[i])) for i in order]

    def run(self, video: str, classes: Sequence[str] | None = None, queries: QuerySet | None = None,
            known_classes: bool = False, progress: ProgressFn | None = None,
            cancel: CancelFn | None = None, video_hash: str | None = None) -> Result:
        """Localize the given classes in one video.

        classes: names from the built-in library (or a subset of `queries`); queries: the questions
        to ask (defaults to the library's for `classes`). known_classes: the classes are known to
        occur, so CLIP filtering is skipped; otherwise only the top-k classes go on.
        progress(stage, done, total) is called as work advances; cancel() returning True stops
        the run with `Cancelled` (what was scored is kept in the cache). video_hash: the video's
        `zeal.video.video_hash` when the caller has it already (a multi-GB file takes seconds).

        Damaged stretches of the video are skipped (their samples are NaN in every curve, listed
        in `result.run.skipped`); anything the run worked around (skipped stretches, a timestamp
        jump, an unusable score cache) is a sentence in `result.run.warnings`.
        """
        video = _video_path(video)
        queries = _resolve_queries(classes, queries)
        with self.cache.watch() as cache_notes:  # the cache never stops a run: it says why it was not used
            result = self._run(video, queries, known_classes, progress, cancel, video_hash)
        result.run.warnings.extend(cache_notes.messages)
        return result

    def _run(self, video: str, queries: QuerySet, known_classes: bool, progress: ProgressFn | None,
             cancel: CancelFn | None, video_hash: str | None) -> Result:
        report = progress or (lambda stage, done, total: None)
        report("reading video", 0, 1)
        info = video_io.probe(video)
        video_io.check_sampling_rate(info, self.config.video.fps)  # before any model loads
        vhash = video_hash or video_io.video_hash(video)
        ids = self.model_ids()  # once: every key of this run names the same models
        run_key = self.run_key(vhash, queries, known_classes, ids)
        ranking = None
        if not known_classes and len(queries) > self.config.clip.top_k:
            report("choosing classes", 0, 1)
            ranking = self._rank(video, info, vhash, queries.names, queries, ids["clip"])
            queries = queries.subset([name for name, _ in ranking[: self.config.clip.top_k]])
        texts = {q.name: (self._prompt(q, q.start), self._prompt(q, q.end)) for q in queries}
        lvlm_before = dict(self._lvlm.stats) if self._lvlm is not None else {}
        times, p_yes, actionness, stats, skipped = self._score(video, info, vhash, queries, texts, ids, report,
                                                               cancel)
        classes_out = {}
        p = self.config.proposals
        for q in queries:
            start_raw, end_raw = p_yes[texts[q.name][0]], p_yes[texts[q.name][1]]
            curves = Curves(start_raw, end_raw, actionness[q.name],
                            normalize(start_raw, p.minmax_eps), normalize(end_raw, p.minmax_eps))
            classes_out[q.name] = ClassResult(q.name, q.to_dict(), curves, _intervals(curves, times, q.name, p))
        if self._lvlm is not None:  # the scorer's counters during this run (a server's requests, ...)
            stats["lvlm"] = {k: v - lvlm_before.get(k, 0) for k, v in self._lvlm.stats.items()}
        warnings = [*info.warnings, *([video_io.skipped_sentence(skipped)] if skipped else [])]
        run = RunInfo(video_hash=vhash, models=ids, known_classes=bool(known_classes), run_key=run_key,
                      ranking=ranking, stats=stats, skipped=skipped, warnings=warnings)
        report("done", 1, 1)
        return Result(info, times, classes_out, self.config.to_dict(), run)

    def repropose(self, result: Result, params: ProposalParams, suppressed: Iterable[str] = ()) -> Result:
        """The same curves with new proposal settings: no model runs. Every interval a person
        made, edited, accepted or rejected stays (see `zeal.review.carry_over`); only unreviewed
        model proposals are replaced, leaving out those whose id is in `suppressed`."""
        return self.reproposal(result, params, suppressed)[0]

    def reproposal(self, result: Result, params: ProposalParams,
                   suppressed: Iterable[str] = ()) -> tuple[Result, CarryOver]:
        """As `repropose`, with what it kept and replaced."""
        classes = {}
        for label, cls in result.classes.items():
            c = cls.curves
            if not np.isfinite(c.start_raw).any():  # a class kept for its reviewed intervals only
                classes[label] = ClassResult(label, dict(cls.query), c, [])
                continue
            # Raw curves are shared (never changed); the normalized ones follow the new settings.
            curves = Curves(c.start_raw, c.end_raw, c.actionness, normalize(c.start_raw, params.minmax_eps),
                            normalize(c.end_raw, params.minmax_eps))
            # carry_over decides the review set, with the reviewed intervals in it
            classes[label] = ClassResult(label, dict(cls.query), curves,
                                         _intervals(curves, result.times_s, label, params, review_set=False))
        out = Result(result.video, result.times_s, classes,
                     {**copy.deepcopy(result.settings), "proposals": vars(params).copy()}, result.run)
        return carry_over(result, out, suppressed)

    # --- internals -------------------------------------------------------------------------
    def _prompt(self, query: ActionQuery, question: str) -> str:
        return prompt_text(query.name, question, self.config.lvlm.prompt_template)

    def _score(self, video, info, vhash, queries, texts, ids, report, cancel):
        """Per-frame times, P(yes) for every prompt text, actionness per class (NaN where a sample
        could not be decoded) and the stretches decoding skipped: from the cache where present,
        computed (streaming the video once) where not."""
        from zeal.scorers.clip import frame_similarity

        v = self.config.video
        base = (vhash, v.fps, v.max_side, v.backend)
        all_texts = sorted({t for pair in texts.values() for t in pair})
        text_series = {t: self._open(cache_key("p_yes", ids["lvlm"], t, *base)) for t in all_texts}
        act_series = {q.name: self._open(cache_key("actionness", ids["clip"], q.description, *base))
                      for q in queries}
        todo_texts = [t for t in all_texts if not text_series[t].complete]
        todo_act = [q for q in queries if not act_series[q.name].complete]
        stats = {"questions_scored": len(todo_texts), "questions_cached": len(all_texts) - len(todo_texts)}
        emb_series = self._open(cache_key("clip_frames", ids["clip"], *base)) if todo_act else None
        skipped_key = cache_key("skipped", *base)
        if todo_texts or (emb_series is not None and not emb_series.complete):
            skipped: list[tuple[float, float]] = []
            times = self._stream(video, info, {t: text_series[t] for t in todo_texts}, emb_series, report, cancel,
                                 skipped)
            spans = np.asarray(skipped, dtype=np.float64).reshape(-1, 2)
            self.cache.put(skipped_key, spans, spans[:, 0], complete=True)
        else:  # everything needed is cached: no decoding at all
            times = (emb_series if emb_series is not None else text_series[all_texts[0]]).times_s
            skipped = _cached_spans(self.cache.get(skipped_key), times, v.fps)
        # A missing sample (time NaN: nothing decodable was shown there) keeps its place on the
        # sampling grid; its values are NaN in every curve.
        missing = np.isnan(times)
        times = np.where(missing, np.arange(len(times)) / v.fps, times)
        if emb_series is not None:
            embs = emb_series.values()
            for q in todo_act:
                series = act_series[q.name]
                text_emb = self.clip.embed_texts([q.description])[0]
                series.parts, series.count = [frame_similarity(embs, text_emb)], len(times)
                self.cache.put(series.key, series.values(), times, complete=True)
        p_yes = {t: self._checked(s, missing) for t, s in text_series.items()}
        actionness = {name: self._checked(s, missing) for name, s in act_series.items()}
        return times, p_yes, actionness, stats, skipped

    def _open(self, key: str) -> _Series:
        entry = self.cache.get(key)
        if entry is None:
            return _Series(key)
        return _Series(key, [entry.values], len(entry), entry.complete, entry.times_s)

    def _checked(self, series: _Series, missing: np.ndarray) -> np.ndarray:
        """The series' values, NaN at the missing samples (scored on a blank stand-in image)."""
        values = series.values()
        if len(values) != len(missing):  # the cache must describe exactly these frames
            raise ZealError(f"internal: series {series.key} has {len(values)} values for {len(missing)} frames")
        return np.where(missing, np.nan, values.astype(np.float64))

    def _stream(self, video, info, text_series: dict[str, _Series], emb_series: _Series | None,
                report: ProgressFn, cancel: CancelFn | None, skipped: list | None = None) -> np.ndarray:
        """Decode the video once, computing every missing frame of every series; returns times [N]
        (NaN for a sample that could not be decoded). `skipped` receives the stretches decoding skipped.
        Chunks are decoded ahead in a child process or a thread (VideoConfig.decode_ahead, decode_in), so
        the decoder and the models work at the same time; chunks are scored, and the cache written, in order."""
        v = self.config.video
        total = video_io.expected_samples(info, v.fps)
        all_series = [*text_series.values(), *([emb_series] if emb_series else [])]
        times_parts: list[np.ndarray] = []
        last_flush = time.monotonic()

        def flush(complete: bool) -> None:
            times = np.concatenate(times_parts) if times_parts else np.zeros(0)
            for s in all_series:
                n = min(s.count, len(times))
                if n:
                    self.cache.put(s.key, s.values()[:n], times[:n], complete and n == len(times))

        scorers = [*([self.lvlm] if text_series else []), *([self.clip] if emb_series is not None else [])]
        on_cpu = any(getattr(getattr(s, "device", None), "type", None) == "cpu" for s in scorers)  # a server's: no
        threads = decoder_threads(v.decode_threads, v.decode_ahead > 0, on_cpu)
        sampling = {"fps": v.fps, "max_side": v.max_side, "chunk": v.chunk, "backend": v.backend, "info": info,
                    "threads": threads}
        ahead = decode_ahead(lambda into: video_io.sample(video, skipped=into, **sampling), v.decode_ahead,
                             v.decode_in, cancel, skipped if skipped is not None else [], video,
                             (v.chunk, *video_io.image_shape(info, v.max_side)))
        try:
            with ahead as chunks:
                for chunk in chunks:
                    if cancel is not None and cancel():
                        raise Cancelled(CANCELLED_MESSAGE)
                    i0, n = int(chunk.indices[0]), len(chunk)
                    times_parts.append(chunk.times_s)
                    if emb_series is not None and emb_series.count < i0 + n:
                        off = max(0, emb_series.count - i0)
                        emb_series.parts.append(self.clip.embed_images(list(chunk.images[off:])))
                        emb_series.count = i0 + n
                    by_offset: dict[int, list[str]] = {}
                    for text, s in text_series.items():
                        if s.count < i0 + n:
                            by_offset.setdefault(max(0, s.count - i0), []).append(text)
                    for off, batch in by_offset.items():
                        scores = self.lvlm.p_yes(list(chunk.images[off:]), batch)
                        for j, text in enumerate(batch):
                            text_series[text].parts.append(np.asarray(scores[:, j], dtype=np.float64))
                            text_series[text].count = i0 + n
                    report("scoring frames", i0 + n, max(total, i0 + n))
                    if time.monotonic() - last_flush > FLUSH_INTERVAL_S:
                        flush(complete=False)
                        last_flush = time.monotonic()
        except BaseException:
            flush(complete=False)
            raise
        flush(complete=True)
        return np.concatenate(times_parts) if times_parts else np.zeros(0)


def _video_path(video: object) -> str:
    if isinstance(video, (str, os.PathLike)) and str(video).strip():
        return str(video)
    raise ConfigError(f"video must be the path of a video file, got {video!r}")


def _resolve_queries(classes: Sequence[str] | str | None, queries: QuerySet | None) -> QuerySet:
    if isinstance(classes, str):  # one class name, not a sequence of letters
        classes = [classes]
    if queries is not None and not isinstance(queries, QuerySet):
        raise ConfigError(f"queries must be a QuerySet (e.g. QuerySet.load(path)), got {type(queries).__name__}")
    if queries is None and not classes:
        raise ConfigError("no classes given: pass class names (e.g. classes=['CliffDiving']) or a query set")
    if queries is None:
        return lookup(list(classes))
    if classes:
        return queries.subset(list(classes))
    if not len(queries):
        raise ConfigError("the query set is empty: give it at least one class (see QuerySet.from_dict)")
    return queries


def _cached_spans(entry, times: np.ndarray, fps: float) -> list[tuple[float, float]]:
    """The stretches a cached run skipped: as stored, else (an entry lost) runs of missing samples."""
    if entry is not None:
        return [(float(a), float(b)) for a, b in np.asarray(entry.values).reshape(-1, 2)]
    spans: list[tuple[float, float]] = []
    for k in np.flatnonzero(np.isnan(times)):
        if spans and spans[-1][1] >= k / fps - 1e-9:
            spans[-1] = (spans[-1][0], (k + 1) / fps)
        else:
            spans.append((k / fps, (k + 1) / fps))
    return spans


def _intervals(curves: Curves, times: np.ndarray, label: str, params: ProposalParams,
               review_set: bool = True) -> list[Interval]:
    """Proposals of one class (unreviewed, with ids; the review set marked unless the caller marks
    it over all intervals itself), frame indices turned into seconds by the frames' real times."""
    if len(times) == 0:
        return []
    rows = propose(curves.start_raw, curves.end_raw, curves.actionness, params)
    proposals = unique_ids([Interval(float(times[int(s)]), float(times[int(e)]), label, float(score))
                            for s, e, score in rows])
    return mark_review_set(proposals) if review_set else proposals
