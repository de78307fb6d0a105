"""Watches every rollout step for the ways a continuation dies: black or white collapse, a frozen
picture (the origin story's output that was never fed back), NaN/Inf."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from infer import metrics
from infer.errors import warn
from infer.frames import to_uint8, to_unit

DARK, BRIGHT = 0.03, 0.97  # mean intensity in [0, 1]
STILL = 0.5 / 255  # mean absolute change per step below half a grey level
RUN = 5  # consecutive steps before a condition is flagged


@dataclass
class Monitor:
    mean: list[float] = field(default_factory=list)
    change: list[float] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)  # condition -> first step it was flagged at
    _previous: np.ndarray | None = None
    _streak: dict[str, int] = field(default_factory=dict)

    def begin(self, start: np.ndarray) -> None:
        """The uint8 start frame: step 1's change is measured against it."""
        self._previous = to_unit(start)

    def observe(self, step: int, frame: np.ndarray, motion: float | None = None) -> str | None:
        """Record a step's output (float in [-1, 1]); return the condition newly flagged, if any. `motion` is the
        step's motion when the caller has measured it on the same frame (the evaluation's yardstick does), so it
        is computed once."""
        finite = bool(np.isfinite(frame).all())
        pixels = to_unit(to_uint8(frame)) if finite else None  # measured on the frame the viewer sees
        mean = float(pixels.mean()) if finite else float("nan")
        change = None
        if finite and self._previous is not None:
            change = motion if motion is not None else metrics.motion(self._previous, pixels)
        self.mean.append(mean)
        self.change.append(change if change is not None else float("nan"))
        self._previous = pixels if finite else self._previous
        black, white = finite and mean < DARK, finite and mean > BRIGHT
        conditions = {"nan": not finite, "black": black, "white": white,  # a blank frame is collapsed, not frozen
                      "frozen": change is not None and change < STILL and not (black or white)}
        newly = None
        for name, present in conditions.items():
            self._streak[name] = self._streak.get(name, 0) + 1 if present else 0
            needed = 1 if name == "nan" else RUN
            if self._streak[name] >= needed and name not in self.flags:
                self.flags[name] = step - needed + 1
                warn(f"step {step}: the continuation looks {_describe(name)} since step {self.flags[name]}")
                newly = newly or name
        return newly

    def series(self) -> dict:
        return {"mean_intensity": [_json(v) for v in self.mean], "mean_abs_change": [_json(v) for v in self.change],
                "flags": self.flags}


def _describe(name: str) -> str:
    return {"nan": "broken (NaN/Inf values)", "black": "collapsed to black", "white": "collapsed to white",
            "frozen": "frozen (almost no change per step)"}[name]


def _json(value: float) -> float | None:
    return None if value != value else round(value, 6)  # NaN is not JSON
