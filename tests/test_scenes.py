"""The train-window scene: deterministic, moving layer by layer at constant speeds, detailed, and encodable; the
two-shot film: the window scene, then a cut to another world that moves on its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import scenes
from infer import metrics
from infer.frames import to_unit
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


FILM = 40  # a two-shot film of 40 frames cuts at frame 30


def two_shot(count: int = FILM, seed: int = 0) -> np.ndarray:
    return np.stack(list(scenes.two_shot(count, WIDE, seed))).astype(np.float32)


def test_the_two_shot_film_cuts_at_three_quarters():
    assert scenes.cut_frame(FILM) == 30 and scenes.cut_frame(1200) == 900


def test_before_the_cut_the_two_shot_film_is_the_window_scene():
    assert np.array_equal(two_shot()[:30], frames(30, WIDE))


def test_the_cut_is_the_one_big_jump():
    steps = np.abs(np.diff(two_shot(), axis=0)).mean(axis=(1, 2, 3))
    cut = scenes.cut_frame(FILM)
    assert steps[cut - 1] > 5 * np.delete(steps, cut - 1).max()


def test_the_second_shot_keeps_moving_past_the_end_of_the_film():
    later = np.stack([scenes.two_shot_at(i, FILM, WIDE) for i in range(30, 3000, 331)]).astype(np.float32)
    steps = np.abs(np.diff(two_shot()[30:], axis=0)).mean(axis=(1, 2, 3))
    assert steps.min() > 1
    assert np.abs(np.diff(later, axis=0)).mean(axis=(1, 2, 3)).min() > 5


def test_the_second_shot_has_a_still_starry_sky():
    """No clouds: what the top shows in the shot is what its future shows."""
    later = np.stack([scenes.two_shot_at(i, FILM, WIDE) for i in (30, 31, 39, 500, 5000)])
    top = later[:, : WIDE[0] // 6]  # above the poles
    assert np.array_equal(top, np.broadcast_to(top[0], top.shape))
    assert top[0].max() > 150 > 60 > np.median(top[0])  # bright stars on a dark sky


def mean_histogram(video: np.ndarray) -> np.ndarray:
    return np.mean([metrics.histogram(to_unit(frame.astype(np.uint8))) for frame in video], axis=0)


def test_the_second_shot_has_other_colours():
    video = two_shot()
    first, second = mean_histogram(video[:30]), mean_histogram(video[30:])
    within = max(metrics.histogram_distance(metrics.histogram(to_unit(f.astype(np.uint8))), first) for f in video[:30])
    assert metrics.histogram_distance(first, second) > 10 * within


def moved_error(before: np.ndarray, after: np.ndarray, shift: int) -> float:
    """Mean error of `after` against `before` moved `shift` pixels left (right when negative)."""
    if shift < 0:
        before, after, shift = after, before, -shift
    return float(np.abs(after[:, : before.shape[1] - shift].astype(float) - before[:, shift:]).mean())


def test_the_second_shot_scrolls_the_other_way_and_slower():
    """At width 100 the ground moves 12 pixels left in 4 frames of the first shot, 9 right in the second."""
    height, width = 64, 100
    bottom = slice(height - height // 10, height)
    for t, shift in ((0, 12), (scenes.cut_frame(FILM), -9)):
        assert shift == 4 * (1 if t == 0 else scenes.DUSK_SPEED) * scenes.SPEEDS["ground"] * width
        before, after = (scenes.two_shot_at(t + dt, FILM, (height, width))[bottom] for dt in (0, 4))
        assert moved_error(before, after, shift) < 2 < 5 < moved_error(before, after, -shift)


def test_two_shot_frames_are_a_function_of_index_and_seed():
    first = two_shot(seed=3)
    scenes.build.cache_clear()
    scenes.build_dusk.cache_clear()
    assert np.array_equal(first, two_shot(seed=3))
    assert np.abs(first - two_shot(seed=4))[30:].mean() > 5
    for index in (0, 29, 30, 39):
        assert np.array_equal(scenes.two_shot_at(index, FILM, WIDE, 3), first[index])


def test_the_command_renders_the_two_shot_film(tmp_path):
    out = tmp_path / "two_shot.mp4"
    result = run_cli("two_shot", "--frames", "8", "--size", "48x80", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert probe(out).frames == 8


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
