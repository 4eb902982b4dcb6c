"""Every setting of the engine as a dataclass, and the named presets.

Presets are data: `get_preset(name)` returns a fresh copy that callers may change freely.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from zeal.errors import ConfigError

# The question prompt of the paper (Sec. 3.3); {label} is the class, {question} a yes/no question.
PROMPT_TEMPLATE = "This is a frame from a video of {label}. {question} Only answer yes or no."
# The prompt the published code sends (stage 4, score strategy SEQ): a dedented triple-quoted string,
# so a newline before and after each sentence line.
PAPER_PROMPT_TEMPLATE = "\nThis is a frame from a video of {label}.\n{question} Only answer yes or no.\n"
# How class filtering (step 2) describes a class to CLIP: its name (as the paper says) or its
# description (as the published stage 3 does).
FILTER_TEXTS = ("name", "description")
ANSWER_SPELLINGS = ("all", "exact")
# LVLMConfig.image_budget: the model's own image size ("full"), one crop ("base"), or at most a number
# of pixels (see zeal.scorers.image_budget).
IMAGE_BUDGETS = ("full", "base")
MIN_IMAGE_BUDGET_PIXELS = 28 * 28  # one token of Qwen2-VL (a 2x2 block of 14 px patches)


def parse_image_budget(value: str | int) -> str | int:
    """"full", "base", or a pixel count (an int, or digits as a flag or an environment variable gives
    them). ConfigError naming the choices otherwise."""
    if isinstance(value, str) and value.strip().lower() in IMAGE_BUDGETS:
        return value.strip().lower()
    text = str(value).strip().replace("_", "")
    if isinstance(value, bool) or not text.isdigit() or int(text) < MIN_IMAGE_BUDGET_PIXELS:
        raise ConfigError(f"image_budget must be 'full' (the model's own image size), 'base' (one crop, no "
                          f"tiling) or a number of pixels of at least {MIN_IMAGE_BUDGET_PIXELS} (e.g. 401408), "
                          f"got {value!r}")
    return int(text)


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take: lo..hi (either end open), whole numbers only when
    `whole`. `describe()` is what an error message says about it."""

    lo: float
    hi: float
    whole: bool = False
    open_lo: bool = False
    open_hi: bool = False

    def holds(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        above = value > self.lo if self.open_lo else value >= self.lo
        below = value < self.hi if self.open_hi else value <= self.hi
        return above and below and (not self.whole or value == int(value))

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        if not (self.open_lo or self.open_hi):
            return f"{kind} from {self.lo:g} to {self.hi:g}"
        lo = f"above {self.lo:g}" if self.open_lo else f"at least {self.lo:g}"
        hi = f"below {self.hi:g}" if self.open_hi else f"at most {self.hi:g}"
        return f"{kind} {lo} and {hi}"


def check_ranges(section: str, obj: Any, ranges: dict[str, Range]) -> None:
    """ConfigError naming every field of `obj` outside its Range, with the allowed range."""
    bad = [f"{name}={getattr(obj, name)!r} (allowed: {r.describe()})" for name, r in ranges.items()
           if not r.holds(getattr(obj, name))]
    if bad:
        raise ConfigError(f"{section} setting(s) out of range: {'; '.join(bad)}")


# The allowed ranges of every numeric setting (the CLI and the app check their flags with the same).
PROPOSAL_RANGES = {
    "top_p": Range(0.0, 1.0), "minmax_eps": Range(0.0, 0.5, open_hi=True), "lam": Range(0.0, 1.0),
    "max_len_frac": Range(0.0, 1.0, open_lo=True), "merge_iou": Range(0.0, 1.0),
    "nms_sigma": Range(0.0, 1e6, open_lo=True), "min_score": Range(-1.0, 1.0),
    "candidate_gap": Range(1, 100_000, whole=True),
}
FPS_RANGE = Range(0.0, 1000.0, open_lo=True)  # a video's own rate bounds it further (zeal.video)
DECODE_IN = ("process", "thread")  # where VideoConfig.decode_ahead decodes: a child process (Linux) or a thread
VIDEO_RANGES = {"fps": FPS_RANGE, "chunk": Range(1, 4096, whole=True), "decode_ahead": Range(0, 64, whole=True)}
DECODE_THREADS_RANGE = Range(0, 256, whole=True)
MAX_SIDE_RANGE = Range(1, 65536, whole=True)
TOP_K_RANGE = Range(1, 200, whole=True)  # at most MAX_CLASSES classes are analysed
CLIP_RANGES = {"top_k": TOP_K_RANGE, "n_filter_frames": Range(1, 1000, whole=True),
               "batch_size": Range(1, 4096, whole=True)}
MAX_IN_FLIGHT_RANGE = Range(1, 4096, whole=True)
TIMEOUT_RANGE = Range(0.0, 3600.0, open_lo=True)
RETRIES_RANGE = Range(0, 100, whole=True)
LVLM_RANGES = {"frames_per_batch": Range(1, 1024, whole=True), "max_in_flight": MAX_IN_FLIGHT_RANGE,
               "request_timeout_s": TIMEOUT_RANGE, "max_retries": RETRIES_RANGE}
LLM_RANGES = {"timeout_s": TIMEOUT_RANGE, "max_retries": RETRIES_RANGE}


@dataclass(frozen=True)
class ProposalParams:
    """Step 5 of the method; defaults are those of the published code.

    top_p: fraction of frames kept as start/end candidates; minmax_eps: margin of the modified
    min-max; lam: weight of the boundary scores against mean actionness; max_len_frac: longest
    interval as a fraction of the video; merge_iou: merge intervals overlapping more than this;
    nms_sigma: Gaussian soft-NMS width; min_score: drop intervals scoring below this;
    candidate_gap: minimum distance between two kept candidates, in sampled frames.
    """

    top_p: float = 0.35
    minmax_eps: float = 0.05
    lam: float = 0.1
    max_len_frac: float = 0.95
    merge_iou: float = 0.9
    nms_sigma: float = 1.3
    min_score: float = 0.1
    candidate_gap: int = 5

    def __post_init__(self) -> None:
        check_ranges("proposal", self, PROPOSAL_RANGES)


@dataclass
class VideoConfig:
    """How frames are taken from the video. fps: samples per second; max_side: longest side in
    pixels after decode (None keeps the original); backend: "pyav" or "decord"; chunk: frames per chunk;
    decode_ahead: chunks decoded ahead while the models score the current one (0 decodes and scores in
    turn; memory holds at most decode_ahead + 2 chunks); decode_in: "process" (a forked child on Linux,
    sharing no GIL with the models; a thread elsewhere) or "thread"; decode_threads: the decoder's
    threads (None: chosen per run, all cores unless models on this CPU score beside it, then the
    cores torch leaves free; 0: FFmpeg's choice)."""

    fps: float = 1.0
    max_side: int | None = 768
    backend: str = "pyav"
    chunk: int = 16
    decode_ahead: int = 2
    decode_in: str = "process"
    decode_threads: int | None = None

    def __post_init__(self) -> None:
        check_ranges("video", self, VIDEO_RANGES)
        if self.decode_in not in DECODE_IN:
            raise ConfigError(f"decode_in must be one of {DECODE_IN}, got {self.decode_in!r}")
        self.fps = float(self.fps)  # 2 and 2.0 must give the same cache keys
        if self.decode_threads is not None and not DECODE_THREADS_RANGE.holds(self.decode_threads):
            raise ConfigError(f"video setting out of range: decode_threads={self.decode_threads!r} (allowed: "
                              f"None or {DECODE_THREADS_RANGE.describe()})")
        if self.max_side is not None and not MAX_SIDE_RANGE.holds(self.max_side):
            raise ConfigError(f"video setting out of range: max_side={self.max_side!r} (allowed: None or "
                              f"{MAX_SIDE_RANGE.describe()})")


@dataclass
class ClipConfig:
    """open_clip model for class filtering and actionness. pretrained may be a tag or a local file.

    top_k: classes kept by filtering; n_filter_frames: frames whose mean feature is ranked against the
    classes; filter_text: "name" (the class name, as the paper describes) or "description" (the class
    description, as the published code does)."""

    model: str = "EVA02-L-14"
    pretrained: str = "merged2b_s4b_b131k"
    top_k: int = 3
    n_filter_frames: int = 8
    batch_size: int = 32
    device: str = "auto"
    filter_text: str = "name"

    def __post_init__(self) -> None:
        if self.filter_text not in FILTER_TEXTS:
            raise ConfigError(f"filter_text must be one of {FILTER_TEXTS}, got {self.filter_text!r}")
        check_ranges("clip", self, CLIP_RANGES)


@dataclass
class LVLMConfig:
    """The vision-language model that answers the questions.

    model: a Hugging Face id or local folder, or "openai:MODEL@BASE_URL[,BASE_URL...]" for a server.
    dtype: "auto" (bfloat16 on CUDA, float32 on the CPU), "fast" (as auto, but bfloat16 on a CPU that
    computes it natively: AMX or AVX512-BF16) or a dtype's name.
    answer_spellings: "all" (every single-token spelling of yes/no counts) or "exact" (the one spelling
    the published code reads for the architecture; see zeal.scorers.answers).
    max_in_flight, request_timeout_s, max_retries: apply to a server only (requests in flight over
    all its URLs; seconds per request; retries of a failed request).
    image_budget: how much of each frame a local model sees: "full" (its own default), "base" (one crop,
    no tiling or splitting) or at most that many pixels (see zeal.scorers.image_budget); a server
    applies its own (vLLM: --mm-processor-kwargs).
    """

    model: str = "llava-hf/llava-onevision-qwen2-7b-ov-hf"
    device: str = "auto"
    dtype: str = "auto"
    frames_per_batch: int = 4
    prompt_template: str = PROMPT_TEMPLATE
    max_in_flight: int = 16
    request_timeout_s: float = 60.0
    max_retries: int = 5
    answer_spellings: str = "all"
    image_budget: str | int = "full"

    def __post_init__(self) -> None:
        if self.answer_spellings not in ANSWER_SPELLINGS:
            raise ConfigError(f"answer_spellings must be one of {ANSWER_SPELLINGS}, got {self.answer_spellings!r}")
        check_ranges("lvlm", self, LVLM_RANGES)
        self.image_budget = parse_image_budget(self.image_budget)


@dataclass
class LLMConfig:
    """An OpenAI-compatible endpoint that writes the questions. The API key is never stored here:
    it comes from the environment variable named by api_key_env, or is passed at call time."""

    base_url: str = ""
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        check_ranges("llm", self, LLM_RANGES)


def default_cache_dir() -> str:
    return os.environ.get("ZEAL_CACHE_DIR", str(Path.home() / ".cache" / "zeal"))


@dataclass
class ZealConfig:
    """Everything a pipeline needs; `to_dict` is what a Result records as its settings."""

    video: VideoConfig = field(default_factory=VideoConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    lvlm: LVLMConfig = field(default_factory=LVLMConfig)
    proposals: ProposalParams = field(default_factory=ProposalParams)
    llm: LLMConfig = field(default_factory=LLMConfig)
    cache_dir: str = field(default_factory=default_cache_dir)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ZealConfig":
        sections = {"video": VideoConfig, "clip": ClipConfig, "lvlm": LVLMConfig,
                    "proposals": ProposalParams, "llm": LLMConfig}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in sections:
                known = {f.name for f in fields(sections[key])}
                unknown = set(value) - known
                if unknown:
                    raise ConfigError(f"unknown setting(s) {sorted(unknown)} in section {key!r};"
                                      f" known: {sorted(known)}")
                kwargs[key] = sections[key](**value)
            elif key == "cache_dir":
                kwargs[key] = value
            else:
                raise ConfigError(f"unknown config section {key!r}; known: {sorted([*sections, 'cache_dir'])}")
        return cls(**kwargs)


@dataclass(frozen=True)
class Preset:
    """A named starting configuration, with the download size a user should expect."""

    description: str
    config: ZealConfig
    approx_size_gb: float


_PRESETS: dict[str, Preset] = {
    # The published code's inputs: its prompt verbatim, its one answer spelling, its CLIP, 1 fps,
    # full-size frames, and its class filtering (8 frames against the classes' descriptions, top 3).
    "paper": Preset(
        "The published setting: EVA02-E-14-plus CLIP + LLaVA-OneVision 7B, its prompt, answer tokens and"
        " class filtering (one 24 GB+ GPU).",
        ZealConfig(video=VideoConfig(fps=1.0, max_side=None),
                   clip=ClipConfig("EVA02-E-14-plus", "laion2b_s9b_b144k", top_k=3, n_filter_frames=8,
                                   filter_text="description"),
                   lvlm=LVLMConfig("llava-hf/llava-onevision-qwen2-7b-ov-hf", prompt_template=PAPER_PROMPT_TEMPLATE,
                                   answer_spellings="exact")),
        approx_size_gb=35.0),
    "balanced": Preset(
        "EVA02-L-14 CLIP + LLaVA-OneVision 7B: nearly the paper's quality, a smaller CLIP.",
        ZealConfig(clip=ClipConfig("EVA02-L-14", "merged2b_s4b_b131k"),
                   lvlm=LVLMConfig("llava-hf/llava-onevision-qwen2-7b-ov-hf")),
        approx_size_gb=17.0),
    "light": Preset(
        "ViT-B-16 CLIP + LLaVA-OneVision 0.5B: runs on a laptop GPU or, slowly, on a CPU.",
        ZealConfig(clip=ClipConfig("ViT-B-16", "laion2b_s34b_b88k"),
                   lvlm=LVLMConfig("llava-hf/llava-onevision-qwen2-0.5b-ov-hf", frames_per_batch=8)),
        approx_size_gb=2.0),
    # For a machine without a GPU: SmolVLM-500M shown one 512 px view of each frame (no image
    # splitting: 64 image tokens), in bfloat16 where the CPU computes it natively (AMX, AVX512-BF16:
    # ~3x float32), and the small ViT-B-32 CLIP (49 patches per frame). SmolVLM-256M shares its vision
    # tower, which is most of a frame's cost, so it was only ~15% faster in benchmarks/bench_presets.py.
    "cpu": Preset(
        "ViT-B-32 CLIP + SmolVLM-500M, one crop per frame: for a laptop or a machine without a GPU.",
        ZealConfig(clip=ClipConfig("ViT-B-32", "datacomp_xl_s13b_b90k"),
                   lvlm=LVLMConfig("HuggingFaceTB/SmolVLM-500M-Instruct", image_budget="base", dtype="fast")),
        approx_size_gb=1.6),
}
# With a GPU the app and the CLI start with DEFAULT_PRESET, without one with NO_GPU_PRESET, unless the
# user chose one (--preset, ZEAL_PRESET).
DEFAULT_PRESET = "balanced"
NO_GPU_PRESET = "cpu"


def list_presets() -> list[str]:
    """Names of the built-in presets."""
    return sorted(_PRESETS)


def preset_info(name: str) -> Preset:
    """The preset's description and size, as a copy."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(list_presets())}")
    return copy.deepcopy(_PRESETS[name])


def get_preset(name: str) -> ZealConfig:
    """A fresh copy of the named preset's configuration."""
    return preset_info(name).config


def with_overrides(config: ZealConfig, **sections: dict[str, Any]) -> ZealConfig:
    """A copy of config with some fields of some sections replaced, e.g.
    `with_overrides(cfg, lvlm={"model": "/models/llava"}, video={"fps": 2})`."""
    out = copy.deepcopy(config)
    for name, values in sections.items():
        if name == "cache_dir":
            out.cache_dir = str(values)
            continue
        if not hasattr(out, name):
            raise ConfigError(f"unknown config section {name!r}")
        section = getattr(out, name)
        known = {f.name for f in fields(section)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown setting(s) {sorted(unknown)} in {name!r}; known: {sorted(known)}")
        setattr(out, name, replace(section, **values))
    return out


# Settings that change how fast a run goes but not a single score or interval: left out of a
# result's run key, so a run resumed with other batch sizes still counts as the same run.
SPEED_ONLY = {"video": ("chunk", "decode_ahead", "decode_in", "decode_threads"), "clip": ("device", "batch_size"),
              "lvlm": ("device", "dtype", "frames_per_batch", "max_in_flight", "request_timeout_s", "max_retries")}


def result_settings(config: ZealConfig) -> dict[str, Any]:
    """The settings a result depends on (no speed-only settings, no cache folder, no LLM)."""
    settings = config.to_dict()
    settings.pop("cache_dir", None)
    settings.pop("llm", None)
    for section, names in SPEED_ONLY.items():
        for name in names:
            settings[section].pop(name, None)
    return settings


# Environment variables that point the app and the CLI at models (flags take precedence).
ENV_SETTINGS = {
    "ZEAL_PRESET": "preset name (paper, balanced, light, cpu; default: balanced with a GPU, cpu without)",
    "ZEAL_LVLM": "LVLM: Hugging Face id, local folder, or openai:MODEL@BASE_URL",
    "ZEAL_IMAGE_BUDGET": "image tokens per frame: full, base (one crop) or a pixel count",
    "ZEAL_CLIP_MODEL": "open_clip model name, e.g. EVA02-L-14",
    "ZEAL_CLIP_PRETRAINED": "open_clip pretrained tag or local checkpoint file",
    "ZEAL_CACHE_DIR": "where per-frame scores are cached",
}


@dataclass(frozen=True)
class PresetChoice:
    """The preset a run starts from; reason: why it was chosen for the user ("no GPU found"), empty
    when the user chose it."""

    name: str
    reason: str = ""

    def notice(self, config: "ZealConfig") -> str:
        """The sentence that tells the user what was chosen for them, naming the models the run really
        uses (flags and ZEAL_* variables included); empty when the user chose the preset."""
        if not self.reason:
            return ""
        return (f"{self.reason}: starting with the `{self.name}` preset (LVLM {config.lvlm.model}, image budget "
                f"{config.lvlm.image_budget}, CLIP {config.clip.model}); choose another with --preset or "
                "ZEAL_PRESET (`zeal presets` lists them)")


def choose_preset(preset: str | None = None, device: str | None = None,
                  gpu_present: Callable[[], bool] | None = None) -> PresetChoice:
    """The preset the app and the CLI start from: the one given, else $ZEAL_PRESET, else DEFAULT_PRESET
    when a GPU is here (gpu_present(), default: zeal.scorers.device.gpu_present) and NO_GPU_PRESET when
    none is (or device="cpu" was asked for), with the reason."""
    chosen = preset or os.environ.get("ZEAL_PRESET")
    if chosen:
        preset_info(chosen)  # an unknown name fails here, naming the presets
        return PresetChoice(chosen)
    if gpu_present is None:
        from zeal.scorers.device import gpu_present
    if str(device or "auto").split(":")[0] != "cpu" and gpu_present():
        return PresetChoice(DEFAULT_PRESET)
    return PresetChoice(NO_GPU_PRESET, "device cpu asked for" if str(device or "").startswith("cpu") else "no GPU found")


def build_config(preset: str | None = None, lvlm: str | None = None, clip_model: str | None = None,
                 clip_pretrained: str | None = None, fps: float | None = None,
                 cache_dir: str | None = None, device: str | None = None,
                 max_in_flight: int | None = None, image_budget: str | int | None = None) -> ZealConfig:
    """The configuration the app and the CLI run with: a preset (see `choose_preset`), then the ZEAL_*
    environment variables, then explicit arguments (flags), each overriding the one before."""
    env = os.environ
    config = get_preset(choose_preset(preset, device).name)
    lvlm = lvlm or env.get("ZEAL_LVLM")
    clip_model = clip_model or env.get("ZEAL_CLIP_MODEL")
    clip_pretrained = clip_pretrained or env.get("ZEAL_CLIP_PRETRAINED")
    image_budget = image_budget if image_budget is not None else env.get("ZEAL_IMAGE_BUDGET")
    overrides: dict[str, dict[str, Any]] = {"lvlm": {}, "clip": {}, "video": {}}
    if lvlm:
        overrides["lvlm"]["model"] = lvlm
    if image_budget not in (None, ""):
        overrides["lvlm"]["image_budget"] = parse_image_budget(image_budget)
    if clip_model:
        overrides["clip"]["model"] = clip_model
    if clip_pretrained:
        overrides["clip"]["pretrained"] = clip_pretrained
    if device:
        overrides["lvlm"]["device"] = overrides["clip"]["device"] = device
    if max_in_flight is not None:
        overrides["lvlm"]["max_in_flight"] = max_in_flight  # checked by LVLMConfig, with its range
    if fps is not None:
        overrides["video"]["fps"] = float(fps)
    config = with_overrides(config, **{k: v for k, v in overrides.items() if v})
    if cache_dir:
        config.cache_dir = str(cache_dir)
    return config
