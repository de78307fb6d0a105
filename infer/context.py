"""Which frames a model sees: `context` frames `stride` source frames apart, the newest last.

Training windows, the export's parity frames, a rollout's start, per-frame mode and the evaluation all ask
this one question; this module is the only place that answers it, and the only place that says, in one
line, when a start is too early to have its context. It also reads `--start`, spelled the same in
epilogue-rollout and epilogue-eval.
"""

from __future__ import annotations

from pathlib import Path

from infer.errors import UserError


def span(context: int, stride: int) -> int:
    """Source frames from the oldest context frame to the newest."""
    return (context - 1) * stride


def context_indices(newest: int, context: int, stride: int) -> list[int]:
    """The source frames the model sees to step past `newest`, oldest first."""
    return [newest - (context - 1 - j) * stride for j in range(context)]


def future_indices(start: int, steps: int, stride: int) -> list[int]:
    """The source frames steps 1..`steps` of a continuation from `start` stand for: the real future."""
    return [start + k * stride for k in range(1, steps + 1)]


def check_start(newest: int, context: int, stride: int) -> None:
    """A start frame needs its whole context inside the video."""
    if newest < span(context, stride):
        raise UserError(f"model sees {context} frames {stride} source frames apart: the start (frame {newest}) "
                        f"needs {span(context, stride)} frames before it; start later")


def parse_start(text: str, frames: int, fps: float, video: Path, word: str) -> int | None:
    """--start as a frame of `video` (`frames` frames at `fps`): a frame number (300) or seconds (12.5 or 12.5s);
    None for the command's own word (rollout: last, eval: test), which the command resolves itself."""
    if text == word:
        return None
    try:
        index = int(text) if text.isdigit() else round(float(text.removesuffix("s")) * fps)
    except (ValueError, OverflowError):
        raise UserError(f"--start {text!r} is not {word}, a frame number or seconds (e.g. 300 or 12.5s)") from None
    if not 0 <= index < frames:
        raise UserError(f"--start {text} is frame {index}, but video {video} has {frames} frames (0-{frames - 1})")
    return index
