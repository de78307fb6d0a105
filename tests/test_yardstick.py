"""The yardstick on constructed rollouts: the real future stays alive, and each way of dying is named.

The film is the procedural window scene (a future that is known and never ends), 64x64 at stride 2:
frames 0-239 are the training span, the rest are held out, and the rollouts start at frame 240.
"""

import numpy as np
import pytest

from bench.scenes import window
from infer import metrics
from infer.frames import to_model, to_unit
from infer.health import Monitor
from infer.yardstick import TRAVEL, Judge, ReferenceBuilder, describe, rolling_median, short_horizon

STRIDE, FRAMES, TRAIN, START = 2, 360, (0, 240), 240
STEPS = (FRAMES - 1 - START) // STRIDE


@pytest.fixture(scope="module")
def film() -> list[np.ndarray]:
    return list(window(FRAMES, (64, 64), seed=3))


@pytest.fixture(scope="module")
def reference(film):
    builder = ReferenceBuilder(STRIDE, TRAIN, TRAIN, FRAMES)
    for index, frame in enumerate(film):
        builder.add(index, frame)
    return builder.finish()


@pytest.fixture(scope="module")
def future(film) -> list[np.ndarray]:
    return [film[START + k * STRIDE] for k in range(1, STEPS + 1)]


def judge(reference, start: np.ndarray, frames: list[np.ndarray]) -> dict:
    watcher = Judge(reference, start)
    for frame in frames:
        watcher.observe(frame)
    return watcher.verdict()


