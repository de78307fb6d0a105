"""Scores the generator on held-out windows and draws what it does, at every eval (`epilogue-eval`, in
`infer/evaluate.py`, judges an exported model; this is the trainer's own validation). A --final run holds no
frame out: it only draws, from training windows and from the film's end.

Two scores: one step from real frames (L1, PSNR, SSIM, as pix2pix reports), and a continuation from the
validation split's first frames, the product's real job; `train.best_by` says which chooses what best/ keeps.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from infer import metrics
from infer.config import Config
from infer.context import context_indices, future_indices, span
from infer.frames import model_from_unit, to_model, to_uint8, to_unit, unit_from_model
from infer.pictures import grid, save_gif, save_png
from infer.roll import roll
from infer.video import read_frames
from infer.yardstick import BAND, MOTION_FLOOR, SHARPNESS_FLOOR, rolling_median
from trainer.model import KeepOrRedraw
from trainer.plan import VideoPlan

CONTINUATION_STEPS = 100  # at most: the continuation is scored over as many steps as the split allows, up to this
EARLY_STEPS = 8  # the continuation's error is its mean L1 over its first steps, where the real future still holds


def context_of(generator: keras.Model) -> int:
    return len(generator.inputs)


@tf.function
def _predict_and_score(generator: keras.Model, windows: tf.Tensor) -> dict[str, tf.Tensor]:
    """Per-window L1, PSNR and SSIM of one step from the real context, frames in [0, 1], inference mode."""
    k = context_of(generator)
    fake = unit_from_model(generator([windows[:, j] for j in range(k)], training=False))
    real = unit_from_model(windows[:, k])
    return {"l1": tf.reduce_mean(tf.abs(fake - real), axis=[1, 2, 3]),
            "psnr": tf.image.psnr(fake, real, max_val=1.0),
            "ssim": tf.image.ssim(fake, real, max_val=1.0)}


def score(generator: keras.Model, batches: tf.data.Dataset) -> dict[str, float]:
    """Mean L1, PSNR and SSIM over every window of `batches`."""
    totals: dict[str, list[np.ndarray]] = {"l1": [], "psnr": [], "ssim": []}
    for windows in batches:
        for name, values in _predict_and_score(generator, windows).items():
            totals[name].append(values.numpy())
    return {name: float(np.concatenate(v).mean()) for name, v in totals.items()}


def continue_frames(generator: keras.Model, context: np.ndarray, steps: int) -> list[np.ndarray]:
    """The newest context frame, then `steps` predicted frames, all in [-1, 1]."""
    def step(frames: list[np.ndarray]) -> np.ndarray:
        return generator([f[None] for f in frames], training=False).numpy()[0]

    return [context[-1], *roll(step, list(context), steps)]


def kept(generator: keras.Model, inputs: list[np.ndarray]) -> np.ndarray | None:
    """The mask head's mask as grey frames in [-1, 1] (white: the newest frame kept, black: redrawn), or None
    without one: whether it redraws what moves or freezes everything shows here first."""
    head = generator.get_layer("next_frame")
    if not isinstance(head, KeepOrRedraw):
        return None
    raw = keras.Model(generator.inputs, head.input[0])(inputs, training=False)
    return model_from_unit(np.repeat(keras.ops.convert_to_numpy(keras.ops.sigmoid(raw[..., 3:])), 3, axis=-1))


def draw(generator: keras.Model, samples: np.ndarray, preview_start: np.ndarray, preview_steps: int, run_dir: Path,
         step: int, fps: float) -> dict[str, np.ndarray]:
    """samples/step_N.png (newest input | target | prediction, and what the mask head kept) and
    previews/step_N.gif (a short rollout)."""
    k = context_of(generator)
    inputs = [samples[:, j] for j in range(k)]
    predictions = generator(inputs, training=False).numpy()
    rows = [[w[k - 1], w[k], p] for w, p in zip(samples, predictions, strict=True)]
    labels = ("input", "target", "prediction")
    if (masks := kept(generator, inputs)) is not None:
        rows, labels = [[*row, m] for row, m in zip(rows, masks, strict=True)], (*labels, "kept")
    picture = grid(rows, labels=labels)
    save_png(run_dir / "samples" / f"step_{step:06d}.png", picture)
    frames = continue_frames(generator, preview_start, preview_steps)
    save_gif(run_dir / "previews" / f"step_{step:06d}.gif", frames, fps)
    return {"samples": picture, "preview": grid([frames[:: max(1, len(frames) // 8)]])}


def film_pictures(config: Config, first: VideoPlan, count: int) -> tuple[np.ndarray, np.ndarray]:
    """What a --final run, which holds no frame out, draws at each eval: `count` training windows spread over the
    first video, and the context at the film's end, where the preview starts as the continuation will; in
    [-1, 1], read in one decoding pass."""
    k, stride = config.model.context, config.data.stride
    windows = first.splits["train"].windows(stride, config.window)
    chosen = [windows[round(i)] for i in np.linspace(0, len(windows) - 1, count)]
    end = context_indices(first.end, k, stride)
    frames = dict(read_frames(Path(first.info.path), config.frame_size, config.data.fit,
                              wanted={*end, *(i for w in chosen for i in w)}, stop=first.end + 1))
    samples = np.stack([np.stack([frames[i] for i in w]) for w in chosen])
    return to_model(samples)[0], to_model(np.stack([frames[i] for i in end]))[0]


def continuation_frames(config: Config, plans: list[VideoPlan]) -> np.ndarray:
    """uint8 [context + n, h, w, 3]: the validation split of the first video that has one (planning made sure
    one does), from its first context, `stride` apart, for as many steps as it holds (up to CONTINUATION_STEPS)."""
    k, stride = config.model.context, config.data.stride
    first = next(p for p in plans if p.splits["val"].starts)
    split = first.splits["val"]
    newest = split.start + span(k, stride)
    steps = min(CONTINUATION_STEPS, (split.stop - 1 - newest) // stride)
    wanted = [*context_indices(newest, k, stride), *future_indices(newest, steps, stride)]
    frames = dict(read_frames(Path(first.info.path), config.frame_size, config.data.fit, wanted=set(wanted),
                              stop=wanted[-1] + 1))
    return np.stack([frames[i] for i in wanted])


def continuation(generator: keras.Model, frames: np.ndarray) -> dict[str, float]:
    """How well a checkpoint continues the validation split from its first frames (lower score is better).

    `rollout_l1`: mean L1 against the real frames over the first EARLY_STEPS steps. `film_like`: the share of
    steps whose motion and sharpness (rolling medians, as the yardstick measures them) stay within BAND of the
    real frames' medians over the same steps. One-step L1 prefers an early, blurred checkpoint that freezes;
    `continuation_score` = rollout_l1 * (2 - film_like) doubles the error of a continuation that is never
    film-like; a continuation that is not finite scores infinity, never the best."""
    k = context_of(generator)
    context, real = frames[:k], [to_unit(f) for f in frames[k - 1:]]
    raw = continue_frames(generator, to_model(context)[0], len(real) - 1)[1:]
    if not all(np.isfinite(p).all() for p in raw):
        return {"rollout_l1": math.inf, "film_like": 0.0, "continuation_score": math.inf, "rollout_steps": len(raw)}
    predicted = [to_unit(to_uint8(p)) for p in raw]
    early = min(EARLY_STEPS, len(predicted))
    rollout_l1 = float(np.mean([metrics.l1(p, r) for p, r in zip(predicted[:early], real[1:], strict=False)]))
    motion = rolling_median([metrics.motion(a, b) for a, b in zip([real[0], *predicted], predicted, strict=False)])
    sharpness = rolling_median([metrics.sharpness(p) for p in predicted])
    real_motion = max(float(np.median([metrics.motion(a, b) for a, b in zip(real, real[1:], strict=False)])),
                      MOTION_FLOOR)
    real_sharpness = max(float(np.median([metrics.sharpness(r) for r in real[1:]])), SHARPNESS_FLOOR)
    low, high = BAND

    def near(value: float, real: float, floor: float) -> bool:  # as still or flat as a still, flat real film
        return low <= max(value, floor) / real <= high

    film_like = float(np.mean([near(m, real_motion, MOTION_FLOOR) and near(s, real_sharpness, SHARPNESS_FLOOR)
                               for m, s in zip(motion, sharpness, strict=True)]))
    return {"rollout_l1": rollout_l1, "film_like": film_like, "continuation_score": rollout_l1 * (2.0 - film_like),
            "rollout_steps": len(predicted)}
