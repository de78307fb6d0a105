"""The rollout section's baseline: the origin story's notebook rolling a run's generator out, as it did it.

    python -m bench.probes.notebook_rollout RUN_DIR VIDEO OUT.mp4 STEPS      prints one JSON line

Keras with training=True, one PNG per step, a 1920x1080 video composed from the PNGs afterwards.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from bench.rss import peak_rss_mb
from infer.video import VideoWriter, read_frames
from trainer import model
from trainer.rundir import read_config


def restore(run: Path) -> tuple:
    """The run's config and its generator at the latest checkpoint."""
    config = read_config(run)
    generator = model.generator(config)
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    tf.train.Checkpoint(generator=generator).restore(latest).expect_partial()
    return config, generator


def save_steps(generator, frame: np.ndarray, steps: int, pngs: Path) -> float:
    """Each step's frame to a PNG, the model called as the notebook did; the seconds spent in the model."""
    model_s = 0.0
    x = frame[None].astype(np.float32) / 127.5 - 1
    pngs.mkdir(exist_ok=True)
    for k in range(steps):
        began = time.perf_counter()
        x = generator([x], training=True).numpy()
        model_s += time.perf_counter() - began
        Image.fromarray(((x[0] + 1) * 127.5).clip(0, 255).astype(np.uint8)).save(pngs / f"{k:04d}.png")
    return model_s


def compose(pngs: Path, steps: int, out: Path) -> None:
    """The video from the PNGs, 600 frames in 90 s as the origin story's."""
    writer = VideoWriter(out, (1080, 1920), 600 / 90)
    for k in range(steps):
        writer.write(np.asarray(Image.open(pngs / f"{k:04d}.png").convert("RGB")))
    writer.close()


def main(run: Path, source: Path, out: Path, steps: int) -> dict:
    """Wall time from the source's last frame on (loading the model not counted), model time, peak RSS."""
    config, generator = restore(run)
    *_, (_, frame) = read_frames(source, config.frame_size)
    began = time.perf_counter()
    pngs = out.parent / "origin_pngs"
    model_s = save_steps(generator, frame, steps, pngs)
    compose(pngs, steps, out)
    return {"wall_s": time.perf_counter() - began, "model_s_per_step": model_s / steps, "peak_rss_mb": peak_rss_mb()}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))))
