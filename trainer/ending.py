"""Films end in fades to black, title cards and credits: a continuation from such an end continues them.

Training looks at the last seconds before the film's end and, when they are black or hold one still picture
for longer than a few seconds, says so in one line with the `--end` that would cut them off. Only the tail is
decoded: the reader seeks to it, so a two-hour film costs as little as a clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from infer.errors import warn
from infer.video import open_video
from trainer.plan import VideoPlan

LOOKBACK_S = 30.0  # seconds before the end that are looked at
THUMB = 32  # side of the grey thumbnails compared
BLACK = 0.06  # mean grey level (0-1) under which a frame is black
STILL = 2 / 255  # mean |thumbnail - the end's| under which a frame shows the same picture as the end
BLACK_S = 1.0  # a black ending longer than this is said
STILL_S = 3.0  # a still ending longer than this is said


@dataclass(frozen=True)
class Ending:
    """The run of frames before the film's end that look like its last frame."""

    first: int  # the run's first frame
    end: int  # the film's last frame
    fps: float
    black: bool
    whole: bool  # the run reaches back as far as was looked (LOOKBACK_S, or the film's start)

    @property
    def seconds(self) -> float:
        return (self.end - self.first + 1) / self.fps

    def worth_saying(self) -> bool:
        return self.seconds > (BLACK_S if self.black else STILL_S)

    def line(self, path: str) -> str:
        what = "black" if self.black else "one still picture (a title card or credits?)"
        longer = "at least " if self.whole else ""
        said = f"video {path} ends in {longer}{self.seconds:.1f} s of {what}, frames {self.first}-{self.end}"
        if self.first == 0:
            return f"{said}: all of it; is it the right file?"
        cut = self.first - 1
        return (f"{said}: a continuation from its end would continue that; to continue the scene before it, add "
                f"--end {cut / self.fps:.2f}s (frame {cut})")


def tail(path: Path, end: int, fps: float, seconds: float = LOOKBACK_S) -> dict[int, np.ndarray]:
    """Grey THUMB x THUMB thumbnails in [0, 1] of the frames in the `seconds` before frame `end`, by index. The
    reader seeks to the tail; frames are indexed by their time, as a constant-rate film counts them."""
    first = max(0, end - round(seconds * fps))
    thumbs: dict[int, np.ndarray] = {}
    with open_video(path) as container:
        stream = container.streams.video[0]
        origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        try:
            container.seek(int((origin + first / fps) / stream.time_base), stream=stream, backward=True)
        except av.FFmpegError:
            container.seek(0)
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            index = round((frame.time - origin) * fps)
            if index > end:
                break
            if index >= first:
                grey = frame.reformat(width=THUMB, height=THUMB, format="gray").to_ndarray()
                thumbs[index] = grey.astype(np.float32) / 255
    return thumbs


def ending(path: Path, end: int, fps: float) -> Ending | None:
    """The frames before `end` that look like it (black, or the same still picture), or None if the film's end
    can't be read back by time (a file whose timestamps don't count its frames)."""
    thumbs = tail(path, end, fps)
    if end not in thumbs:
        return None
    last = thumbs[end]
    first = end
    while first - 1 in thumbs and float(np.abs(thumbs[first - 1] - last).mean()) < STILL:
        first -= 1
    return Ending(first, end, fps, black=float(last.mean()) < BLACK, whole=first - 1 not in thumbs)


def check(plan: VideoPlan) -> None:
    """Say in one line when the film's end is black or one still picture for longer than a few seconds."""
    found = ending(Path(plan.info.path), plan.end, plan.info.fps)
    if found is not None and found.worth_saying():
        warn(found.line(plan.info.path))
