"""The yardstick: how long a continuation stays a film, and why it stops.

A continuation is judged against the real film's own statistics, at the model's frame size and stride:

- motion per step and sharpness (`infer.metrics`: variance of a Laplacian), as ratios to the real film's
  medians: a freeze, a boil, a blur and noise each push one of them out;
- travel: whether anything goes anywhere. Each pixel's range (its brightest and darkest grey) over TRAVEL steps
  is compared with its range over the next TRAVEL steps, as a ratio to the real film's same. Whatever changes in
  place with a period of up to TRAVEL steps (a ghost flickering every other step, a slow pulse) has the same
  range in both, whatever its phase, and reads 0; whatever moves carries its range with it. Motion per step
  can't tell the two apart (a flicker changes every pixel every step), and neither can a mean over steps (a
  pulse whose period does not divide the window leaves a remainder), nor a dense optical flow (which
  "explains" a flicker as motion too). Only a floor: a rolling median below half the film's ends it;
  moving too much already reads as boiling;
- colour: the distance of a frame's colour histogram to the training frames' mean histogram, over the
  median of the same distance for the real held-out frames;
- realism: the distance (RMS over 32x32 RGB thumbnails) to the nearest frame of the training span, over the
  median of the same distance for the real held-out frames. A continuation should look like frames of its
  film's world even when it shows something new; mush is far from all of them, however film-like its motion
  and sharpness statistics are.

Each series is a rolling median over ROLLING steps (over the first ROLLING steps for the earliest ones).
The continuation is alive while the motion and sharpness ratios stay inside their bands and colour and
realism stay at most LIMIT; its alive horizon is the number of steps before the first step where one
leaves, and the reason names which. A band is BAND, widened to the range of the real held-out frames' own
rolling medians where they go further: a film whose held-out part is stiller or sharper than its training
part (a title card at the end) must not read as frozen or noisy when it is the real thing. (Not to the
whole video's range: a fade from black would make any blur pass.)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image

from infer import metrics
from infer.frames import to_unit

BAND = (0.5, 2.0)  # motion and sharpness ratios to the real film's medians (at least; see `widened`)
TRAVEL = 10  # steps in each of the two spans whose per-pixel ranges travel compares
LIMIT = 2.0  # colour and realism: times the real held-out frames' own distance
ROLLING = 10  # steps in the trailing rolling median
THUMB = 32  # thumbnail side for realism
MAX_THUMBS = 4000  # training frames kept for nearest-frame search (evenly spaced beyond this)
MOTION_FLOOR = 0.5 / 255  # a still film: half a grey level per step
SHARPNESS_FLOOR = 1e-6
DISTANCE_FLOOR = 1e-3

# Checked in this order when several end at the same step: the most specific diagnosis first.
REASONS = {
    "blurs": "sharpness below the real film's band (half its median, or less)",
    "turns to noise": "sharpness above the real film's band (twice its median, or more)",
    "freezes": "motion below the real film's band",
    "boils": "motion above the real film's band",
    "flickers in place": f"travel over {TRAVEL} steps below half the real film's: things change but go nowhere",
    "drifts in colour": "colour histogram more than twice as far from the film's as real held-out frames",
    "leaves the film's world": "more than twice as far from every training frame as real held-out frames are",
}


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 -> THUMB x THUMB x 3 in [0, 1], area-averaged, flattened."""
    small = Image.fromarray(frame).resize((THUMB, THUMB), Image.Resampling.BOX)
    return to_unit(np.asarray(small)).reshape(-1)


def nearest(queries: np.ndarray, world: np.ndarray, chunk: int = 256) -> np.ndarray:
    """RMS distance from each query thumbnail to its nearest thumbnail in `world`."""
    world = world.astype(np.float32)
    world_sq = np.square(world).sum(axis=1)
    out = []
    for i in range(0, len(queries), chunk):
        q = queries[i:i + chunk].astype(np.float32)
        squared = np.square(q).sum(axis=1)[:, None] + world_sq[None] - 2 * q @ world.T
        out.append(np.sqrt(np.maximum(squared.min(axis=1), 0) / world.shape[1]))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def grey(pixels: np.ndarray) -> np.ndarray:
    return pixels @ np.array([0.299, 0.587, 0.114], np.float32)


