"""ZEAL: zero-shot temporal action localization from the confidence of vision-language models.

Importing this package is cheap: heavy libraries (torch, transformers, open_clip, PyAV) load only
inside the functions that need them.
"""

__version__ = "0.1.0"

from zeal.config import (ClipConfig, LLMConfig, LVLMConfig, ProposalParams, VideoConfig, ZealConfig,
                         build_config, get_preset, list_presets, with_overrides)
from zeal.errors import (ConfigError, EvaluationError, ExportError, ExportWarning, LabelStudioError, LLMError,
                         ModelError, QueryError, VideoError, ZealError)
from zeal.evaluate import evaluate, load_ground_truth, load_predictions
from zeal.export import FORMATS, export
from zeal.pipeline import Cancelled, ZealPipeline
from zeal.proposals import propose
from zeal.queries import ActionQuery, QuerySet, list_libraries, load_library, lookup
from zeal.types import ClassResult, Curves, Frames, Interval, Result, RunInfo, VideoInfo
from zeal.video import probe, sample

__all__ = [
    "ActionQuery", "Cancelled", "ClassResult", "ClipConfig", "ConfigError", "Curves", "EvaluationError",
    "ExportError", "ExportWarning", "FORMATS", "Frames", "Interval", "LLMConfig", "LLMError", "LVLMConfig",
    "LabelStudioError", "ModelError",
    "ProposalParams", "QueryError", "QuerySet", "Result", "RunInfo", "VideoConfig", "VideoError", "VideoInfo",
    "ZealConfig", "ZealError", "ZealPipeline", "__version__", "build_config", "evaluate", "export",
    "get_preset", "list_libraries", "list_presets", "load_ground_truth", "load_library",
    "load_predictions", "lookup", "probe", "propose", "sample", "with_overrides",
]
