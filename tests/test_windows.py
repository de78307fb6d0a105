"""The window plan and the tf.data pipeline: frames exactly `stride` apart, in time, splits disjoint."""

import json

import numpy as np
import pytest
from conftest import read_barcode, write_video
from typer.testing import CliRunner

from infer.config import resolve
from infer.frames import to_uint8
from trainer import data, store
from trainer.cli import app
from trainer.plan import plan


def config_for(video, context=1, unroll=0, **data_options):
    return resolve("tiny", None, {"data": {"videos": (str(video),), **data_options},
                                  "model": {"context": context}, "train": {"unroll": unroll}})


def barcodes(window) -> tuple[int, ...]:
    """The frame indices a window's barcode frames carry (uint8, or the model's [-1, 1])."""
    return tuple(read_barcode(to_uint8(np.asarray(frame))) for frame in window)


def stored(config, plans, split, folder, memory=None):
    """The split's windows as the store serves them, as frame indices."""
    return [barcodes(w) for w in store.open_store(config, plans, split, folder, memory=memory).windows()
            .as_numpy_iterator()]


@pytest.mark.parametrize(("stride", "hop", "context", "unroll", "memory"),
                         [(1, 1, 1, 0, None), (5, 1, 1, 0, 0), (5, 5, 1, 0, None), (7, 3, 1, 0, 0),
                          (15, 15, 1, 0, None), (3, 2, 3, 2, 0), (4, 1, 2, 1, None)])
def test_window_frames_are_exactly_stride_apart_in_time_order_and_splits_share_no_frame(barcode_video, tmp_path,
                                                                                        stride, hop, context, unroll,
                                                                                        memory):
    config = config_for(barcode_video, context, unroll, stride=stride, hop=hop)
    plans = plan(config)
    seen: dict[str, set[int]] = {}
    for split in ("train", "val", "test"):
        windows = stored(config, plans, split, tmp_path, memory)  # memory 0: read from disk
        assert windows == plans[0].splits[split].windows(stride, context + unroll + 1)
        assert all(len(w) == context + unroll + 1 for w in windows)
        assert all(b - a == stride for w in windows for a, b in zip(w, w[1:], strict=False))
        assert [w[0] for w in windows] == sorted(w[0] for w in windows)
        assert all(later[0] - earlier[0] == hop for earlier, later in zip(windows, windows[1:], strict=False))
        seen[split] = {f for w in windows for f in w}
    assert not seen["train"] & seen["val"] and not seen["val"] & seen["test"] and not seen["train"] & seen["test"]


def test_default_fractions_split_120_frames_70_15_15(barcode_video):
    (p,) = plan(config_for(barcode_video, stride=5, hop=1))
    assert {k: (s.start, s.stop) for k, s in p.splits.items()} == {
        "train": (0, 84), "val": (84, 102), "test": (102, 120)}
    assert p.splits["test"].windows(5, 2)[-1] == (114, 119)  # ends on the true last frame


def test_each_video_gives_its_own_windows(barcode_video, tmp_path):
    from conftest import barcode_frame

    other = write_video(tmp_path / "other.mp4", (barcode_frame(1000 + i, 64, 96) for i in range(60)))
    config = resolve("tiny", None, {"data": {"videos": (str(barcode_video), str(other)), "stride": 4}})
    windows = stored(config, plan(config), "train", tmp_path / "frames")
    first, second = [w for w in windows if w[0] < 1000], [w for w in windows if w[0] >= 1000]
    assert len(first) == 84 - 4 and len(second) == 42 - 4
    assert second[0] == (1000, 1004) and second[-1] == (1037, 1041)