class Travel:
    """Travel of a sequence of frames one step apart: `add` returns it once 2 * TRAVEL frames are in, else None."""

    def __init__(self):
        self.recent: deque[np.ndarray] = deque(maxlen=2 * TRAVEL)

    def add(self, pixels: np.ndarray) -> float | None:
        self.recent.append(grey(pixels))
        if len(self.recent) < 2 * TRAVEL:
            return None
        frames = np.stack(self.recent)
        before, after = frames[:TRAVEL], frames[TRAVEL:]
        return float(np.abs(before.max(0) - after.max(0)).mean() + np.abs(before.min(0) - after.min(0)).mean())


def rolling_median(values: list[float], window: int = ROLLING) -> list[float]:
    """Step k's value is the median of the `window` steps ending at k, or of the first `window` steps while
    k is earlier: one odd step (such as the jump from the real start frame into the model's own picture)
    does not end a film, a run of them does."""
    return [float(np.median(values[max(0, k - window + 1):max(k + 1, window)])) for k in range(len(values))]


@dataclass(frozen=True)
class Reference:
    """The real film's own statistics that a continuation is measured against."""

    motion: float  # median motion per step
    sharpness: float  # median sharpness
    travel: float  # median travel
    motion_band: tuple[float, float]  # ratios to `motion` inside which a continuation moves like the film
    sharpness_band: tuple[float, float]
    travel_floor: float  # the ratio to `travel` below which nothing goes anywhere
    histogram: np.ndarray  # mean colour histogram of the training span
    colour_scale: float  # median colour distance of real held-out frames to `histogram`
    world: np.ndarray  # thumbnails of the training span
    realism_scale: float  # median nearest-training-frame distance of real held-out frames
    spans: dict[str, list[int]]

    def colour(self, frame: np.ndarray) -> float:
        """Colour-histogram distance of a [0, 1] frame to the training frames' mean, in units of the real spread."""
        return metrics.histogram_distance(metrics.histogram(frame), self.histogram) / self.colour_scale

    def summary(self) -> dict:
        return {"motion_median": round(self.motion, 6), "sharpness_median": round(self.sharpness, 8),
                "travel_median": round(self.travel, 6), "motion_band": [round(v, 4) for v in self.motion_band],
                "sharpness_band": [round(v, 4) for v in self.sharpness_band],
                "travel_floor": round(self.travel_floor, 4),
                "colour_scale": round(self.colour_scale, 6), "realism_scale": round(self.realism_scale, 6),
                "training_frames_searched": len(self.world), "spans": self.spans,
                "motion": "mean |frame t+stride - frame t|, frames in [0, 1]",
                "sharpness": "variance of the 3x3 Laplacian of the grey frame",
                "travel": f"mean |per-pixel grey max over {TRAVEL} steps - the same over the next {TRAVEL}| + the "
                          "same of the minimum",
                "rolling_median_steps": ROLLING, "limit": LIMIT}


