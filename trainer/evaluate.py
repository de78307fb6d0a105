"""Scores the generator on held-out pairs and draws what it does, at every eval."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from infer.pictures import grid, save_gif, save_png
from infer.roll import roll
from trainer.model import KeepOrRedraw


def context_of(generator: keras.Model) -> int:
    return len(generator.inputs)


@tf.function
def _predict_and_score(generator: keras.Model, windows: tf.Tensor) -> dict[str, tf.Tensor]:
    """Per-window L1, PSNR and SSIM of one step from the real context, frames in [0, 1], inference mode."""
    k = context_of(generator)
    fake = (generator([windows[:, j] for j in range(k)], training=False) + 1.0) / 2.0
    real = (windows[:, k] + 1.0) / 2.0
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


def rollout(generator: keras.Model, context: np.ndarray, steps: int) -> list[np.ndarray]:
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
    return np.repeat(keras.ops.convert_to_numpy(keras.ops.sigmoid(raw[..., 3:])), 3, axis=-1) * 2.0 - 1.0


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
    frames = rollout(generator, preview_start, preview_steps)
    save_gif(run_dir / "previews" / f"step_{step:06d}.gif", frames, fps)
    return {"samples": picture, "preview": grid([frames[:: max(1, len(frames) // 8)]])}
