"""Procedural scenes with a known future, for learning and judging long rollouts.

`window` is the view from a train window: parallax layers (clouds, far hills, near hills, poles and trees,
ground) scroll sideways at constant speeds over a still sky. Its motion is learnable and never ends, so a
model that learns it can stay alive for hundreds of steps, and a longer render of the same seed is the
true future to compare a rollout with. Every frame is a pure function of (index, size, seed, light):
frame i is the same whether rendered alone or in a sequence.

`two_shot` is a film with a cut: the window scene for its first CUT of frames (to `cut_frame(frames)`), then
another world at dusk for the rest: a landscape from another seed under a clear, starry sky glowing at the
horizon, scrolling the other way, slower. A model that learned only the first shot has never seen the second's colours
or motion; the second is as learnable as the first and also never ends, so `two_shot_at` past the film's end is
the true future of its last frame. Its frames also depend on the film's length, which places the cut.

`street` (`bench/street.py`) is a fixed camera on a street: a still place, and people, cyclists and cars crossing it.

    python -m bench.scenes window --frames 3000 --size 256x256 --fps 24 --seed 0 --out window.mp4
    python -m bench.scenes two_shot --frames 1200 --size 128x128 --out two_shot.mp4
    python -m bench.scenes street --frames 1200 --size 128x128 --out street.mp4
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import av
import numpy as np

from infer.errors import UserError, check_writable_dir, exit_on_user_error
from infer.progress import Steps
from infer.video import VideoWriter

# Speeds in frame widths per frame: the look is the same at any size. At a stride of 6 frames the ground moves
# 18% of the width and the clouds 0.36%.
SPEEDS = {"clouds": 0.0006, "far_hills": 0.0025, "near_hills": 0.007, "poles": 0.018, "ground": 0.03}
LIGHT_PERIOD = 1200  # frames: a slow dimming and warming and back, 50 s at 24 fps
MIN_SIDE = 16
CUT = 0.75  # two_shot: the fraction of the film before the cut
DUSK_SPEED = -0.75  # the second shot's speeds, times the first's: the other way, a quarter slower
# The second shot's colours, as RGB gains per layer: the land darker and bluer, its texture kept so the motion
# still shows. It has no clouds: the slowest layer, they would cover a sliver of their loop in the shot, and the
# shot's own future would bring a sky it never showed (judged against the shot, the real future left its world
# after about 120 steps with them, and stays in it for 600 without).
DUSK = {"far_hills": (0.62, 0.5, 0.78), "near_hills": (0.5, 0.46, 0.7), "poles": (0.45, 0.4, 0.55),
        "ground": (0.55, 0.48, 0.62)}


@dataclass(frozen=True)
class Layer:
    """A horizontally periodic band of premultiplied RGBA, column x % period showing at frame column x."""

    columns: np.ndarray  # (period, rows, 4) float32, column-major so a shift gathers whole contiguous columns
    top: int  # the frame row of the band's first row
    speed: float  # pixels per frame

    @classmethod
    def of(cls, rgba: np.ndarray, top: int, speed: float) -> Layer:
        """From (rows, period, 4) premultiplied RGBA: RGB times alpha in 0..255, alpha in 0..1."""
        return cls(np.ascontiguousarray(rgba.transpose(1, 0, 2), np.float32), top, speed)

    def draw(self, canvas: np.ndarray, t: int) -> None:
        """Composite over a (width, height, 3) canvas shifted by speed*t, blending the two neighbouring whole shifts."""
        shift = self.speed * t
        whole = int(np.floor(shift))
        frac = np.float32(shift - whole)
        period, rows = self.columns.shape[:2]
        cols = (np.arange(canvas.shape[0]) + whole) % period
        layer = self.columns[cols]
        if frac:
            layer *= 1 - frac
            layer += frac * self.columns[(cols + 1) % period]
        band = canvas[:, self.top:self.top + rows]
        band *= 1 - layer[..., 3:]
        band += layer[..., :3]


@dataclass(frozen=True)
class Scene:
    sky: np.ndarray  # (width, height, 3) float32, column-major like the layers
    layers: tuple[Layer, ...]  # back to front

    def render(self, t: int, light: bool = False) -> np.ndarray:
        """Frame t from t alone: no state carries between frames, so any frame can be rendered first."""
        canvas = self.sky.copy()
        for layer in self.layers:
            layer.draw(canvas, t)
        if light:
            canvas *= light_gain(t)
        canvas += 0.5
        np.clip(canvas, 0, 255, out=canvas)
        return np.ascontiguousarray(canvas.transpose(1, 0, 2).astype(np.uint8))


def light_gain(t: int) -> np.ndarray:
    """RGB gain that dims by up to 25% and warms, then returns; 1 at frame 0, so a lit film starts as an unlit one."""
    dusk = (1 - np.cos(2 * np.pi * t / LIGHT_PERIOD)) / 2
    return np.float32((1 - 0.25 * dusk) * np.array([1 + 0.08 * dusk, 1, 1 - 0.12 * dusk]))


# Textures. `x` runs over a layer's period so every texture wraps seamlessly; sizes follow the frame height.


def periodic_noise(rng: np.random.Generator, rows: int, period: int, cell: float) -> np.ndarray:
    """Smooth value noise in 0..1 with features about `cell` pixels across, wrapping exactly after `period`."""
    nx = max(2, round(period / cell))
    ny = int(rows / cell) + 2
    grid = rng.random((ny, nx), dtype=np.float32)
    x = np.arange(period) * nx / period
    y = np.arange(rows) / cell
    x0, y0 = x.astype(int), y.astype(int)
    fx, fy = _smooth(x - x0)[None, :], _smooth(y - y0)[:, None]
    x1 = (x0 + 1) % nx
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def _smooth(f: np.ndarray) -> np.ndarray:
    return f * f * (3 - 2 * f)


def fractal_noise(rng: np.random.Generator, rows: int, period: int, cell: float, octaves: int = 4) -> np.ndarray:
    """Octaves of value noise (each half the size, half the weight): detail at every scale, for sharpness."""
    total, weights = np.zeros((rows, period), np.float32), 0.0
    for octave in range(octaves):
        weight = 0.5**octave
        total += weight * periodic_noise(rng, rows, period, max(1.0, cell / 2**octave))
        weights += weight
    return total / weights


def ridge(rng: np.random.Generator, period: int, base: float, amplitudes: list[float]) -> np.ndarray:
    """A skyline row per column: `base` plus sinusoids with whole cycles per period and seeded phases."""
    x = np.arange(period) * 2 * np.pi / period
    line = np.full(period, base, np.float32)
    for harmonic, amplitude in enumerate(amplitudes):
        cycles = (harmonic + 1) * 2 + int(rng.integers(0, 2))
        line += amplitude * np.sin(cycles * x + rng.uniform(0, 2 * np.pi))
    return line


def spread(rng: np.random.Generator, count: int, period: float) -> np.ndarray:
    """`count` positions, one at random in each equal slot: scattered, yet no stretch of the loop is crowded or bare,
    so every part of the film moves about as much (steady motion is easier to learn and to judge)."""
    return (np.arange(count) + rng.uniform(0.1, 0.9, count)) * period / count


def below(line: np.ndarray, rows: int, top: int) -> np.ndarray:
    """Alpha of everything under a skyline, anti-aliased over one pixel so the edge stays crisp but smooth."""
    y = np.arange(top, top + rows, dtype=np.float32)[:, None]
    return np.clip(y - line[None, :] + 0.5, 0, 1)


def premultiply(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=-1).astype(np.float32)


def disc(cx: float, cy: float, radius: float, rows: int, cols: int, top: int = 0, left: int = 0) -> np.ndarray:
    """Anti-aliased coverage of a disc on a rows x cols patch whose corner is at (top, left)."""
    y = np.arange(top, top + rows, dtype=np.float32)[:, None]
    x = np.arange(left, left + cols, dtype=np.float32)[None, :]
    return np.clip(radius - np.hypot(x - cx, y - cy) + 0.5, 0, 1)


def paint(rgba: np.ndarray, patch_rgb: np.ndarray, alpha: np.ndarray, top: int, left: int) -> None:
    """Composite a patch onto a periodic layer in place, wrapping around its right edge."""
    patch_rgb = np.broadcast_to(patch_rgb, (*alpha.shape, 3))
    first, last = max(top, 0), min(top + alpha.shape[0], rgba.shape[0])  # rows outside the layer are dropped
    if first >= last:
        return
    alpha, patch_rgb = alpha[first - top:last - top], patch_rgb[first - top:last - top]
    xs = (left + np.arange(alpha.shape[1])) % rgba.shape[1]
    rgba[first:last, xs] = rgba[first:last, xs] * (1 - alpha[..., None]) + premultiply(patch_rgb, alpha)


def sky(height: int, width: int) -> np.ndarray:
    """Deep blue overhead to pale at the horizon; still, so it anchors the frame."""
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None] ** 0.8
    zenith, horizon = np.array([52, 104, 186], np.float32), np.array([196, 218, 236], np.float32)
    return np.broadcast_to(zenith * (1 - y) + horizon * y, (height, width, 3)).copy()


def dusk_sky(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Deep indigo overhead to an orange glow at the horizon, with stars high up: the second shot's still
    backdrop."""
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None] ** 1.6
    zenith, horizon = np.array([22, 24, 70], np.float32), np.array([236, 136, 74], np.float32)
    canvas = np.broadcast_to(zenith * (1 - y) + horizon * y, (height, width, 3)).copy()
    for _ in range(round(height * width / 300)):
        cx, cy = rng.uniform(0, width), 0.4 * height * rng.random() ** 1.5  # more stars higher up
        glow = disc(cx, cy, rng.uniform(0.3, 0.8), height, width)[..., None] * rng.uniform(0.5, 1)
        canvas += glow * (np.array([250, 246, 230], np.float32) - canvas)
    return canvas


