"""Which frames a model sees: `context` frames `stride` source frames apart, the newest last.

Training windows, the export's parity frames, a rollout's start, per-frame mode and the evaluation all ask
this one question; this module is the only place that answers it, and the only place that says, in one
line, when a start is too early to have its context. It also reads a frame as `--start` and `--end` take one,
spelled the same in epilogue-train, epilogue-rollout and epilogue-eval.
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


def parse_frame(text: str, frames: int, fps: float, video: Path, option: str = "--start", word: str | None = None
                ) -> int | None:
    """A frame of `video` (`frames` frames at `fps`) given as a frame number (300) or seconds (12.5 or 12.5s), as
    --start and --end read it; None for the command's own `word` (rollout: last, eval: test), which the command
    resolves itself."""
    if word is not None and text == word:
        return None
    try:
        index = int(text) if text.isdigit() else round(float(text.removesuffix("s")) * fps)
    except (ValueError, OverflowError):
        allowed = f"{word}, a frame number" if word else "a frame number"
        raise UserError(f"{option} {text!r} is not {allowed} or seconds (e.g. 300 or 12.5s)") from None
    if not 0 <= index < frames:
        raise UserError(f"{option} {text} is frame {index}, but video {video} has {frames} frames (0-{frames - 1})")
    return index