def test_augmentation_moves_every_frame_alike_and_resumes_exactly(barcode_video, tmp_path):
    config = config_for(barcode_video, 2, 1, stride=2)
    frame = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    a = data.augment(config, np.int64(7), np.stack([frame] * 4)).numpy()
    assert a.shape == (4, 64, 64, 3) and all(np.array_equal(a[0], a[j]) for j in range(1, 4))
    again = data.augment(config, np.int64(7), np.stack([frame] * 4)).numpy()
    other = data.augment(config, np.int64(8), np.stack([frame] * 4)).numpy()
    np.testing.assert_array_equal(a, again)
    assert not np.array_equal(a, other)
    assert float(a.min()) >= -1.0 and float(a.max()) <= 1.0

    frames = store.open_store(config, plan(config), "train", tmp_path)
    from_start = [data.augment_batch(config, *b).numpy() for b in data.train_batches(config, frames, 0).take(5)]
    resumed = [data.augment_batch(config, *b).numpy() for b in data.train_batches(config, frames, 3).take(2)]
    np.testing.assert_array_equal(from_start[3], resumed[0])
    np.testing.assert_array_equal(from_start[4], resumed[1])
    positions, windows = next(iter(data.train_batches(config, frames, 3)))  # what the device augments, per window
    np.testing.assert_array_equal(positions.numpy(), [3])
    np.testing.assert_array_equal(data.augment(config, positions[0], windows[0]).numpy(), resumed[0][0])


@pytest.mark.parametrize(("shuffle_buffer", "batch_size", "start"), [(256, 1, 107), (16, 2, 61)])
def test_a_stream_resumed_at_any_step_is_the_uninterrupted_streams_tail_window_for_window(barcode_video, tmp_path,
                                                                                        shuffle_buffer, batch_size,
                                                                                        start):
    config = resolve("tiny", None, {"data": {"videos": (str(barcode_video),), "stride": 2, "jitter": 0.0,
                                             "shuffle_buffer": shuffle_buffer}, "train": {"batch_size": batch_size}})
    plans = plan(config)
    frames = store.open_store(config, plans, "train", tmp_path)
    count = frames.count  # 82: the resume lands in the second or third epoch
    steps = 3 * count // batch_size
    whole = [[barcodes(w) for w in b] for _, b in data.train_batches(config, frames, 0).take(steps)
             .as_numpy_iterator()]
    resumed = [[barcodes(w) for w in b] for _, b in data.train_batches(config, frames, start)
               .take(steps - start).as_numpy_iterator()]
    assert resumed == whole[start:]
    served = [w for b in whole for w in b]
    for epoch in range(3):  # every epoch serves every window once, in an order of its own
        assert sorted(served[epoch * count:(epoch + 1) * count]) == sorted(plans[0].splits["train"].windows(2, 2))
    assert served[:count] != served[count:2 * count]


def test_a_resume_late_in_a_long_run_reads_about_an_epoch_not_every_window_since_step_0(barcode_video, tmp_path):
    config = resolve("tiny", None, {"data": {"videos": (str(barcode_video),), "shuffle_buffer": 16, "jitter": 0.0}})
    frames = store.open_store(config, plan(config), "train", tmp_path, memory=0)  # from disk: reads can be counted
    read = []
    reader = frames._read
    frames._read = lambda rows: read.append(rows.copy()) or reader(rows)
    _, first = next(iter(data.train_batches(config, frames, 1000 * 82 + 45)))  # epoch 1000, the 6th block of 8
    assert frames.count == 82 and first.shape == (1, 2, 64, 64, 3)
    assert len(read) < 82  # windows since step 0 are skipped as rows of indices; only served ones are read


def test_bundled_clip_plan(bundled):
    (p,) = plan(config_for(bundled, stride=6, hop=1))
    summary = p.summary()
    assert summary["frames"] == 720 and summary["size"] == [1280, 720] and summary["fps"] == 24
    assert {k: v["windows"] for k, v in summary["splits"].items()} == {"train": 498, "val": 102, "test": 102}
    assert summary["splits"]["test"]["last_window"] == (713, 719)


def run_cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_dry_run_prints_the_plan_as_json(barcode_video):
    result = run_cli(barcode_video, "--stride", "10", "--hop", "5", "--preset", "tiny", "--dry-run")
    assert result.exit_code == 0, result.output
    plan_json = json.loads(result.stdout[result.stdout.index("{"):])
    video = plan_json["videos"][0]
    assert video["frames"] == 120 and video["size"] == [96, 64]
    assert video["splits"]["train"] == {"frames": [0, 83], "windows": 15, "first_window": [0, 10],
                                        "last_window": [70, 80]}
    assert "fewer than 20" in result.stderr


