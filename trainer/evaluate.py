"""Scores the generator on held-out pairs and draws what it does, at every eval."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from infer.pictures import grid, save_gif, save_png


@tf.function
def _predict_and_score(generator: keras.Model, inp: tf.Tensor, tgt: tf.Tensor) -> dict[str, tf.Tensor]:
    """Per-pair L1, PSNR and SSIM with frames in [0, 1], the generator in inference mode."""
    fake = (generator(inp, training=False) + 1.0) / 2.0
    real = (tgt + 1.0) / 2.0
    return {"l1": tf.reduce_mean(tf.abs(fake - real), axis=[1, 2, 3]),
            "psnr": tf.image.psnr(fake, real, max_val=1.0),
            "ssim": tf.image.ssim(fake, real, max_val=1.0)}


def score(generator: keras.Model, batches: tf.data.Dataset) -> dict[str, float]:
    """Mean L1, PSNR and SSIM over every pair of `batches`."""
    totals: dict[str, list[np.ndarray]] = {"l1": [], "psnr": [], "ssim": []}
    for inp, tgt in batches:
        for name, values in _predict_and_score(generator, inp, tgt).items():
            totals[name].append(values.numpy())
    return {name: float(np.concatenate(v).mean()) for name, v in totals.items()}


def rollout(generator: keras.Model, start: np.ndarray, steps: int) -> list[np.ndarray]:
    """Feed each output back in: the start frame, then `steps` predicted frames, all in [-1, 1]."""
    frames, frame = [start], start[None]
    for _ in range(steps):
        frame = generator(frame, training=False).numpy()
        frames.append(frame[0])
    return frames


def draw(generator: keras.Model, samples: tuple[np.ndarray, np.ndarray], preview_start: np.ndarray,
         preview_steps: int, run_dir: Path, step: int, fps: float) -> dict[str, np.ndarray]:
    """samples/step_N.png (input | target | prediction) and previews/step_N.gif (a short rollout)."""
    inputs, targets = samples
    predictions = generator(inputs, training=False).numpy()
    picture = grid([list(row) for row in zip(inputs, targets, predictions, strict=True)],
                   labels=("input", "target", "prediction"))
    save_png(run_dir / "samples" / f"step_{step:06d}.png", picture)
    frames = rollout(generator, preview_start, preview_steps)
    save_gif(run_dir / "previews" / f"step_{step:06d}.gif", frames, fps)
    return {"samples": picture, "preview": grid([frames[:: max(1, len(frames) // 8)]])}
