"""ZEAL: zero-shot temporal action localization from the confidence of vision-language models.

Importing this package is cheap: heavy libraries load only inside the functions that need them.
"""

from zeal.config import (LLMConfig, LVLMConfig, ClipConfig, ProposalParams, VideoConfig, ZealConfig,
                         get_preset, list_presets, with_overrides)
from zeal.errors import (ConfigError, EvaluationError, ExportError, LLMError, ModelError, QueryError,
                         VideoError, ZealError)
from zeal.types import ClassResult, Curves, Frames, Interval, Result, VideoInfo

__version__ = "0.1.0"

__all__ = [
    "ClassResult", "ClipConfig", "ConfigError", "Curves", "EvaluationError", "ExportError", "Frames",
    "Interval", "LLMConfig", "LLMError", "LVLMConfig", "ModelError", "ProposalParams", "QueryError",
    "Result", "VideoConfig", "VideoError", "VideoInfo", "ZealConfig", "ZealError", "get_preset",
    "list_presets", "with_overrides", "__version__",
]
