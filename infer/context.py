"""Which frames a model sees: `context` frames `stride` source frames apart, the newest last.

Training windows, the export's parity frames, a rollout's start, per-frame mode and the evaluation all ask
this one question; this module is the only place that answers it, and the only place that says, in one
line, when a start is too early to have its context.
"""

from __future__ import annotations

from infer.errors import UserError


def span(context: int, stride: int) -> int:
    """Source frames from the oldest context frame to the newest."""
    return (context - 1) * stride


def context_indices(newest: int, context: int, stride: int) -> list[int]:
    """The source frames the model sees to step past `newest`, oldest first."""
    return [newest - (context - 1 - j) * stride for j in range(context)]


def check_start(newest: int, context: int, stride: int) -> None:
    """A start frame needs its whole context inside the video."""
    if newest < span(context, stride):
        raise UserError(f"model sees {context} frames {stride} source frames apart: the start (frame {newest}) "
                        f"needs {span(context, stride)} frames before it; start later")
