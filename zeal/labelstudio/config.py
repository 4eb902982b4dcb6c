"""What the ML backend needs from a Label Studio labeling config: the <Video> tag (its name, the task
data key of its value, its frameRate) and the <TimelineLabels> that points at it (its name and its
<Label> values, the names predictions must use). Standard library only."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Mapping

from zeal.errors import LabelStudioError

# Label Studio's player assumes this frame rate when <Video> has no frameRate attribute.
DEFAULT_FRAME_RATE = 24.0


@dataclass(frozen=True)
class LabelingConfig:
    """video_name / from_name / to_name: tag names used in prediction regions; video_key: the task
    data field holding the video URL ("video" for value="$video"); frame_rate: the <Video>
    frameRate as written ("29.97", "$fps" for a per-task value, "" when absent); labels: the
    <Label> values of the TimelineLabels, in order."""

    video_name: str
    video_key: str
    frame_rate: str
    from_name: str
    labels: tuple[str, ...]

    @property
    def to_name(self) -> str:
        return self.video_name

    def fps(self, task_data: Mapping[str, Any]) -> float:
        """Frames per second Label Studio uses to turn this task's frame numbers into time."""
        text = self.frame_rate
        if text.startswith("$"):
            text = str(task_data.get(text[1:], ""))
        try:
            fps = float(text) if text else DEFAULT_FRAME_RATE
        except ValueError:
            raise LabelStudioError(f"<Video frameRate={self.frame_rate!r}> gives {text!r}, not a number; "
                                   "write the video's frame rate there (e.g. 25 or 29.97)") from None
        if not (math.isfinite(fps) and fps > 0):
            raise LabelStudioError(f"<Video frameRate> must be a positive number, got {text!r}")
        return fps


def parse_labeling_config(xml_text: str) -> LabelingConfig:
    """The <Video> and its <TimelineLabels> from a labeling config; LabelStudioError saying what to
    add when either is missing."""
    try:
        root = ET.fromstring(xml_text or "")
    except ET.ParseError as exc:
        raise LabelStudioError(f"the project's labeling config is not valid XML ({exc})") from None
    videos = {v.get("name"): v for v in root.iter("Video") if v.get("name")}
    if not videos:
        raise LabelStudioError("the project's labeling config has no <Video name=... value=\"$video\"/>; "
                               "ZEAL localizes actions in videos (use the config `zeal export --to labelstudio` writes)")
    for timeline in root.iter("TimelineLabels"):
        video = videos.get(timeline.get("toName"))
        if video is None or not timeline.get("name"):
            continue
        value = video.get("value") or ""
        if not value.startswith("$") or len(value) < 2:
            raise LabelStudioError(f"<Video name={video.get('name')!r}> needs value=\"$<data key>\" (e.g. $video), "
                                   f"got {value!r}")
        labels = tuple(dict.fromkeys(lab.get("value") for lab in timeline.iter("Label") if lab.get("value")))
        return LabelingConfig(video_name=video.get("name"), video_key=value[1:],
                              frame_rate=(video.get("frameRate") or "").strip(),
                              from_name=timeline.get("name"), labels=labels)
    raise LabelStudioError("the project's labeling config has no <TimelineLabels toName=...> pointing at its "
                           "<Video>; add one with a <Label value=...> per action class")