def clouds(rng: np.random.Generator, height: int, width: int) -> Layer:
    """Soft white blobs, each a cluster of flattened Gaussians roughened by noise, grey underneath."""
    top, rows, period = int(0.08 * height), int(0.32 * height), 4 * width
    y = np.arange(rows, dtype=np.float32)[:, None]
    x = np.arange(period, dtype=np.float32)[None, :]
    density = np.zeros((rows, period), np.float32)
    for cx in spread(rng, max(3, round(2 * period / height)), period):
        cy = rng.uniform(0.3, 0.6) * rows
        for _ in range(int(rng.integers(3, 7))):
            bx, by = cx + rng.normal(0, 0.12 * height), cy + rng.normal(0, 0.04 * height)
            sx, sy = rng.uniform(0.05, 0.11) * height, rng.uniform(0.025, 0.05) * height
            dx = (x - bx + period / 2) % period - period / 2
            density += np.exp(-0.5 * ((dx / sx) ** 2 + ((y - by) / sy) ** 2))
    fluff = fractal_noise(rng, rows, period, 0.08 * height)
    edge = np.clip(np.minimum(y, rows - 1 - y) / (0.06 * rows), 0, 1)  # nothing reaches the band's edges
    alpha = np.clip((density * (0.6 + 0.8 * fluff) - 0.35) * 2.0, 0, 0.95) * edge
    shade = np.clip((y - 0.35 * rows) / (0.5 * rows), 0, 1)[..., None]
    rgb = np.array([250, 250, 252], np.float32) * (1 - shade) + np.array([196, 202, 214], np.float32) * shade
    rgb = rgb * (0.94 + 0.06 * fluff[..., None])
    return Layer.of(premultiply(rgb, alpha), top, SPEEDS["clouds"] * width)


