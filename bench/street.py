"""A street seen from a fixed camera: a still place with things moving through it, and a known future.

The background never moves: sky, facades with rows of windows, a pavement, a road with lane marks, a lawn in front
and a lamp post. Through it pass people (a visible walking cycle: legs and arms swing in opposition), cyclists
(pedalling) and cars, entering at either side on lanes at different depths, each at its own speed, nearer ones
drawn over farther ones (so they occlude each other), and leaving. A little sensor noise lies over every frame.

Every frame is a pure function of (index, size, seed): who is where at frame t comes from the movers that entered
before t, each drawn from (seed, its number) alone, so frame t is the same rendered alone or in a sequence, and a
longer render of the same seed holds the true future of a shorter one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from bench.scenes import check_size, disc, fractal_noise, light_gain

GAP = 40  # frames between movers entering, on average (each enters somewhere in its own slot of GAP frames)
NOISE = 2.0  # sensor noise: standard deviation in grey levels
# Kinds of movers: speed in frame widths per frame, height in frame heights (at the nearest lane), share of movers.
KINDS = {"person": (0.0028, 0.24, 0.55), "cyclist": (0.007, 0.19, 0.2), "car": (0.012, 0.16, 0.25)}
# Lanes: the row of the feet (in frame heights), the scale of what walks there, the kinds that use it.
LANES = ((0.60, 0.62, ("person",)), (0.70, 0.8, ("car", "cyclist")), (0.78, 0.9, ("car", "cyclist")),
         (0.92, 1.0, ("person",)))
SKIN = ((224, 180, 150), (190, 140, 100), (140, 95, 65), (95, 65, 45))


@dataclass(frozen=True)
class Mover:
    kind: str
    enters: int  # the frame it appears at its side
    lane: int
    direction: int  # +1 left to right, -1 right to left
    speed: float  # pixels per frame at this size
    colours: tuple[np.ndarray, ...]  # (body, legs or wheels, skin or windows)
    phase: float  # where its walking or pedalling cycle starts

    def x(self, t: int, width: int, length: float) -> float:
        """Its centre at frame t: from just outside one side to just outside the other."""
        travelled = self.speed * (t - self.enters)
        return -length + travelled if self.direction > 0 else width + length - travelled


def mover(seed: int, number: int, height: int, width: int) -> Mover:
    """Mover `number` of a seed, from (seed, number) alone."""
    rng = np.random.default_rng([seed, number])
    kinds = list(KINDS)
    kind = kinds[int(rng.choice(len(kinds), p=[KINDS[k][2] for k in kinds]))]
    lane = int(rng.choice([i for i, (_, _, uses) in enumerate(LANES) if kind in uses]))
    base_speed = KINDS[kind][0] * width * LANES[lane][1]
    colours = (rng.uniform(30, 230, 3), rng.uniform(20, 120, 3), np.array(SKIN[int(rng.integers(len(SKIN)))], float))
    if kind == "car":
        colours = (rng.uniform(40, 220, 3), np.full(3, 25.0), np.array([150, 185, 205], float))
    return Mover(kind, number * GAP + int(rng.integers(GAP)), lane, 1 if rng.random() < 0.5 else -1,
                 base_speed * rng.uniform(0.75, 1.3), tuple(c.astype(np.float32) for c in colours),
                 float(rng.uniform(0, 2 * np.pi)))


def length_of(kind: str, tall: float) -> float:
    """Half its extent along the street, in pixels, for one `tall` pixels high."""
    return {"person": 0.3, "cyclist": 0.6, "car": 1.3}[kind] * tall


# ---------------------------------------------------------------- drawing: anti-aliased shapes on a float canvas
def blend(canvas: np.ndarray, alpha: np.ndarray, top: int, left: int, colour: np.ndarray) -> None:
    """Composite `colour` with coverage `alpha` (a patch whose corner is at top, left) onto the canvas."""
    rows, cols = canvas.shape[:2]
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + alpha.shape[0], rows), min(left + alpha.shape[1], cols)
    if t0 >= t1 or l0 >= l1:
        return
    a = alpha[t0 - top:t1 - top, l0 - left:l1 - left, None]
    canvas[t0:t1, l0:l1] = canvas[t0:t1, l0:l1] * (1 - a) + colour * a


def segment(canvas: np.ndarray, a: tuple[float, float], b: tuple[float, float], width: float,
            colour: np.ndarray) -> None:
    """A stroke from a to b ((x, y) points), `width` pixels wide, with round ends."""
    (ax, ay), (bx, by) = a, b
    pad = width / 2 + 1
    left, top = math.floor(min(ax, bx) - pad), math.floor(min(ay, by) - pad)
    cols, rows = math.ceil(max(ax, bx) + pad) - left + 1, math.ceil(max(ay, by) + pad) - top + 1
    y = np.arange(top, top + rows, dtype=np.float32)[:, None]
    x = np.arange(left, left + cols, dtype=np.float32)[None, :]
    dx, dy = bx - ax, by - ay
    along = np.clip(((x - ax) * dx + (y - ay) * dy) / max(dx * dx + dy * dy, 1e-6), 0, 1)
    distance = np.hypot(x - ax - along * dx, y - ay - along * dy)
    blend(canvas, np.clip(width / 2 - distance + 0.5, 0, 1), top, left, colour)


def box(canvas: np.ndarray, x0: float, y0: float, x1: float, y1: float, colour: np.ndarray) -> None:
    """A filled rectangle with anti-aliased edges."""
    left, top = math.floor(x0), math.floor(y0)
    y = np.arange(top, math.ceil(y1) + 1, dtype=np.float32)[:, None] + 0.5
    x = np.arange(left, math.ceil(x1) + 1, dtype=np.float32)[None, :] + 0.5
    alpha = np.clip(np.minimum(x - x0, x1 - x) + 0.5, 0, 1) * np.clip(np.minimum(y - y0, y1 - y) + 0.5, 0, 1)
    blend(canvas, alpha, top, left, colour)


def dot(canvas: np.ndarray, cx: float, cy: float, radius: float, colour: np.ndarray) -> None:
    left, top = math.floor(cx - radius - 1), math.floor(cy - radius - 1)
    size = math.ceil(2 * radius + 3)
    blend(canvas, disc(cx, cy, radius, size, size, top, left), top, left, colour)


def ring(canvas: np.ndarray, cx: float, cy: float, radius: float, width: float, colour: np.ndarray) -> None:
    left, top = math.floor(cx - radius - width), math.floor(cy - radius - width)
    size = math.ceil(2 * (radius + width) + 2)
    y = np.arange(top, top + size, dtype=np.float32)[:, None]
    x = np.arange(left, left + size, dtype=np.float32)[None, :]
    blend(canvas, np.clip(width / 2 - np.abs(np.hypot(x - cx, y - cy) - radius) + 0.5, 0, 1), top, left, colour)


def person(canvas: np.ndarray, m: Mover, x: float, feet: float, tall: float, t: int) -> None:
    """Head, torso, and legs and arms swinging in opposition: one stride cycle per 0.9 body heights walked."""
    body, legs, skin = m.colours
    swing = math.sin(m.phase + 2 * math.pi * m.speed * (t - m.enters) / (0.9 * tall))
    hip, shoulder, limb = feet - 0.47 * tall, feet - 0.8 * tall, max(1.0, 0.11 * tall)
    for side in (1, -1):  # legs from the hip, arms from the shoulder, each pair in opposite phase
        segment(canvas, (x, hip), (x + side * swing * 0.22 * tall, feet - limb / 2), limb, legs)
        segment(canvas, (x, shoulder + limb / 2), (x - side * swing * 0.18 * tall, hip + 0.05 * tall),
                0.8 * limb, skin)
    box(canvas, x - 0.13 * tall, shoulder, x + 0.13 * tall, hip + 0.04 * tall, body)
    dot(canvas, x, feet - 0.9 * tall, 0.1 * tall, skin)


def cyclist(canvas: np.ndarray, m: Mover, x: float, feet: float, tall: float, t: int) -> None:
    """Two wheels, a frame, and a rider whose feet go round with the pedals."""
    body, frame_colour, skin = m.colours
    wheel, gap = 0.17 * tall, 0.33 * tall
    axle = feet - wheel
    back, front = x - m.direction * gap, x + m.direction * gap
    dark = np.full(3, 30.0, np.float32)
    for cx in (back, front):
        ring(canvas, cx, axle, wheel, max(1.0, 0.04 * tall), dark)
    seat, crank = (x - m.direction * 0.1 * tall, feet - 0.5 * tall), (x, axle)
    line = max(1.0, 0.05 * tall)
    segment(canvas, (back, axle), seat, line, frame_colour)
    segment(canvas, seat, crank, line, frame_colour)
    segment(canvas, crank, (front, axle), line, frame_colour)
    turn = m.phase + m.speed * (t - m.enters) / wheel  # the pedals turn with the wheels
    for offset in (0.0, math.pi):
        pedal = (x + 0.09 * tall * math.cos(turn + offset), axle + 0.09 * tall * math.sin(turn + offset))
        segment(canvas, seat, pedal, max(1.0, 0.09 * tall), frame_colour * 0.6)
    shoulder = (x + m.direction * 0.05 * tall, feet - 0.82 * tall)
    segment(canvas, seat, shoulder, max(1.0, 0.2 * tall), body)
    segment(canvas, shoulder, (front - m.direction * 0.05 * tall, feet - 0.62 * tall), max(1.0, 0.07 * tall), skin)
    dot(canvas, shoulder[0] + m.direction * 0.04 * tall, feet - 0.95 * tall, 0.09 * tall, skin)


def car(canvas: np.ndarray, m: Mover, x: float, feet: float, tall: float, t: int) -> None:
    """A body, a cabin with windows, and wheels."""
    body, tyres, glass = m.colours
    half = length_of("car", tall)
    box(canvas, x - half, feet - 0.62 * tall, x + half, feet - 0.18 * tall, body)
    box(canvas, x - 0.55 * half, feet - tall, x + 0.45 * half, feet - 0.6 * tall, body)
    box(canvas, x - 0.48 * half, feet - 0.92 * tall, x - 0.07 * half, feet - 0.64 * tall, glass)
    box(canvas, x, feet - 0.92 * tall, x + 0.38 * half, feet - 0.64 * tall, glass)
    for cx in (x - 0.62 * half, x + 0.62 * half):
        dot(canvas, cx, feet - 0.2 * tall, 0.2 * tall, tyres)


DRAW = {"person": person, "cyclist": cyclist, "car": car}


# ---------------------------------------------------------------- the place
def background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """The still street, HxWx3 float32 in 0..255."""
    y = np.arange(height, dtype=np.float32)[:, None, None] / height
    canvas = np.broadcast_to(np.float32([150, 190, 225]) - 60 * (0.12 - y), (height, width, 3)).copy()
    grain = fractal_noise(rng, height, width, 0.08 * height)[..., None]
    facades = (0.06, 0.52)  # the highest rooftop row, the pavement's edge
    left = 0
    while left < width:  # buildings side by side, each its own colour, height and rows of windows
        wide = int(rng.integers(width // 5, width // 3 + 1))
        top = int(height * rng.uniform(facades[0], 0.2))
        colour = rng.uniform(90, 200, 3).astype(np.float32)
        rows = slice(top, int(facades[1] * height))
        canvas[rows, left:left + wide] = colour * (0.8 + 0.4 * grain[rows, left:left + wide])
        cell = max(4, height // 12)
        for wy in range(top + cell // 2, int(facades[1] * height) - cell, cell):
            for wx in range(left + cell // 3, left + wide - cell // 2, cell):
                lit = np.float32([235, 215, 140]) if rng.random() < 0.25 else np.float32([45, 55, 75])
                canvas[wy:wy + cell // 2, wx:wx + max(1, cell // 2)] = lit
        left += wide
    ground = [(0.52, 0.64, (165, 160, 150), 0.05), (0.64, 0.84, (70, 70, 75), 0.1), (0.84, 1.0, (70, 125, 55), 0.025)]
    for top, bottom, colour, cell in ground:  # pavement, road, lawn: each with a texture of its own
        rows = slice(int(top * height), int(bottom * height))
        texture = fractal_noise(rng, rows.stop - rows.start, width, max(1.0, cell * height))[..., None]
        canvas[rows] = np.float32(colour) * (0.75 + 0.5 * texture)
    mark = int(0.74 * height)
    for x0 in range(0, width, max(4, width // 6)):  # dashed lane marks
        canvas[mark:mark + max(1, height // 64), x0:x0 + max(2, width // 12)] = 215
    pole = int(0.82 * width)
    segment(canvas, (pole, 0.62 * height), (pole, 0.2 * height), max(1.0, 0.02 * height), np.float32([40, 45, 50]))
    dot(canvas, pole - 0.03 * width, 0.2 * height, max(1.0, 0.025 * height), np.float32([250, 240, 190]))
    return canvas


@lru_cache(maxsize=2)
def build(size: tuple[int, int], seed: int) -> np.ndarray:
    height, width = check_size(size)
    return background(height, width, np.random.default_rng([seed, 1]))


def street_at(index: int, size: tuple[int, int] = (256, 256), seed: int = 0, light: bool = False) -> np.ndarray:
    """Frame `index` of the street, uint8 HxWx3, from `index` alone (`light`: the window scene's slow light
    change)."""
    height, width = check_size(size)
    canvas = build((height, width), seed).copy()
    longest = 2 * (width + 2 * length_of("car", height)) / min(k[0] * width * 0.75 * 0.62 for k in KINDS.values())
    first = max(0, (index - math.ceil(longest)) // GAP - 1)
    movers = [mover(seed, n, height, width) for n in range(first, index // GAP + 1)]
    for m in sorted(movers, key=lambda m: (m.lane, m.enters)):  # far lanes first: nearer movers cover them
        feet_row, scale, _ = LANES[m.lane]
        tall = KINDS[m.kind][1] * height * scale
        x = m.x(index, width, length_of(m.kind, tall))
        if m.enters <= index and -length_of(m.kind, tall) * 1.5 < x < width + length_of(m.kind, tall) * 1.5:
            DRAW[m.kind](canvas, m, x, feet_row * height, tall, index)
    if light:
        canvas *= light_gain(index)
    canvas += np.random.default_rng([seed, 2, index]).normal(0, NOISE, canvas.shape).astype(np.float32)
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


def street(frames: int, size: tuple[int, int] = (256, 256), seed: int = 0,
           light: bool = False) -> Iterator[np.ndarray]:
    """Yields `frames` uint8 HxWx3 frames of the street. The background is built here, so a bad size fails at the
    call."""
    build(tuple(check_size(size)), seed)
    return (street_at(t, size, seed, light) for t in range(frames))