class ReferenceBuilder:
    """Gathers a Reference in the evaluation's one decoding pass.

    `stats_span` gives the motion and sharpness medians (the training span, or the whole video when it is not
    the training one); `world_span` is the training span; frames after it are the real held-out frames.
    """

    def __init__(self, stride: int, stats_span: tuple[int, int], world_span: tuple[int, int], frames: int):
        self.stride, self.stats_span, self.world_span = stride, stats_span, world_span
        self.every = max(1, math.ceil((world_span[1] - world_span[0]) / MAX_THUMBS))
        self.held_every = max(1, math.ceil((frames - world_span[1]) / MAX_THUMBS))
        self.recent: deque[tuple[int, np.ndarray]] = deque(maxlen=stride + 1)  # the frame `stride` back is [0]
        self.travels = {"stats": Travel(), "held": Travel()}  # over frames `stride` apart, from each span's start
        self.travel: list[float] = []
        self.held_travel: list[float] = []
        self.motion: list[float] = []
        self.sharpness: list[float] = []
        self.held_motion: list[float] = []  # the real held-out frames', for the bands
        self.held_sharpness: list[float] = []
        self.histograms: list[np.ndarray] = []
        self.world: list[np.ndarray] = []
        self.held_out: list[tuple[np.ndarray, np.ndarray]] = []  # (thumbnail, histogram)

    def add(self, index: int, frame: np.ndarray) -> None:
        """One decoded uint8 frame at model size, in decoding order."""
        pixels = to_unit(frame)
        sharpness = metrics.sharpness(pixels)
        self.recent.append((index, pixels))
        earlier = self.recent[0][0] if index - self.recent[0][0] == self.stride else None
        motion = metrics.motion(self.recent[0][1], pixels) if earlier is not None else None
        self._add_travel(index, pixels)
        if index >= self.world_span[1]:
            self.held_sharpness.append(sharpness)
            if motion is not None and earlier >= self.world_span[1]:
                self.held_motion.append(motion)
        if self.stats_span[0] <= index < self.stats_span[1]:
            if motion is not None and earlier >= self.stats_span[0]:
                self.motion.append(motion)
            self.sharpness.append(sharpness)
        if self.world_span[0] <= index < self.world_span[1]:
            self.histograms.append(metrics.histogram(pixels))
            if (index - self.world_span[0]) % self.every == 0:
                self.world.append(thumbnail(frame))
        elif index >= self.world_span[1] and (index - self.world_span[1]) % self.held_every == 0:
            self.held_out.append((thumbnail(frame), metrics.histogram(pixels)))

    def _add_travel(self, index: int, pixels: np.ndarray) -> None:
        """Travel over the statistics span and over the held-out frames, each `stride` frames apart from the span's
        start."""
        spans = {"stats": (*self.stats_span, self.travel), "held": (self.world_span[1], math.inf, self.held_travel)}
        for name, (start, stop, series) in spans.items():
            if start <= index < stop and (index - start) % self.stride == 0 and \
                    (travel := self.travels[name].add(pixels)) is not None:
                series.append(travel)

    def finish(self) -> Reference:
        world = np.stack(self.world)
        mean = np.mean(self.histograms, axis=0)
        if self.held_out:
            thumbs, histograms = np.stack([t for t, _ in self.held_out]), [h for _, h in self.held_out]
            realism = float(np.median(nearest(thumbs, world)))
        else:  # nothing after the training span (a --final model's film): a real step's distance stands in
            gap = max(1, self.stride // self.every)
            histograms = self.histograms
            realism = float(np.median(np.sqrt(np.square(world[gap:] - world[:-gap]).mean(axis=1)))) \
                if len(world) > gap else DISTANCE_FLOOR
        colour = float(np.median([metrics.histogram_distance(h, mean) for h in histograms]))
        motion = max(float(np.median(self.motion)) if self.motion else 0.0, MOTION_FLOOR)
        sharpness = max(float(np.median(self.sharpness)), SHARPNESS_FLOOR)
        travel = max(float(np.median(self.travel)) if self.travel else 0.0, MOTION_FLOOR)
        return Reference(motion=motion, sharpness=sharpness, travel=travel,
                         travel_floor=widened(self.held_travel, travel, 1)[0],
                         motion_band=widened(self.held_motion, motion, self.stride),
                         sharpness_band=widened(self.held_sharpness, sharpness, self.stride), histogram=mean,
                         colour_scale=max(colour, DISTANCE_FLOOR), world=world,
                         realism_scale=max(realism, DISTANCE_FLOOR),
                         spans={"statistics": list(self.stats_span), "training": list(self.world_span)})


def widened(held_out: list[float], median: float, stride: int) -> tuple[float, float]:
    """BAND, as ratios to `median`, widened to the range of the real held-out frames' rolling medians
    (ROLLING steps of `stride` frames) where those go further."""
    low, high = BAND
    span = ROLLING * stride
    # Every window a rollout could be judged on: ROLLING samples `stride` frames apart, from any frame.
    rolled = [float(np.median(held_out[i:i + span:stride])) / median
              for i in range(max(1, len(held_out) - span + 1))] if held_out else []
    return min([low, *rolled]), max([high, *rolled])


class Judge:
    """Watches a rollout step by step, then says how long it stayed a film."""

    def __init__(self, reference: Reference, start: np.ndarray):
        self.reference = reference
        self.previous = to_unit(start)
        self.travels = Travel()
        self.travels.add(self.previous)
        self.travel: list[float | None] = []
        self.motion: list[float] = []
        self.sharpness: list[float] = []
        self.colour: list[float] = []
        self.thumbs: list[np.ndarray] = []

    def observe(self, frame: np.ndarray) -> float:
        """The next uint8 frame of the rollout, at model size; returns its motion, for the health monitor."""
        pixels = to_unit(frame)
        self.motion.append(metrics.motion(self.previous, pixels))
        self.sharpness.append(metrics.sharpness(pixels))
        self.colour.append(self.reference.colour(pixels))
        self.travel.append(self.travels.add(pixels))
        self.thumbs.append(thumbnail(frame))
        self.previous = pixels
        return self.motion[-1]

    def verdict(self) -> dict:
        ref = self.reference
        realism = (nearest(np.stack(self.thumbs), ref.world) / ref.realism_scale).tolist()
        known = [t for t in self.travel if t is not None]  # the first 2 * TRAVEL - 1 steps have none yet
        unknown = len(self.travel) - len(known)
        ratios = {"motion": [m / ref.motion for m in rolling_median(self.motion)],
                  "sharpness": [s / ref.sharpness for s in rolling_median(self.sharpness)],
                  "travel": [None] * unknown + [t / ref.travel for t in rolling_median(known)],
                  "colour": rolling_median(self.colour), "realism": rolling_median(realism)}
        failing = [_failing(ref, *(ratios[name][k] for name in ("motion", "sharpness", "travel", "colour", "realism")))
                   for k in range(len(self.motion))]
        ends = next((k for k, reasons in enumerate(failing) if reasons), None)
        steps = len(self.motion)
        horizon = steps if ends is None else ends
        return {
            "steps": steps, "alive_horizon": horizon,
            "ends_at_step": None if ends is None else ends + 1,
            "ends_because": None if ends is None else failing[ends][0],
            "failing_at_end": [] if ends is None else failing[ends],
            "alive_fraction": round(sum(not f for f in failing) / max(steps, 1), 4),
            "reference": ref.summary(),
            "ratios": {name: [None if v is None else round(v, 4) for v in values] for name, values in ratios.items()},
            "per_step": {"motion": _rounded(self.motion), "sharpness": _rounded(self.sharpness, 8),
                         "travel": [None if t is None else round(t, 6) for t in self.travel],
                         "colour": _rounded(self.colour), "realism": _rounded(realism)},
            "summary": describe(horizon, steps, None if ends is None else failing[ends][0]),
        }


def _failing(ref: Reference, motion: float, sharpness: float, travel: float | None, colour: float,
             realism: float) -> list[str]:
    (still, boiling), (blurred, noisy) = ref.motion_band, ref.sharpness_band
    checks = {"blurs": sharpness < blurred, "turns to noise": sharpness > noisy, "freezes": motion < still,
              "boils": motion > boiling, "flickers in place": travel is not None and travel < ref.travel_floor,
              "drifts in colour": colour > LIMIT, "leaves the film's world": realism > LIMIT}
    return [reason for reason in REASONS if checks[reason]]


def describe(horizon: int, steps: int, reason: str | None) -> str:
    if reason is None:
        return f"stays film-like for all {steps} steps"
    return f"stays film-like for {horizon} of {steps} steps, then {reason}"


def _rounded(values: list[float], digits: int = 6) -> list[float]:
    return [round(v, digits) for v in values]


def short_horizon(model_l1: list[float], persistence_l1: list[float], model_ssim: list[float],
                  persistence_ssim: list[float], steps: int = 8) -> dict:
    """The model's error over persistence's at steps 1..8: L1, and 1 - SSIM (so below 1 is better for both)."""
    n = min(steps, len(model_l1))
    l1 = [m / max(p, 1e-6) for m, p in zip(model_l1[:n], persistence_l1[:n], strict=True)]
    dssim = [(1 - m) / max(1 - p, 1e-6) for m, p in zip(model_ssim[:n], persistence_ssim[:n], strict=True)]
    mean = float(np.mean(l1))
    return {"steps": n, "l1_ratio": _rounded(l1, 4), "dssim_ratio": _rounded(dssim, 4),
            "l1_ratio_step1": round(l1[0], 4), "l1_ratio_mean": round(mean, 4),
            "dssim_ratio_mean": round(float(np.mean(dssim)), 4), "beats_persistence": mean < 1}