def far_hills(rng: np.random.Generator, height: int, width: int) -> Layer:
    """A hazy bluish-green silhouette, lighter towards its crest as if seen through air."""
    period = 3 * width
    line = ridge(rng, period, 0.52 * height, [0.045 * height, 0.025 * height, 0.012 * height, 0.006 * height])
    top = int(line.min()) - 1
    rows = int(0.74 * height) - top  # the near hills cover everything below 0.72 of the height
    alpha = below(line, rows, top)
    depth = np.clip((np.arange(top, top + rows)[:, None] - line[None, :]) / (0.15 * height), 0, 1)[..., None]
    texture = fractal_noise(rng, rows, period, 0.05 * height, octaves=3)[..., None]
    crest, foot = np.array([112, 150, 160], np.float32), np.array([66, 112, 100], np.float32)
    rgb = (crest * (1 - depth) + foot * depth) * (0.9 + 0.2 * texture)
    return Layer.of(premultiply(rgb, alpha), top, SPEEDS["far_hills"] * width)


def near_hills(rng: np.random.Generator, height: int, width: int) -> Layer:
    """Darker green rolling ground with mottled fields and dark bushes: texture that shows the motion."""
    period = 3 * width
    line = ridge(rng, period, 0.65 * height, [0.035 * height, 0.018 * height, 0.008 * height])
    top = int(line.min()) - 1
    rows = int(0.9 * height) - top  # the ground covers everything below 0.89 of the height
    rgba = premultiply(_field_colours(rng, rows, period, height), below(line, rows, top))
    for x in spread(rng, round(10 * period / height), period):  # bushes along the slopes
        y = line[int(x)] + rng.uniform(0.03, 0.22) * height
        foliage(rgba, rng, x, y - top, rng.uniform(0.02, 0.04) * height, np.array([30, 66, 28], np.float32))
    rgba[..., 3] = np.minimum(rgba[..., 3], below(line, rows, top))  # bushes never poke above the skyline
    return Layer.of(rgba, top, SPEEDS["near_hills"] * width)


