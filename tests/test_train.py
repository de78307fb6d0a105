"""Training: it learns, resumes where it stopped, never goes black in inference, and runs mirrored."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import PROGRAMS, ctrl_c_when

from infer.config import resolve
from trainer import model
from trainer.train import train

# Where a checkpoint keeps the generator's weights: Keras 3 models are reached through their optimizer.
GENERATOR = "gen_opt/_trainable_variables/"


def tiny(video, **train_options):
    return resolve("tiny", None, {"data": {"videos": (str(video),)}, "train": train_options})


def test_validation_l1_goes_down_and_the_run_directory_has_everything(square_run):
    evals = [json.loads(line) for line in (square_run / "evals.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [0, 300, 600]
    assert evals[-1]["l1"] < 0.7 * evals[0]["l1"]
    metrics = json.loads((square_run / "metrics.json").read_text())
    assert metrics["step"] == 600 and set(metrics["test"]) == {"l1", "psnr", "ssim"}
    for name in ("config.json", "samples/step_000600.png", "previews/step_000600.gif", "best/best.json",
                 "checkpoints/checkpoint"):
        assert (square_run / name).exists(), name
    assert list((square_run / "logs").glob("events.out.tfevents.*"))
    assert json.loads((square_run / "best" / "best.json").read_text())["step"] > 0  # never the untrained model


def test_a_finished_run_says_so_instead_of_starting_over(square_run, square_video, capsys):
    before = (square_run / "metrics.json").read_text()
    train(tiny(square_video, steps=600, eval_every=300, checkpoint_every=300), square_run)
    assert "already finished at step 600" in capsys.readouterr().out
    assert (square_run / "metrics.json").read_text() == before


def test_another_config_on_an_existing_run_is_a_clear_error(square_run, square_video):
    from infer.errors import UserError

    with pytest.raises(UserError, match=r"made with another config \(changed: train.steps\)"):
        train(tiny(square_video, steps=601, eval_every=300, checkpoint_every=300), square_run)


def test_inference_mode_is_not_black_and_equals_training_mode_without_dropout(square_video):
    from conftest import square_frame

    config = resolve("tiny", None, {"model": {"dropout": 0.0}})
    generator = model.generator(config)
    frame = square_frame(3).astype(np.float32)[None] / 127.5 - 1
    inference = generator([frame], training=False).numpy()
    training = generator([frame], training=True).numpy()
    np.testing.assert_allclose(inference, training, atol=1e-6)
    assert inference.std() > 0.01  # a picture, not a flat (black) frame


def test_full_size_generator_matches_pix2pix():
    assert round(model.generator(resolve("full", None, {})).count_params() / 1e6, 1) == 54.4


def test_layers_of_the_same_shape_start_from_different_weights():
    generator = model.generator(resolve("tiny", None, {}))
    kernels = [layer.kernel.numpy() for layer in generator.layers if layer.name in ("down4_conv", "down5_conv")]
    assert kernels[0].shape == kernels[1].shape and not np.array_equal(*kernels)


def test_deterministic_cpu_runs_repeat_their_losses(square_video, tmp_path):
    def losses(run):
        config = tiny(square_video, steps=6, eval_every=100, checkpoint_every=100, deterministic=True, seed=3)
        train(config, tmp_path / run)
        return (tmp_path / run / "evals.jsonl").read_text().splitlines()[-1]

    assert losses("a") == losses("b")


def test_ctrl_c_checkpoints_and_the_same_command_resumes_and_finishes(square_video, tmp_path):
    command = [sys.executable, "-m", "trainer.cli", str(square_video), "--preset", "tiny", "--steps", "400",
               "--run-dir", str(tmp_path / "run")]
    code, output = ctrl_c_when(command, "train: step")
    assert code == 130, output
    assert "resume: run the same command again" in output
    stopped = int(output.split("stopped at step ")[1].split()[0])
    assert 0 < stopped < 400
    second = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "CI": "1"}, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"resuming at step {stopped} of 400" in second.stdout
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["step"] == 400


def test_mirrored_strategy_on_two_cpu_devices_trains(square_video, tmp_path):
    result = subprocess.run([sys.executable, PROGRAMS / "two_cpus.py", "train", str(square_video),
                             str(tmp_path / "mirrored")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "MirroredStrategy (2 replica(s))" in result.stdout
    assert json.loads((tmp_path / "mirrored" / "metrics.json").read_text())["step"] == 6


def test_divergence_stops_with_a_clear_error_and_no_nan_checkpoint(square_video, tmp_path):
    from infer.errors import UserError

    config = resolve("tiny", None, {"data": {"videos": (str(square_video),)},
                                    "train": {"steps": 20, "learning_rate": 1e30, "lr_decay": False,
                                              "eval_every": 100, "checkpoint_every": 1}})
    with pytest.raises(UserError, match=r"diverged before step (\d+) .*the last good checkpoint is (\S+);") as caught:
        train(config, tmp_path / "run")
    import tensorflow as tf

    stopped, last = re.search(r"before step (\d+) .*checkpoint is (\S+);", str(caught.value)).groups()
    # Every step until the one that diverged was checkpointed (the latest 3 kept), and the line names the last.
    kept = [str(tmp_path / "run" / "checkpoints" / f"ckpt-{step}") for step in range(1, int(stopped))][-3:]
    assert kept and tf.train.get_checkpoint_state(str(tmp_path / "run" / "checkpoints")).all_model_checkpoint_paths \
        == kept and last == kept[-1]
    for prefix in kept:
        weights = [tf.train.load_variable(prefix, name) for name, _ in tf.train.list_variables(prefix)
                   if name.startswith(GENERATOR)]
        assert weights and all(np.isfinite(w).all() for w in weights if np.asarray(w).dtype.kind == "f"), prefix


def test_one_trainer_per_run_directory_and_a_dead_ones_lock_is_taken_over(square_video, tmp_path, capsys):
    from infer.errors import UserError
    from trainer import rundir

    run_dir = tmp_path / "busy"
    command = [sys.executable, "-m", "trainer.cli", str(square_video), "--preset", "tiny", "--steps", "5000",
               "--run-dir", str(run_dir)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "CI": "1"})
    try:
        for line in process.stdout:
            if line.startswith("starting"):
                break
        with pytest.raises(UserError, match=r"is in use by another epilogue-train \(pid \d+ on "):
            train(tiny(square_video, steps=5000), run_dir)
    finally:
        process.kill()
        process.wait()
    with rundir.locked(run_dir):
        pass
    assert f"was left locked by a trainer that is gone (pid {process.pid} on" in capsys.readouterr().err
    with rundir.locked(run_dir):  # released cleanly last time: no warning
        pass
    assert "left locked" not in capsys.readouterr().err


def test_a_global_batch_that_does_not_split_over_the_replicas_is_refused(square_video):
    from infer.errors import UserError

    with pytest.raises(UserError, match="--batch-size 1 is the global batch, split over 2 replicas: give a "
                                        r"multiple of 2 \(e.g. --batch-size 2\)"):
        tiny(square_video).per_replica_batch(2)
    assert tiny(square_video, batch_size=4).per_replica_batch(2) == 2


def test_a_run_begun_before_an_option_existed_resumes_with_that_option_at_its_default(square_video, tmp_path):
    from trainer import rundir
    from trainer.plan import plan

    config = tiny(square_video)
    plans = plan(config)
    record = rundir.open_run(tmp_path / "old", config, plans)
    del record["config"]["train"]["gradient_weight"]  # as written by an epilogue without that option
    (tmp_path / "old" / "config.json").write_text(json.dumps(record))
    assert rundir.check_fits(tmp_path / "old", config, plans) is not None
    from infer.errors import UserError

    with pytest.raises(UserError, match=r"another config \(changed: train.gradient_weight\)"):
        rundir.check_fits(tmp_path / "old", tiny(square_video, gradient_weight=1.0), plans)


@pytest.mark.parametrize(("switches", "head"), [({"residual": False, "mask": False}, "direct"),
                                                ({"residual": True, "mask": False}, "residual"),
                                                ({"residual": False, "mask": True}, "mask")])
def test_a_run_begun_when_the_head_was_two_switches_resumes_with_that_head(square_video, tmp_path, switches, head):
    from trainer import rundir
    from trainer.plan import plan

    config = resolve("tiny", None, {"data": {"videos": (str(square_video),)}, "model": {"head": head}})
    plans = plan(config)
    record = rundir.open_run(tmp_path / "old", config, plans)
    del record["config"]["model"]["head"], record["config"]["model"]["keep_init"]
    record["config"]["model"] |= switches  # as written before `head`
    (tmp_path / "old" / "config.json").write_text(json.dumps(record))
    assert rundir.check_fits(tmp_path / "old", config, plans) is not None
    assert rundir.read_config(tmp_path / "old").model.head == head


@pytest.mark.parametrize("keep_init", [0.5, 0.95])
def test_the_mask_head_starts_by_keeping_the_share_it_is_told(keep_init):
    import numpy as np

    from trainer import model
    from trainer.validation import kept

    generator = model.generator(resolve("tiny", None, {"model": {"head": "mask", "keep_init": keep_init}}))
    frame = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    mask = (kept(generator, [frame]) + 1) / 2  # 1: the newest frame kept
    assert abs(float(mask.mean()) - keep_init) < 0.01 and float(mask.std()) < 0.05  # everywhere alike


@pytest.mark.parametrize(("old", "head"), [("residual = false", "mask"), ("mask = false", "direct"),
                                           ("residual = true", "residual"), ("mask = true", "mask"),
                                           ("residual = true\nmask = true", None),
                                           ('mask = true\nhead = "mask"', None)])
def test_a_config_file_with_the_old_head_switches_means_what_it_meant(tmp_path, old, head):
    from infer.errors import UserError

    (tmp_path / "old.toml").write_text(f"[model]\n{old}\n")
    if head is None:
        with pytest.raises(UserError, match="old.toml: residual and mask are the old spelling of head"):
            resolve("demo", tmp_path / "old.toml", {})
    else:  # on the demo preset, whose head is the mask: a switch turned off ends only its own head
        assert resolve("demo", tmp_path / "old.toml", {}).model.head == head
