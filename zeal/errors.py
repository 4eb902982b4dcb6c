"""The engine's exceptions. Each message names the input and says what to do about it;
the CLI prints it as one line and the UI shows it as a gr.Error."""


class ZealError(Exception):
    """Base of every error caused by the user's input or environment (not by a bug)."""


CANCELLED_MESSAGE = "analysis cancelled; frames scored so far are cached and will be reused"


class Cancelled(ZealError):
    """The caller asked the run to stop; everything scored so far is in the cache."""


class ConfigError(ZealError, ValueError):
    """A setting has a value the engine cannot use."""


class VideoError(ZealError):
    """A video file cannot be opened or decoded."""


class QueryError(ZealError, ValueError):
    """A query set (class questions) is malformed."""


class ModelError(ZealError):
    """A model cannot be loaded or run."""


class LLMError(ZealError):
    """The query-writing LLM failed or kept answering with something unusable."""


class EvaluationError(ZealError, ValueError):
    """Ground truth or predictions cannot be read or do not fit together."""


class ExportError(ZealError):
    """A result cannot be written in the asked format."""


class ExportWarning(UserWarning):
    """An export was written but the target tool will not be able to use all of it as it is
    (e.g. Label Studio cannot open a local video path); the message says what to set."""


class LabelStudioError(ZealError):
    """Label Studio sent something the ML backend cannot use (a labeling config without a <Video>
    and a <TimelineLabels>, labels without questions) or cannot be reached with the given URL and key."""
