"""The street scene: a still place that only sensor noise changes, things that enter, cross and leave, people
whose legs swing as they walk, nearer movers over farther ones, and any frame a function of its index."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import street
from infer.video import probe

ROOT = Path(__file__).resolve().parent.parent
SQUARE, WIDE = (64, 64), (48, 80)


@pytest.mark.parametrize("size", [SQUARE, WIDE])
def test_frames_are_uint8_of_the_asked_size_and_a_function_of_index_and_seed(size):
    sequence = list(street.street(130, size, seed=5))
    assert all(f.shape == (*size, 3) and f.dtype == np.uint8 for f in sequence)
    for index in (0, 57, 129):  # alone, long after, equals the frame in the sequence: a long render is the future
        np.testing.assert_array_equal(street.street_at(index, size, seed=5), sequence[index])
    assert not np.array_equal(street.street_at(57, size, seed=6), sequence[57])


def test_the_place_stays_still_under_its_sensor_noise_while_the_road_changes():
    film = np.stack([street.street_at(t, (128, 128), 0) for t in range(0, 1200, 40)]).astype(np.float32)
    facades = np.abs(film[1:, :48] - film[0, :48]).mean(axis=(1, 2, 3))  # rooftops and windows: no mover so high
    assert facades.max() < 3  # only the noise: |N(0, 2) - N(0, 2)| is 2.3 on average
    assert facades.min() > 1.5  # ...which is there: a camera's sensor, not a still picture
    road = np.abs(film[1:, 80:108] - film[0, 80:108]).mean(axis=(1, 2, 3))
    assert np.median(road) > 4 * facades.max()


def test_every_mover_enters_at_one_side_crosses_and_leaves_at_the_other():
    height, width = 128, 128
    for number in range(40):
        m = street.mover(0, number, height, width)
        half = street.length_of(m.kind, street.KINDS[m.kind][1] * height * street.LANES[m.lane][1])
        start, later = m.x(m.enters, width, half), m.x(m.enters + int(3 * width / m.speed), width, half)
        assert (start < 0 < width < later) if m.direction > 0 else (later < 0 < width < start)
    kinds = {street.mover(0, n, height, width).kind for n in range(40)}
    directions = {street.mover(0, n, height, width).direction for n in range(40)}
    assert kinds == set(street.KINDS) and directions == {-1, 1}


def test_a_walkers_legs_swing_apart_and_together_once_a_stride():
    m = street.Mover("person", 0, 3, 1, 1.0, (np.full(3, 200.0), np.full(3, 255.0), np.full(3, 100.0)), 0.0)
    tall = 40.0
    spans = []
    for t in range(40):
        canvas = np.zeros((64, 64, 3), np.float32)
        street.person(canvas, m, 32.0, 60.0, tall, t)
        feet = np.flatnonzero(canvas[57, :, 0] > 128)  # the legs' colour, just above the feet
        spans.append(feet.max() - feet.min() if feet.size else 0)
    assert max(spans) >= 2 * min(spans) + 6  # apart, then together: a stride
    stride_frames = 0.9 * tall / m.speed  # one full cycle; the legs are apart twice in it
    assert sum(1 for a, b in zip(spans, spans[1:], strict=False) if a < b) >= 2 * len(spans) / stride_frames


def test_nearer_movers_are_drawn_over_farther_ones(monkeypatch):
    drawn = []
    monkeypatch.setattr(street, "DRAW", {kind: lambda canvas, m, *rest: drawn.append(m.lane) for kind in street.KINDS})
    for t in (400, 800, 1200):
        drawn.clear()
        street.street_at(t, (64, 64), 0)
        assert len(drawn) >= 2 and drawn == sorted(drawn)


def test_the_command_renders_the_street(tmp_path):
    out = tmp_path / "street.mp4"
    result = subprocess.run([sys.executable, "-m", "bench.scenes", "street", "--frames", "12", "--size", "64x96",
                             "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert (info.frames, info.width, info.height) == (12, 96, 64)
