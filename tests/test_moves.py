"""bench.moves splits a model's one-step error into moving and still pixels and reads the warp head's flow beside
the way things moved: its windows must be exactly the model's, its true shift exact on a known motion, and a flow
fitted to the answer must follow a motion that a flow can follow."""

import numpy as np
from conftest import read_barcode

from bench.moves import split, stored_windows, summary
from infer.config import resolve
from infer.frames import model_from_levels, to_uint8
from trainer import model


def test_each_window_is_the_context_stride_apart_then_the_next_step(barcode_video, tmp_path):
    config = resolve("tiny", None, {"data": {"videos": (str(barcode_video),), "stride": 3}, "model": {"context": 2}})
    contexts, truth = stored_windows(tmp_path, config, count=100)
    indices = np.array([[read_barcode(to_uint8(frames[i])) for frames in (*contexts, truth)]
                        for i in range(len(truth))])
    assert len(indices) > 1 and np.all(np.diff(indices, axis=1) == 3)
    assert np.all(np.diff(indices[:, 1]) > 0)  # in time order, each window once
    first, middle, last = stored_windows(tmp_path, config, count=3)[1]
    assert [read_barcode(to_uint8(f)) for f in (first, last)] == [indices[0, -1], indices[-1, -1]]
    assert read_barcode(to_uint8(middle)) in indices[:, -1]  # the first, one between, the last
    trained_contexts, trained_truth = stored_windows(tmp_path, config, count=100, split="train")
    trained = [read_barcode(to_uint8(frames[i])) for frames in (*trained_contexts, trained_truth)
               for i in range(len(trained_truth))]
    assert trained and max(trained) < indices.min()  # the training split comes first in time


def test_the_true_shift_is_exact_an_untrained_warp_head_has_not_moved_yet_and_a_fitted_flow_follows():
    """A dark striped figure crossing a bright textured wall 2 pixels a frame: every window's shift reads +2; the
    flow's convolution starts at zero, so its median at the carried pixels is exactly 0; and a flow fitted to the
    truth finds the motion (-2: the newest frame is sampled 2 pixels to the left) and explains nearly all of it; so
    does DIS flow, exactly on frames enlarged 4x, short at their own size (its 4-pixel patches see the figure's edge
    and the wall behind it)."""
    config = resolve("tiny", None, {"model": {"head": "warp", "context": 2}, "data": {"stride": 1}})
    wall = 200 + (np.arange(64)[None, :, None] * 7 % 40).astype(np.uint8) + np.zeros((64, 1, 3), np.uint8)
    figure = (15 * np.arange(10))[None, :, None]  # every column its own grey: no aperture problem
    frames = np.stack([wall] * 20)
    for t in range(20):
        frames[t, 20:40, 4 + 2 * t:14 + 2 * t] = figure
    newest = np.linspace(1, 18, 8).round().astype(int)  # 8 windows spread over the film
    levels = model_from_levels(frames.astype(np.float32))
    report = split(model.generator(config), [levels[newest - 1], levels[newest]], levels[newest + 1], "warp",
                   fit_flow=True)
    assert report["windows"] == 8 and 0 < report["moving_share"] < 0.1
    # The figure's 10x20 pixels all change (neighbouring columns differ by 30 levels) and its shift carries them;
    # the 2 columns of wall it uncovers change too, and no shift of the newest frame holds them.
    assert report["carried_share"] == 200 / 240
    assert report["shift_and_flow"] == [(2, 0.0)] * 8
    assert report["still"]["persistence_l1"] == 0.0  # the wall never changes
    assert np.isclose(sum(report["moving"]["weights"].values()), 1.0)
    assert "right +0.00 (shift +2.0, 8 windows)" in "\n".join(summary(report))
    fits = report["fitted"]
    assert fits["persistence_l1"] == report["moving"]["persistence_l1"]
    assert fits["shift_l1"] < 0.5 * fits["persistence_l1"]  # only the wall uncovered behind the figure is left
    for name in ("from_still", "from_shift"):
        assert [shift for shift, _ in fits[name]["shift_and_flow"]] == [2] * 8
        assert all(abs(dx + 2) < 0.25 for _, dx in fits[name]["shift_and_flow"]), fits[name]
        assert fits[name]["moving_l1"] < 0.2 * fits["persistence_l1"]
    assert all(abs(dx + 2) < 0.05 for _, dx in fits["dis_4x"]["shift_and_flow"]), fits["dis_4x"]
    assert all(-2.5 < dx < -1 for _, dx in fits["dis_1x"]["shift_and_flow"]), fits["dis_1x"]
    assert fits["dis_4x"]["moving_l1"] < 0.5 * fits["persistence_l1"]
    assert "fitted from still: " in "\n".join(summary(report)) and "DIS at 4x size: " in "\n".join(summary(report))
