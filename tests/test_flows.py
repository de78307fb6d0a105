"""Flow targets (`--flow-weight`): DIS flow between each stored frame and the one before it in its windows, computed
once beside the frame store, served with each window, and pulling the warp head's flow towards it."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import square_frame

from infer.config import resolve
from infer.errors import UserError
from trainer import data, flows, store
from trainer.plan import plan


def config_for(video, **train):
    return resolve("tiny", None, {"data": {"videos": (str(video),), "jitter": 0.0}, "model": {"head": "warp"},
                                  "train": {"flow_weight": 1.0, "unroll": 1, **train}})


def square_at(index: int) -> np.ndarray:
    """Where the square of `square_frame` is: its white pixels."""
    return square_frame(index)[..., 0] == 255


def test_the_targets_follow_the_square_back_and_are_computed_once(square_video, tmp_path):
    """The square moves 8 pixels right a step (4 a frame, stride 2): at its pixels the flow into each later frame of
    a window reads -8 (sampled 8 pixels to the left); a second open reuses the file, one for another stride does
    not."""
    config = config_for(square_video)
    frames = store.open_store(config, plan(config), "train", tmp_path)
    targets = flows.open_flows(frames, config.data.stride)
    row = frames.rows[5]
    served = targets.gather(tf.constant(row)).numpy()
    assert served.shape == (len(row) - 1, 64, 64, 2)
    indices = plan(config)[0].splits["train"].windows(config.data.stride, config.window)[5]
    # Rows well above and below the square: the background's gradient runs down, so it pins the flow's rows there
    # (0) and leaves its columns free (any sideways flow fits a row of one colour).
    far = np.r_[:12, 52:64]
    for flow, later in zip(served, indices[1:], strict=True):
        assert abs(np.median(flow[..., 0][square_at(later)]) + 8) < 0.5
        assert np.abs(flow[far, :, 1]).max() < 0.1 and abs(np.median(flow[..., 1][square_at(later)])) < 0.1
    path = frames.path.with_name("train-flow.npy")
    written = path.stat().st_mtime_ns
    flows.open_flows(frames, config.data.stride)
    assert path.stat().st_mtime_ns == written
    index = path.with_suffix(".json")
    index.write_text(json.dumps({**json.loads(index.read_text()), "stride": 3}))  # computed for another stride
    flows.open_flows(frames, config.data.stride)
    assert path.stat().st_mtime_ns != written and json.loads(index.read_text())["stride"] == config.data.stride


def test_each_batch_carries_the_flow_into_each_frame_after_the_first(square_video, tmp_path):
    config = config_for(square_video)
    frames = store.open_store(config, plan(config), "train", tmp_path)
    positions, windows, targets = next(iter(data.train_batches(config, frames, 0,
                                                               flows=flows.open_flows(frames, config.data.stride))))
    assert windows.shape[:2] == (1, config.window) and targets.shape == (1, config.window - 1, 64, 64, 2)


@pytest.mark.parametrize(("options", "message"), [
    ({"model": {"head": "mask"}}, "flow_weight weighs the warp head's flow"),
    ({"data": {"jitter": 0.1}}, "flow targets are computed on the frames as stored"),
    ({"train": {"flow_weight": -1.0}}, "flow_weight weighs the warp head's flow")])
def test_a_flow_weight_without_a_warp_head_or_with_jitter_is_refused_in_one_line(options, message):
    base = {"data": {"jitter": 0.0}, "model": {"head": "warp"}, "train": {"flow_weight": 1.0}}
    with pytest.raises(UserError, match=message):
        resolve("tiny", None, {section: {**base[section], **options.get(section, {})} for section in base})


def test_the_loss_pulls_the_flow_towards_its_target(square_video, tmp_path):
    """With the flow target alone weighing (no L1, no GAN to speak of), a few steps move the warp head's flow, which
    starts at 0 everywhere, towards a target of -3 pixels everywhere."""
    from trainer.train import Trainer

    config = config_for(square_video, l1_weight=0.0, flow_weight=100.0, learning_rate=0.01)
    trainer = Trainer(config, tmp_path, tf.distribute.get_strategy(), "float32")
    frames = store.open_store(config, plan(config), "train", tmp_path)
    window = data.to_model_range(frames.gather(tf.constant(frames.rows[:1])))
    target = tf.fill([1, config.window - 1, 64, 64, 2], -3.0)
    before = trainer.with_flow([window[:, 0]])[1]
    for _ in range(10):
        losses = trainer._train_step(window, tf.constant(0), tf.constant(0, tf.int64), target)
    after = trainer.with_flow([window[:, 0]])[1]
    assert float(tf.reduce_max(tf.abs(before))) == 0.0 and "flow" in losses
    assert float(tf.reduce_mean(after)) < -1.0


def test_a_run_with_flow_targets_trains_and_keeps_them_beside_its_frames(square_video, tmp_path, capsys):
    from trainer.train import train

    config = config_for(square_video, steps=10, eval_every=10, checkpoint_every=10)
    run = train(config, tmp_path / "run")
    assert (run / "metrics.json").is_file() and (run / "frames" / "train-flow.npy").is_file()
    assert re.search(r"  flow \d", capsys.readouterr().out)  # the progress line reports the flow loss


def test_above_a_floor_the_flow_target_counts_only_where_it_moves():
    """A flow of 1 pixel everywhere against a target that moves one pixel of four 3 pixels left: everywhere, the
    error is (4 + 1 + 6 x 1) / 8 values; above a floor of 0.5 pixels, only that pixel's (4 + 1) / 2."""
    from trainer.train import flow_error

    wanted = np.zeros((1, 2, 2, 2), np.float32)
    wanted[0, 0, 0] = (-3, 0)
    flow = tf.ones_like(wanted)
    assert float(flow_error(flow, wanted, 0.0)[0]) == 11 / 8
    assert float(flow_error(flow, wanted, 0.5)[0]) == 2.5
    for refused in ({"flow_floor": 0.5}, {"flow_floor": -1.0, "flow_weight": 1.0}):
        with pytest.raises(UserError, match="flow_floor is where the flow target counts"):
            resolve("tiny", None, {"data": {"jitter": 0.0}, "model": {"head": "warp"}, "train": refused})