def _field_colours(rng: np.random.Generator, rows: int, period: int, height: int) -> np.ndarray:
    mottle = fractal_noise(rng, rows, period, 0.12 * height)[..., None]
    grain = fractal_noise(rng, rows, period, 0.02 * height, octaves=2)[..., None]
    dark, light = np.array([36, 82, 34], np.float32), np.array([92, 140, 58], np.float32)
    return (dark * (1 - mottle) + light * mottle) * (0.8 + 0.4 * grain)


def poles_and_trees(rng: np.random.Generator, height: int, width: int) -> Layer:
    """Telegraph poles at a steady spacing with sagging wires, and round-crowned trees between them."""
    top, period = int(0.19 * height), 3 * width  # from the pole tops down into the ground
    rows = int(0.9 * height) - top
    rgba = np.zeros((rows, period, 4), np.float32)
    spacing = max(1, round(period / (0.55 * width)))
    poles = [(i + rng.uniform(-0.08, 0.08)) * period / spacing for i in range(spacing)]
    for x in spread(rng, round(2.0 * period / width), period):
        _tree(rgba, rng, x, top, height)
    _wires(rgba, poles, top, height)
    for x in poles:
        _pole(rgba, x, top, height)
    return Layer.of(rgba, top, SPEEDS["poles"] * width)


def _pole(rgba: np.ndarray, x: float, top: int, height: int) -> None:
    half, rows = max(1.0, 0.012 * height), rgba.shape[0]
    left = int(x - half) - 1
    cols = np.arange(left, left + int(2 * half) + 3, dtype=np.float32)
    coverage = np.clip(half - np.abs(cols + 0.5 - x) + 0.5, 0, 1)[None, :]
    pole_top = int(0.2 * height) - top
    alpha = np.zeros((rows, cols.size), np.float32)
    alpha[pole_top:] = coverage
    shade = 0.7 + 0.6 * np.clip((cols + 0.5 - x) / (2 * half) + 0.5, 0, 1)  # lit from the left
    paint(rgba, (np.array([58, 44, 34], np.float32) * shade[:, None])[None], alpha, 0, left)
    arm = max(1, round(0.012 * height))
    reach = int(3 * half + 0.03 * height)
    paint(rgba, np.array([50, 38, 30], np.float32), np.ones((arm, 2 * reach), np.float32),
          pole_top + int(0.03 * height), int(x) - reach)


