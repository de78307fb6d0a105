"""The train-window scene: deterministic, moving layer by layer at constant speeds, detailed, and encodable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import scenes
from infer.video import probe

ROOT = Path(__file__).resolve().parent.parent
SQUARE, WIDE = (64, 64), (48, 80)


def frames(count: int, size: tuple[int, int], seed: int = 0, light: bool = False) -> np.ndarray:
    return np.stack(list(scenes.window(count, size, seed, light))).astype(np.float32)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.scenes", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("size", [SQUARE, WIDE])
def test_frames_are_uint8_of_the_asked_size(size):
    frame = scenes.frame_at(0, size)
    assert frame.shape == (*size, 3) and frame.dtype == np.uint8


def test_the_same_seed_gives_the_same_frames_and_another_seed_differs():
    first = frames(12, WIDE, seed=3)
    scenes.build.cache_clear()  # rebuild the textures from the seed, not from the cache
    again = frames(12, WIDE, seed=3)
    other = frames(12, WIDE, seed=4)
    assert np.array_equal(first, again)
    assert np.abs(first - other).mean() > 5


def test_a_frame_rendered_alone_equals_the_same_frame_in_the_sequence():
    sequence = list(scenes.window(1001, SQUARE, seed=2))
    for index in (0, 1, 13, 599, 1000):
        assert np.array_equal(scenes.frame_at(index, SQUARE, seed=2), sequence[index])


def test_the_sky_at_the_top_never_changes():
    video = frames(200, WIDE)
    top = video[:, : WIDE[0] // 16]
    assert np.array_equal(top, np.broadcast_to(top[0], top.shape))


def test_the_ground_shifts_by_exactly_its_speed():
    """At width 100 the ground moves 3 whole pixels a frame: the bottom rows are the last frame's, moved left."""
    height, width = 64, 100
    speed = scenes.SPEEDS["ground"] * width
    assert speed == 3
    bottom = slice(height - height // 10, height)
    for t in (0, 7, 500):
        now, later = scenes.frame_at(t, (height, width))[bottom], scenes.frame_at(t + 1, (height, width))[bottom]
        assert np.array_equal(later[:, : width - 3], now[:, 3:])


def measured_shift(before: np.ndarray, after: np.ndarray, statistic) -> int:
    """The whole leftward shift that best maps `before` onto `after`, by `statistic` over columns' mean errors."""
    width = before.shape[1]
    errors = [statistic(np.abs(after[:, : width - s].astype(float) - before[:, s:]).mean(axis=(0, 2)))
              for s in range(width // 2)]
    return int(np.argmin(errors))


# Rows (fractions of the height) where a layer shows most; the median ignores the faster layers in front where the
# layer fills its band, the mean finds sparse things (clouds, poles) on a still sky.
BANDS = {"clouds": (0.12, 0.2, np.mean), "far_hills": (0.46, 0.6, np.median), "near_hills": (0.72, 0.8, np.median),
         "poles": (0.3, 0.45, np.mean), "ground": (0.92, 1.0, np.median)}


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("layer", list(BANDS))
def test_each_layer_moves_at_its_own_constant_speed(layer, seed):
    height, width = 96, 160
    first, last, statistic = BANDS[layer]
    rows = slice(int(first * height), int(last * height))
    speed = scenes.SPEEDS[layer] * width
    gap = max(1, round(12 / speed))  # frames for about 12 pixels of motion
    for t in (0, 1000):
        before, after = scenes.frame_at(t, (height, width), seed), scenes.frame_at(t + gap, (height, width), seed)
        assert abs(measured_shift(before[rows], after[rows], statistic) - speed * gap) <= 1


def test_layers_get_faster_from_back_to_front():
    speeds = [scenes.SPEEDS[name] for name in ("clouds", "far_hills", "near_hills", "poles", "ground")]
    assert speeds == sorted(speeds)
    assert scenes.SPEEDS["clouds"] * 6 < 0.01 and 0.1 <= scenes.SPEEDS["ground"] * 6 <= 0.2  # at a stride of 6


@pytest.mark.parametrize("size", [SQUARE, WIDE])
def test_the_ground_changes_more_per_frame_than_the_hills(size):
    video = frames(120, size)
    change = np.abs(np.diff(video, axis=0)).mean(axis=(0, 2, 3))  # per row
    height = size[0]
    ground, hills = change[-height // 10:].mean(), change[int(0.45 * height):int(0.6 * height)].mean()
    assert ground > 1.2 * hills > 0


@pytest.mark.parametrize("size", [SQUARE, WIDE])
def test_motion_is_steady_over_time(size):
    """Six frames apart the frames differ about equally at every t: the motion has no lulls or bursts to learn."""
    video = frames(606, size)
    change = np.abs(video[6:] - video[:-6]).mean(axis=(1, 2, 3))
    assert change.min() > 5
    assert change.std() / change.mean() < 0.2


def laplacian_variance(grey: np.ndarray) -> float:
    lap = grey[1:-1, 2:] + grey[1:-1, :-2] + grey[2:, 1:-1] + grey[:-2, 1:-1] - 4 * grey[1:-1, 1:-1]
    return float(lap.var())


@pytest.mark.parametrize("size", [SQUARE, WIDE, (256, 256)])
def test_frames_have_sharp_detail(size):
    grey = scenes.frame_at(50, size).astype(np.float32).mean(axis=-1)
    blurred = sum(np.roll(grey, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
    assert laplacian_variance(grey) > 5 * laplacian_variance(blurred)


def test_without_light_change_the_brightness_stays_level():
    means = frames(601, SQUARE)[::6].mean(axis=(1, 2, 3))
    assert means.std() < 2.5


def test_light_change_dims_and_warms_slowly():
    lit, plain = frames(601, SQUARE, light=True)[::6], frames(601, SQUARE)[::6]
    assert np.array_equal(lit[0], plain[0])  # it starts from the unlit look
    ratio = lit.mean(axis=(1, 2, 3)) / plain.mean(axis=(1, 2, 3))
    assert ratio[-1] < 0.8  # a quarter darker at frame 600
    assert np.abs(np.diff(ratio)).max() < 0.01  # but never more than 1% in 6 frames
    warmth = lit[-1, ..., 0].mean() / lit[-1, ..., 2].mean()
    assert warmth > 1.1 * plain[-1, ..., 0].mean() / plain[-1, ..., 2].mean()


def test_the_command_writes_a_video_of_the_asked_length_and_size(tmp_path):
    out = tmp_path / "window.mp4"
    result = run_cli("window", "--frames", "13", "--size", "48x80", "--fps", "12", "--seed", "1", "--light",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"video: {out}" in result.stdout and "next: epilogue-train" in result.stdout
    info = probe(out)
    assert (info.frames, info.height, info.width, info.fps) == (13, 48, 80, 12)
    assert [p.name for p in tmp_path.iterdir()] == ["window.mp4"]  # no partial file left beside it


@pytest.mark.parametrize(("args", "says"), [
    (["window", "--size", "256by256"], "--size"),
    (["window", "--size", "8x8"], "too small"),
    (["window", "--size", "33x48"], "even"),
    (["window", "--frames", "0"], "--frames"),
    (["window", "--frames", "many"], "--frames"),
    (["door"], "unknown scene"),
    (["window", "--out", "/proc/no/such/window.mp4"], "not writable"),
])
def test_user_mistakes_are_one_line_and_exit_2(args, says, tmp_path):
    result = run_cli(*args) if "--out" in args else run_cli(*args, "--out", str(tmp_path / "w.mp4"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
