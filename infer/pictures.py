"""Pictures people look at instead of reading numbers: grids, GIFs, PNGs. Written atomically."""

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


COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def line_chart(series: dict[str, Sequence[float | None]], title: str, ylabel: str,
               band: tuple[float, float] | None = None, band_label: str = "", size: tuple[int, int] = (720, 360)
               ) -> np.ndarray:
    """A plain line chart over steps 1..N: one line per series, an optional shaded horizontal band."""
    width, height = size
    left, right, top, bottom = 64, 16, 30, 40
    values = [v for s in series.values() for v in s if v is not None and np.isfinite(v)]
    values += list(band or ())
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    low, high = low - 0.05 * (high - low), high + 0.05 * (high - low)
    steps = max((len(s) for s in series.values()), default=1)

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + (width - left - right) * (step - 1) / max(steps - 1, 1)
        return x, top + (height - top - bottom) * (high - value) / (high - low)

    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    if band:
        (x0, y0), (x1, y1) = xy(1, band[1]), xy(steps, band[0])
        draw.rectangle([x0, y0 - 1, x1, max(y1, y0) + 1], fill=(200, 225, 200))  # visible even when narrow
    for i in range(5):
        value = low + (high - low) * i / 4
        _, y = xy(1, value)
        draw.line([(left, y), (width - right, y)], fill=(235, 235, 235))
        draw.text((4, y - 6), f"{value:.3g}", fill=(80, 80, 80))
    for i in range(6):
        step = 1 + (steps - 1) * i / 5
        x, _ = xy(step, low)
        draw.text((x - 8, height - bottom + 6), f"{step:.0f}", fill=(80, 80, 80))
    draw.rectangle([left, top, width - right, height - bottom], outline=(120, 120, 120))
    draw.text((width // 2 - 3 * len(title), 8), title, fill=(0, 0, 0))
    draw.text((width // 2 - 12, height - 16), "step", fill=(80, 80, 80))
    draw.text((4, 8), ylabel, fill=(80, 80, 80))
    legend = [(name, COLOURS[i % len(COLOURS)]) for i, name in enumerate(series)]
    if band:
        legend.append((band_label, (150, 190, 150)))
    for i, (name, colour) in enumerate(legend):
        y = top + 6 + 14 * i
        draw.rectangle([width - right - 150, y + 3, width - right - 140, y + 9], fill=colour)
        draw.text((width - right - 134, y), name, fill=(0, 0, 0))
    for i, values_ in enumerate(series.values()):
        points = [xy(k + 1, v) for k, v in enumerate(values_) if v is not None and np.isfinite(v)]
        if len(points) > 1:
            draw.line(points, fill=COLOURS[i % len(COLOURS)], width=2)
        elif points:
            x, y = points[0]
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=COLOURS[i % len(COLOURS)])
    return np.asarray(image)