def _wires(rgba: np.ndarray, poles: list[float], top: int, height: int) -> None:
    """Two wires per span hanging between neighbouring poles, a catenary-like parabola."""
    period, wire = rgba.shape[1], np.array([36, 36, 40], np.float32)
    for i, start in enumerate(poles):
        end = poles[(i + 1) % len(poles)] + (period if i + 1 == len(poles) else 0)
        x = np.arange(int(start), int(end) + 1, dtype=np.float32)
        u = (x - start) / (end - start)
        for attach in (0.23, 0.26):
            y = attach * height + 0.05 * height * 4 * u * (1 - u) - top
            cols = x.astype(int) % period
            row = np.floor(y).astype(int)
            for rows, weight in ((row, 1 - (y - row)), (row + 1, y - row)):  # anti-aliased over two rows
                alpha = 0.8 * weight[:, None]
                rgba[rows, cols] = rgba[rows, cols] * (1 - alpha) + premultiply(wire, alpha[:, 0])


def _tree(rgba: np.ndarray, rng: np.random.Generator, x: float, top: int, height: int) -> None:
    """A trunk under a round leafy crown."""
    radius = rng.uniform(0.07, 0.12) * height
    cy = rng.uniform(0.5, 0.62) * height
    trunk = max(1.0, 0.015 * height)
    trunk_top = int(cy - top)
    trunk_alpha = np.ones((rgba.shape[0] - trunk_top, int(2 * trunk) + 1), np.float32)
    paint(rgba, np.array([64, 46, 30], np.float32), trunk_alpha, trunk_top, int(x - trunk))
    foliage(rgba, rng, x, cy - top, radius, np.array([30, 82, 28], np.float32))


def foliage(rgba: np.ndarray, rng: np.random.Generator, x: float, y: float, radius: float, colour: np.ndarray) -> None:
    """A leafy clump of overlapping discs with a ragged, noisy edge, lit from the upper left."""
    side = int(2 * radius) + 4
    left, top = int(x - radius) - 2, int(y - radius) - 2
    clump = np.zeros((side, side), np.float32)
    for _ in range(4):
        ox, oy = np.clip(rng.normal(0, 0.25 * radius, 2), -0.3 * radius, 0.3 * radius)
        clump = np.maximum(clump, disc(x + ox, y + oy, 0.7 * radius, side, side, top, left))
    leaves = fractal_noise(rng, side, side, max(2.0, 0.3 * radius), octaves=3)
    v = np.linspace(0, 1, side, dtype=np.float32)
    lit = np.clip(1.1 - 0.7 * v[:, None] - 0.4 * v[None, :] + 1.2 * (leaves - 0.5), 0, 1.2)[..., None]
    alpha = clump * np.clip(0.4 + 2 * leaves, 0, 1)
    paint(rgba, colour * (0.55 + 0.8 * lit), alpha, top, left)


def ground(rng: np.random.Generator, height: int, width: int) -> Layer:
    """The embankment right outside: grass and gravel with fine grain and a ragged top edge; the fastest layer."""
    top, period = int(0.82 * height), 2 * width
    rows = height - top
    edge = 0.86 * height + 0.02 * height * (fractal_noise(rng, 1, period, 0.04 * height)[0] - 0.5) * 2
    blades = rng.random(period).astype(np.float32) * 0.025 * height  # grass blades stick up from the edge
    alpha = below(edge - blades, rows, top)
    depth = np.clip((np.arange(top, height)[:, None] - edge[None, :]) / (0.1 * height), 0, 1)
    grain = fractal_noise(rng, rows, period, 0.06 * height)
    speckle = rng.random((rows, period), dtype=np.float32)
    stones = np.clip((fractal_noise(rng, rows, period, max(1.0, 0.03 * height), octaves=2) - 0.6) * 6, 0, 1)
    grass, gravel = np.array([70, 112, 40], np.float32), np.array([120, 108, 92], np.float32)
    mix = np.clip(depth * 1.6 - 0.4 + 0.5 * (grain - 0.5), 0, 1)
    shade = 0.55 + 0.4 * grain + 0.35 * speckle + 0.5 * stones * mix
    rgb = (grass * (1 - mix[..., None]) + gravel * mix[..., None]) * shade[..., None]
    return Layer.of(premultiply(rgb, alpha), top, SPEEDS["ground"] * width)


