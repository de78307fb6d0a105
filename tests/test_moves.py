"""bench.moves splits a model's one-step error into moving and still pixels and reads the warp head's flow beside
the way things moved: its windows must be exactly the model's, and its true shift exact on a known motion."""

import json

import numpy as np

from bench.moves import held_out_windows, split, summary
from infer.config import resolve
from trainer import model


def store_val(run_dir, frames: np.ndarray, indices: list[int]) -> None:
    (run_dir / "frames").mkdir(parents=True)
    np.save(run_dir / "frames" / "val.npy", frames)
    (run_dir / "frames" / "val.json").write_text(json.dumps({"videos": [{"frames": indices}]}))


def level(frames: np.ndarray) -> np.ndarray:
    """The frame index each frame's grey level carries."""
    return np.rint((frames[:, 0, 0, 0] + 1) * 127.5).astype(int) // 4


def test_each_window_is_the_context_stride_apart_then_the_next_step_and_never_spans_a_gap(tmp_path):
    config = resolve("tiny", None, {"model": {"context": 2}, "data": {"stride": 3}})
    indices = [*range(10, 20), *range(25, 35)]  # two held-out stretches of one video
    store_val(tmp_path, np.stack([np.full((64, 64, 3), 4 * i, np.uint8) for i in indices]), indices)
    contexts, truth = held_out_windows(tmp_path, config, count=100)
    levels = np.stack([level(frames) for frames in (*contexts, truth)], axis=1)
    expected = [[n - 3, n, n + 3] for n in [*range(13, 17), *range(28, 32)]]
    assert levels.tolist() == expected
    contexts, truth = held_out_windows(tmp_path, config, count=3)
    assert level(truth).tolist() == [16, 31, 34]  # the first, middle and last


def test_the_true_shift_is_exact_and_an_untrained_warp_head_has_not_moved_yet(tmp_path):
    """A dark striped figure crossing a bright textured wall 2 pixels a frame: every window's shift reads +2, and
    the flow's convolution starts at zero, so its median at the moving pixels is exactly 0."""
    config = resolve("tiny", None, {"model": {"head": "warp", "context": 2}, "data": {"stride": 1}})
    wall = 200 + (np.arange(64)[None, :, None] * 7 % 40).astype(np.uint8) + np.zeros((64, 1, 3), np.uint8)
    figure = (15 * np.arange(10))[None, :, None]  # every column its own grey: no aperture problem
    frames = np.stack([wall] * 20)
    for t in range(20):
        frames[t, 20:40, 4 + 2 * t:14 + 2 * t] = figure
    store_val(tmp_path, frames, list(range(20)))
    report = split(model.generator(config), *held_out_windows(tmp_path, config, count=8), "warp")
    assert report["windows"] == 8 and 0 < report["moving_share"] < 0.1
    assert report["shift_and_flow"] == [(2, 0.0)] * 8
    assert report["still"]["persistence_l1"] == 0.0  # the wall never changes
    assert np.isclose(sum(report["moving"]["weights"].values()), 1.0)
    assert "right +0.00 (8 windows)" in "\n".join(summary(report))
