"""The frame store: each frame once, reused when it holds exactly the frames wanted, rebuilt with a reason when not,
never trusted after a killed pass, served alike from memory and from disk."""

import json
import os
import shutil

import numpy as np
import pytest
from conftest import barcode_frame, read_barcode, write_video

from infer.config import resolve
from trainer import store
from trainer.plan import plan


def config_for(video, **data_options):
    return resolve("tiny", None, {"data": {"videos": (str(video),), **data_options},
                                  "model": {"context": 2}, "train": {"unroll": 3}})  # windows of 6, as the presets


def indices(frames_store) -> list[tuple[int, ...]]:
    return [tuple(read_barcode(frame) for frame in window) for window in frames_store.windows().as_numpy_iterator()]


def test_each_frame_is_stored_once_at_model_size_however_many_windows_share_it(barcode_video, tmp_path):
    config = config_for(barcode_video, stride=2, hop=1)
    (p,) = plan(config)
    frames = store.open_store(config, [p], "train", tmp_path)
    used = p.frames_used("train")
    assert frames.count == len(p.splits["train"].starts) == 74 and len(used) == 84  # 6-frame windows share frames
    assert frames.bytes == len(used) * 64 * 64 * 3
    assert (tmp_path / "train.npy").stat().st_size - frames.bytes <= 128  # plus the .npy header
    stored = np.load(tmp_path / "train.npy")
    assert [read_barcode(f) for f in stored] == sorted(used)
    assert indices(frames) == p.splits["train"].windows(2, 6)


def test_from_disk_serves_the_windows_memory_does(barcode_video, tmp_path):
    config = config_for(barcode_video, stride=3, hop=2)
    plans = plan(config)
    in_memory = store.open_store(config, plans, "val", tmp_path)
    from_disk = store.open_store(config, plans, "val", tmp_path, memory=0)
    assert in_memory.in_memory and not from_disk.in_memory
    for a, b in zip(in_memory.windows().as_numpy_iterator(), from_disk.windows().as_numpy_iterator(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_store_is_reused_as_it_is_and_rebuilt_with_one_line_when_the_frame_size_changes(barcode_video, tmp_path,
                                                                                          capsys):
    config = config_for(barcode_video, stride=2)
    store.open_store(config, plan(config), "train", tmp_path)
    made = (tmp_path / "train.npy").stat().st_mtime_ns
    store.open_store(config, plan(config), "train", tmp_path)
    assert (tmp_path / "train.npy").stat().st_mtime_ns == made and "frame store" not in capsys.readouterr().out

    bigger = config_for(barcode_video, stride=2, height=128)
    frames = store.open_store(bigger, plan(bigger), "train", tmp_path)
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("frame store")]
    assert said == [f"frame store {tmp_path / 'train.npy'}: it holds frames at 64x64 (squash), the model wants "
                    "64x128 (squash); storing its frames again"]
    assert frames.frame_shape == (128, 64, 3)


def test_a_changed_video_is_stored_again(tmp_path, capsys):
    video = write_video(tmp_path / "film.mp4", (barcode_frame(i) for i in range(100)))
    config = config_for(video, stride=2)
    store.open_store(config, plan(config), "train", tmp_path / "frames")
    write_video(video, (barcode_frame(200 + i) for i in range(100)))
    os.utime(video, ns=(1, 1))  # another stamp: the fingerprint is computed again
    frames = store.open_store(config, plan(config), "train", tmp_path / "frames")
    assert f"video {video} changed (sha256); storing its frames again" in capsys.readouterr().out
    assert indices(frames)[0][0] == 200


@pytest.mark.parametrize("killed", ["while decoding", "before its index"])
def test_a_killed_first_pass_leaves_nothing_a_later_run_trusts(barcode_video, tmp_path, capsys, killed):
    config = config_for(barcode_video, stride=2)
    good = tmp_path / "good"
    store.open_store(config, plan(config), "train", good)
    folder = tmp_path / "frames"
    folder.mkdir()
    if killed == "while decoding":  # the temporary file a dead process left, half written
        partial = folder / ".train.partial-99999.npy"
        partial.write_bytes((good / "train.npy").read_bytes()[:5000])
    else:  # renamed into place, the index not yet written
        shutil.copy(good / "train.npy", folder / "train.npy")
        with open(folder / "train.npy", "r+b") as file:
            file.seek(-100, os.SEEK_END)
            file.write(bytes(100))  # whatever the pass was writing: it can't be trusted
    frames = store.open_store(config, plan(config), "train", folder)
    assert indices(frames) == plan(config)[0].splits["train"].windows(2, 6)
    assert sorted(f.name for f in folder.iterdir()) == ["train.json", "train.npy"]
    said = capsys.readouterr().out
    assert ("its last pass did not finish" in said) == (killed == "before its index")
    assert json.loads((folder / "train.json").read_text())["bytes"] == (folder / "train.npy").stat().st_size


def test_a_run_begun_with_the_window_cache_has_it_removed(tmp_path, capsys):
    old = tmp_path / "cache"
    old.mkdir()
    (old / "train.data-00000-of-00001").write_bytes(bytes(3_000_000))
    store.remove_window_cache(tmp_path)
    assert not old.exists()
    assert capsys.readouterr().out.strip() == (f"removed {old} (3 MB of windows): frames are now stored once, in "
                                               f"{tmp_path / 'frames'}")