def test_the_warp_loss_prefers_a_flow_that_follows_and_a_step_reports_it(square_video, tmp_path):
    """A textured frame moved 2 pixels right: warped by -2 everywhere it is the target but for the 2 columns that
    came in at the left edge; left still, it is wrong everywhere the texture changes."""
    from trainer.train import Trainer, warp_error

    newest = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    target = np.roll(newest, 2, axis=2)
    follow = np.zeros((1, 64, 64, 2), np.float32)
    follow[..., 0] = -2
    assert float(warp_error(newest, follow, target)[0]) < 0.15 * float(warp_error(newest, 0 * follow, target)[0])
    config = resolve("tiny", None, {"data": {"videos": (str(square_video),)}, "model": {"head": "warp"},
                                    "train": {"warp_weight": 10.0}})
    trainer = Trainer(config, tmp_path, tf.distribute.get_strategy(), "float32")
    frames = store.open_store(config, plan(config), "train", tmp_path)
    window = data.to_model_range(frames.gather(tf.constant(frames.rows[:1])))
    assert float(trainer._train_step(window, tf.constant(0), tf.constant(0, tf.int64))["warp"]) > 0
    with pytest.raises(UserError, match="warp_weight weighs the warp head's flow"):
        resolve("tiny", None, {"model": {"head": "mask"}, "train": {"warp_weight": 1.0}})


def test_the_command_line_carries_the_flow_options_into_the_config(square_video):
    options = ["--preset", "tiny", "--head", "warp", "--jitter", "0", "--flow-weight", "10", "--flow-floor", "0.5",
               "--warp-weight", "5", "--dry-run"]
    result = subprocess.run([sys.executable, "-m", "trainer.cli", str(square_video), *options], capture_output=True,
                            text=True, timeout=300)
    train = json.loads(result.stdout)["config"]["train"]
    assert (train["flow_weight"], train["flow_floor"], train["warp_weight"]) == (10.0, 0.5, 5.0), result.stderr