def as_uint8(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [np.clip(np.rint(f), 0, 255).astype(np.uint8) for f in frames]


def blur(frame: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(-4, 5)
    kernel = np.exp(-x**2 / (2 * sigma**2))
    kernel /= kernel.sum()
    out = frame.astype(np.float32)
    for axis in (0, 1):
        out = np.apply_along_axis(lambda v: np.convolve(np.pad(v, 4, mode="edge"), kernel, "valid"), axis, out)
    return out


def test_the_real_future_itself_is_alive_to_the_end(reference, film, future):
    verdict = judge(reference, film[START], future)
    assert verdict["alive_horizon"] == STEPS and verdict["ends_because"] is None
    assert verdict["alive_fraction"] == 1.0
    assert verdict["summary"] == f"stays film-like for all {STEPS} steps"
    assert 0.8 < np.median(verdict["ratios"]["motion"]) < 1.25  # the scene moves at constant speeds
    travel = [t for t in verdict["ratios"]["travel"] if t is not None]
    assert len(travel) == STEPS - (2 * TRAVEL - 2) and 0.7 < np.median(travel) < 1.4
    assert min(travel) > verdict["reference"]["travel_floor"]


@pytest.mark.parametrize("period", [2, 8])
def test_a_picture_that_changes_in_place_but_goes_nowhere_flickers_in_place_though_it_moves_like_the_film(
        reference, film, period):
    """Real frames played back and forth: every step changes as much as a real step, a ghost flickering every
    other step (period 2) or a slow pulse (4 steps on, 4 back), and nothing goes anywhere."""
    swing = [film[START + STRIDE * min(k % period, period - k % period)] for k in range(1, STEPS + 1)]
    verdict = judge(reference, film[START], swing)
    assert verdict["ends_because"] == "flickers in place"
    assert verdict["ends_at_step"] == 2 * TRAVEL - 1  # the first step with a travel to judge (the start is one)
    assert 0.5 < np.median(verdict["ratios"]["motion"]) < 2  # per-step motion reads film-like
    assert max(t for t in verdict["ratios"]["travel"] if t is not None) < 0.01


def test_a_frame_translated_one_pixel_a_step_travels(reference, film):
    sliding = [np.roll(film[START], k, axis=1) for k in range(1, STEPS + 1)]
    verdict = judge(reference, film[START], sliding)
    assert "flickers in place" not in (verdict["ends_because"], *verdict["failing_at_end"])
    travel = [t for t in verdict["ratios"]["travel"] if t is not None]
    assert min(travel) > verdict["reference"]["travel_floor"]


def test_a_film_whose_held_out_part_is_sharper_and_stiller_is_still_alive_in_its_real_future(film, future):
    """The bundled clip ends on a title card: sharper and stiller than the film it trained on."""
    builder = ReferenceBuilder(STRIDE, TRAIN, TRAIN, FRAMES)
    for index, frame in enumerate(film):
        builder.add(index, as_uint8([blur(frame)])[0] if index < TRAIN[1] else frame)
    verdict = judge(builder.finish(), film[START], future)
    assert verdict["ends_because"] is None
    assert min(verdict["ratios"]["sharpness"]) > 2  # sharper than the training span's median...
    assert verdict["reference"]["sharpness_band"][1] >= max(verdict["ratios"]["sharpness"])  # ...as the video is


def test_a_repeated_frame_freezes_at_once(reference, film):
    verdict = judge(reference, film[START], [film[START]] * STEPS)
    assert verdict["ends_because"] == "freezes" and 1 <= verdict["ends_at_step"] <= 10
    assert verdict["alive_horizon"] == verdict["ends_at_step"] - 1


def test_a_blurred_copy_blurs(reference, film, future):
    verdict = judge(reference, film[START], as_uint8([blur(f) for f in future]))
    assert verdict["ends_because"] == "blurs" and verdict["ends_at_step"] == 1


def test_added_noise_turns_to_noise(reference, film, future):
    rng = np.random.default_rng(0)
    verdict = judge(reference, film[START], as_uint8([f + rng.normal(0, 25, f.shape) for f in future]))
    assert verdict["ends_because"] == "turns to noise" and verdict["ends_at_step"] == 1


def test_a_colour_shift_drifts_in_colour(reference, film, future):
    """One grey level more red and less blue every step: no jump in motion, a slow drift in colour."""
    shifted = as_uint8([f + np.array([1, 0, -1]) * k for k, f in enumerate(future, start=1)])
    verdict = judge(reference, film[START], shifted)
    assert verdict["ends_because"] == "drifts in colour" and verdict["failing_at_end"] == ["drifts in colour"]
    assert 1 < verdict["ends_at_step"] < STEPS


def test_shuffled_patches_of_real_frames_leave_the_films_world(reference, film, future):
    """Sharp, moving, the film's colours, but no longer the scene: only realism can see it."""
    order = np.random.default_rng(1).permutation(64)

    def shuffle(frame: np.ndarray) -> np.ndarray:
        patches = frame.reshape(8, 8, 8, 8, 3).swapaxes(1, 2).reshape(64, 8, 8, 3)[order]
        return patches.reshape(8, 8, 8, 8, 3).swapaxes(1, 2).reshape(64, 64, 3)

    verdict = judge(reference, shuffle(film[START]), [shuffle(f) for f in future])
    assert verdict["ends_because"] == "leaves the film's world" and verdict["ends_at_step"] == 1
    assert verdict["failing_at_end"] == ["leaves the film's world"]  # motion, sharpness and colour look right


def test_the_verdict_reads_as_a_sentence_and_the_rolling_median_spans_whole_windows():
    assert describe(137, 600, "blurs") == "stays film-like for 137 of 600 steps, then blurs"
    assert rolling_median([1, 5, 3, 0, 0], window=3) == [3.0, 3.0, 3.0, 3.0, 0.0]


def test_one_odd_step_does_not_end_a_film(reference, film, future):
    """The jump from the real start frame into the model's picture shows as one odd first step."""
    verdict = judge(reference, film[START], as_uint8([blur(future[0])]) + future[1:])
    assert verdict["ends_because"] is None and verdict["alive_horizon"] == STEPS


def test_short_horizon_ratios_are_exact():
    short = short_horizon([0.2, 0.3], [0.1, 0.3], [0.8, 0.9], [0.9, 0.9])
    assert short["l1_ratio"] == [2.0, 1.0] and short["l1_ratio_step1"] == 2.0 and short["l1_ratio_mean"] == 1.5
    assert short["dssim_ratio"] == [2.0, 1.0] and not short["beats_persistence"]
    assert short_horizon([0.05], [0.1], [0.9], [0.8])["beats_persistence"]


def test_the_monitor_and_the_yardstick_measure_motion_the_same_way(film):
    monitor = Monitor()
    monitor.begin(film[0])
    monitor.observe(1, to_model(film[2]))
    assert monitor.change[0] == metrics.motion(to_unit(film[0]), to_unit(film[2]))


def test_the_bundled_clips_real_test_split_is_alive_to_its_end(bundled):
    """Its test split is the title card: stiller and sharper than the film before it, and still the film."""
    from infer.video import read_frames

    frames = dict(read_frames(bundled, (64, 64)))
    builder = ReferenceBuilder(6, (0, 504), (0, 504), 720)  # the quality preset's stride and split
    for index in range(720):
        builder.add(index, frames[index])
    verdict = judge(builder.finish(), frames[612], [frames[612 + 6 * k] for k in range(1, 18)])
    assert verdict["summary"] == "stays film-like for all 17 steps"