@lru_cache(maxsize=2)
def build(size: tuple[int, int], seed: int) -> Scene:
    """Every texture once per (size, seed): frames then cost only shifts and blends."""
    height, width = check_size(size)
    rng = np.random.default_rng(seed)
    makers = (clouds, far_hills, near_hills, poles_and_trees, ground)
    layers = tuple(make(np.random.default_rng(rng.integers(2**63)), height, width) for make in makers)
    return Scene(np.ascontiguousarray(sky(height, width).transpose(1, 0, 2)), layers)


def dusk_seed(seed: int) -> int:
    """The second shot's seed, drawn from the first's: another landscape, yet one seed says the whole film."""
    return int(np.random.SeedSequence([seed, 2]).generate_state(1)[0])


@lru_cache(maxsize=2)
def build_dusk(size: tuple[int, int], seed: int) -> Scene:
    """The second shot: the window scene of another seed without its clouds, recoloured to DUSK and scrolling at
    DUSK_SPEED, under a dusk sky."""
    height, width = check_size(size)
    scene = build(size, dusk_seed(seed))
    layers = tuple(Layer(layer.columns * np.float32([*DUSK[name], 1]), layer.top, layer.speed * DUSK_SPEED)
                   for name, layer in zip(SPEEDS, scene.layers, strict=True) if name in DUSK)  # in SPEEDS' order
    sky = dusk_sky(np.random.default_rng(dusk_seed(seed)), height, width)
    return Scene(np.ascontiguousarray(sky.transpose(1, 0, 2)), layers)


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    height, width = (int(side) for side in size)
    if height < MIN_SIDE or width < MIN_SIDE:
        raise UserError(f"scene size {height}x{width} is too small; give at least {MIN_SIDE}x{MIN_SIDE}")
    return height, width


def window(frames: int, size: tuple[int, int] = (256, 256), seed: int = 0, light: bool = False) -> Iterator[np.ndarray]:
    """Yields `frames` uint8 HxWx3 frames (size is (height, width)) of the train-window scene.

    Textures are built here, not on the first frame, so a bad size fails at the call.
    """
    scene = build(tuple(size), seed)
    return (scene.render(t, light) for t in range(frames))


def frame_at(index: int, size: tuple[int, int] = (256, 256), seed: int = 0, light: bool = False) -> np.ndarray:
    """Frame `index` of `window(...)` exactly, without rendering the ones before: the true future at any step."""
    return build(tuple(size), seed).render(index, light)


def cut_frame(frames: int) -> int:
    """The first frame of two_shot's second shot, in a film of `frames` frames."""
    return round(CUT * frames)


def two_shot(frames: int, size: tuple[int, int] = (256, 256), seed: int = 0,
             light: bool = False) -> Iterator[np.ndarray]:
    """Yields `frames` uint8 HxWx3 frames of the two-shot film: the window scene, then at `cut_frame(frames)`
    a cut to another world at dusk. Both shots' textures are built here, so a bad size fails at the call."""
    build(tuple(size), seed)
    build_dusk(tuple(size), seed)
    return (two_shot_at(t, frames, size, seed, light) for t in range(frames))


