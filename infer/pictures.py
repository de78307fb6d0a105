"""Pictures people look at instead of reading numbers: grids, GIFs, line charts, PNGs. Written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from infer.errors import atomic_path
from infer.frames import to_uint8


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


def line_chart(series: dict[str, Sequence[float | None]], title: str, ylabel: str,
               band: tuple[float, float] | None = None, band_label: str = "", size: tuple[int, int] = (720, 360)
               ) -> np.ndarray:
    """A line chart over steps 1..N with matplotlib (Agg, no display needed): one line per series, a legend,
    and an optional shaded horizontal band. Missing values (None) leave gaps."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size[0] / 100, size[1] / 100), dpi=100, layout="constrained")
    axes = figure.subplots()
    if band:
        axes.axhspan(*band, color="#2ca02c", alpha=0.15, label=band_label, linewidth=0)
    for name, values in series.items():
        axes.plot(range(1, len(values) + 1), [np.nan if v is None else v for v in values], label=name, linewidth=1.5)
    axes.set_title(title)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