def test_jitter_option_reaches_the_config(barcode_video):
    result = run_cli(barcode_video, "--stride", "10", "--preset", "tiny", "--jitter", "0", "--dry-run")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[result.stdout.index("{"):])["config"]["data"]["jitter"] == 0.0


@pytest.mark.parametrize(("args", "message"), [
    (["--stride", "200"], "has 120 frames; windows of 2 frames 200 apart need at least 201"),
    (["--splits", "0.5,0.2,0.2"], "summing to 1"),
    (["--size", "100x100"], "must be multiples of 64"),
    (["--stride", "60"], "the val split has no windows"),
    (["--stride", "8", "--context", "2", "--unroll", "1"], "the val split has no windows"),
    (["--context", "0"], "context must be >= 1"),
    (["--jitter", "-0.1"], "jitter must be >= 0"),
    (["--upsample", "bicubic"], "upsample must be one of transpose, resize"),
    (["--head", "both"], "head must be one of direct, residual, mask, warp (got 'both')"),
    (["--head", "mask", "--keep-init", "1"], "keep_init is a share of pixels kept: give a number between 0 and 1"),
    (["--size", "big"], "is not HEIGHTxWIDTH"),
    (["--preset", "pix2pix"], "preset pix2pix is now called full: --preset full"),
])
def test_bad_plans_are_one_line_and_exit_2(barcode_video, capsys, monkeypatch, args, message):
    from trainer.cli import main

    monkeypatch.setattr("sys.argv", ["epilogue-train", str(barcode_video), "--preset", "tiny", *args, "--dry-run"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and message in error


def test_missing_video_is_one_line_without_traceback(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "trainer.cli", str(tmp_path / "nope.mp4"), "--dry-run"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"error: video {tmp_path / 'nope.mp4'} does not exist" in result.stderr


@pytest.mark.parametrize(("toml", "message"), [
    ("[data]\nhop = 1.5", "data.hop must be an integer (got 1.5)"),
    ("[data]\nmirror = 1", "data.mirror must be true or false (got 1)"),
    ("[train]\nsteps = true", "train.steps must be an integer (got True)"),
    ("[data]\nfit = 3", "data.fit must be a string (got 3)"),
    ('[data]\nsplits = [0.7, "a", 0.15]', "data.splits must be a list of numbers (got [0.7, 'a', 0.15])"),
    ('[data]\nvideos = "a.mp4"', "data.videos must be a list of strings (got 'a.mp4')"),
])
def test_a_config_value_of_the_wrong_type_is_one_line_naming_the_field_the_type_and_the_value(tmp_path, toml,
                                                                                               message):
    from infer.errors import UserError

    path = tmp_path / "bad.toml"
    path.write_text(toml + "\n")
    with pytest.raises(UserError) as error:
        resolve("tiny", path, {})
    assert str(error.value) == f"{path}: {message}"


def test_a_number_option_takes_an_integer_and_a_wrong_type_is_one_line_from_the_command_line(barcode_video,
                                                                                             tmp_path, capsys,
                                                                                             monkeypatch):
    from trainer.cli import main

    (tmp_path / "whole.toml").write_text("[train]\nlearning_rate = 1\n")
    rate = resolve("tiny", tmp_path / "whole.toml", {}).train.learning_rate
    assert rate == 1.0 and type(rate) is float
    (tmp_path / "bad.toml").write_text("[data]\nhop = 1.5\n")
    monkeypatch.setattr("sys.argv", ["epilogue-train", str(barcode_video), "--preset", "tiny", "--config",
                                     str(tmp_path / "bad.toml"), "--dry-run"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {tmp_path / 'bad.toml'}: data.hop must be an integer "
                                                    "(got 1.5)"]


def test_a_record_made_when_windows_were_pairs_reads_as_today():
    from infer.config import Config, as_today

    assert Config.from_dict({"train": {"eval_pairs": 8}}).train.eval_windows == 8
    assert as_today({"train": {"eval_pairs": 8}})["train"]["eval_windows"] == 8