def two_shot_at(index: int, frames: int, size: tuple[int, int] = (256, 256), seed: int = 0,
                light: bool = False) -> np.ndarray:
    """Frame `index` of `two_shot(frames, ...)` exactly; past the film's end, the second shot goes on."""
    cut = cut_frame(frames)
    if index < cut:
        return build(tuple(size), seed).render(index, light)
    return build_dusk(tuple(size), seed).render(index - cut, light)


def scenes() -> dict[str, Callable[..., Iterator[np.ndarray]]]:
    from bench.street import street  # built on this module's textures, so imported when asked for

    return {"window": window, "two_shot": two_shot, "street": street}


def write(path: Path, frames: int, size: tuple[int, int] = (256, 256), fps: float = 24.0, seed: int = 0,
          light: bool = False, scene: str = "window") -> Path:
    """Render a scene and encode it to `path` atomically: nothing is left under the name if rendering fails."""
    if frames < 1:
        raise UserError(f"--frames must be at least 1, not {frames}")
    return encode(path, lambda: scenes()[scene](frames, size, seed, light), frames, size, fps, scene)


def encode(path: Path, render: Callable[[], Iterable[np.ndarray]], frames: int, size: tuple[int, int], fps: float,
           name: str) -> Path:
    """Encode the `frames` frames `render()` yields to `path` atomically; any sequence of a scene's frames, such as
    a film's true future. `name` suggests a file name when `path` is a folder."""
    if path.is_dir():
        raise UserError(f"--out {path} is a directory; give a video file name such as {path / f'{name}.mp4'}")
    check_writable_dir(path.parent if str(path.parent) else Path("."), "output folder")
    height, width = check_size(size)
    if height % 2 or width % 2:
        raise UserError(f"video size {height}x{width} must be even on both sides (H.264 in 4:2:0); try "
                        f"{height + height % 2}x{width + width % 2}")
    try:
        writer = VideoWriter(path, size, fps)
    except (ValueError, av.FFmpegError) as error:
        raise UserError(f"can't write a video to {path} ({error}); use a .mp4 or .mkv name") from None
    progress = Steps("render", frames, unit="frame")
    try:
        for i, frame in enumerate(render(), 1):
            writer.write(frame)
            progress.update(i)
        path = writer.close()
    except (OSError, av.FFmpegError) as error:
        writer.abort()
        raise UserError(f"can't write {path} ({error}); nothing left under that name") from None
    except BaseException:
        writer.abort()
        raise
    finally:
        progress.close()
    return path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        """Argument mistakes are one line and exit code 2, like every other user error."""
        raise UserError(message)


def parse_size(text: str) -> tuple[int, int]:
    """'256x256' or 'HEIGHTxWIDTH' as (height, width)."""
    try:
        height, width = (int(side) for side in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size {text!r} is not HEIGHTxWIDTH, e.g. 256x256 or 144x256") from None
    return check_size((height, width))


def run(argv: list[str]) -> None:
    parser = _Parser(prog="python -m bench.scenes", description="Render a procedural scene with a known future.")
    parser.add_argument("scene", help=f"one of: {', '.join(scenes())}")
    parser.add_argument("--frames", type=int, default=3000, help="how many frames to render")
    parser.add_argument("--size", default="256x256", help="HEIGHTxWIDTH")
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--light", action="store_true", help=f"slow light change over {LIGHT_PERIOD} frames")
    parser.add_argument("--out", type=Path, help="video file (default: SCENE.mp4)")
    args = parser.parse_args(argv)
    if args.scene not in scenes():
        raise UserError(f"unknown scene {args.scene!r}; choose from {', '.join(scenes())}")
    if args.fps <= 0:
        raise UserError(f"--fps must be positive, not {args.fps}")
    out = args.out or Path(f"{args.scene}.mp4")
    path = write(out, args.frames, parse_size(args.size), args.fps, args.seed, args.light, args.scene)
    print(f"video: {path}\nnext: epilogue-train {path} --preset demo")


def main() -> None:
    exit_on_user_error(lambda: run(sys.argv[1:]))


if __name__ == "__main__":
    main()
