"""Pictures people look at instead of reading numbers: grids, GIFs, PNGs. Written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from infer.errors import atomic_path


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """[-1, 1] float -> [0, 255] uint8 (uint8 passes through)."""
    if frame.dtype == np.uint8:
        return frame
    return np.clip(np.rint((np.asarray(frame, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def grid(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str] = (), gap: int = 4) -> np.ndarray:
    """Frames laid out row by row on a dark background, with optional column labels on top."""
    height, width = rows[0][0].shape[:2]
    top = 14 if labels else 0
    columns = max(len(r) for r in rows)
    canvas = np.full((top + len(rows) * (height + gap) + gap, columns * (width + gap) + gap, 3), 24, np.uint8)
    for r, row in enumerate(rows):
        for c, frame in enumerate(row):
            y, x = top + gap + r * (height + gap), gap + c * (width + gap)
            canvas[y:y + height, x:x + width] = to_uint8(frame)
    if labels:
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        for c, label in enumerate(labels):
            draw.text((gap + c * (width + gap) + 2, 1), label, fill=(230, 230, 230))
        canvas = np.asarray(image)
    return canvas


def save_png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    Image.fromarray(to_uint8(image)).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def save_gif(path: Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(to_uint8(f)) for f in frames]
    tmp = atomic_path(path)
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps),
                   loop=0)
    os.replace(tmp, path)
    return path
