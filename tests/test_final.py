"""The continuation starts where the film ends: --end cuts the film, --final trains on all of it, training says
when the end is black or still, and rollout and evaluation start from the end a model was trained to."""

import json

import numpy as np
import onnx
import pytest

from infer.config import FINAL_SPLITS, resolve
from infer.errors import UserError
from infer.evaluate import evaluate
from infer.rollout import continue_film
from tests.conftest import barcode_frame, read_barcode, square_frame, write_video
from trainer import ending
from trainer.plan import plan


def planned(video, **data):
    return plan(resolve("tiny", None, {"data": {"videos": (str(video),), **data}}))[0]


def test_end_cuts_the_film_at_a_frame_or_seconds_and_no_window_passes_it(barcode_video):
    by_frame = planned(barcode_video, end="100")
    by_time = planned(barcode_video, end="4s")  # 24 fps: frame 96
    assert (by_frame.end, by_time.end) == (100, 96)
    for cut in (by_frame, by_time):
        windows = [w for split in cut.splits.values() for w in split.windows(2, 2)]
        assert max(i for w in windows for i in w) == cut.end  # the test split ends on the film's end exactly
        assert cut.splits["test"].stop == cut.end + 1


def test_final_trains_on_every_frame_up_to_the_end(barcode_video):
    final = planned(barcode_video, end="100", splits=FINAL_SPLITS)
    train = final.splits["train"]
    assert (train.start, train.stop) == (0, 101) and train.windows(2, 2)[-1] == (98, 100)
    assert not final.splits["val"].starts and not final.splits["test"].starts


@pytest.mark.parametrize(("data", "message"), [
    ({"end": "200"}, "--end 200 is frame 200, but video"),
    ({"end": "soon"}, "end 'soon' is not a frame number or seconds"),
    ({"splits": (0.8, 0.0, 0.2)}, "no validation split to choose the checkpoint"),
])
def test_bad_ends_and_splits_are_one_line(barcode_video, data, message):
    with pytest.raises(UserError, match=message):
        planned(barcode_video, **data)


def moving_then(tail: np.ndarray, moving: int, held: int, fps: float, path) -> None:
    """A square moving for `moving` frames, then `tail` held for `held` frames."""
    write_video(path, [*(square_frame(i) for i in range(moving)), *([tail] * held)], fps=fps)


def test_a_film_that_ends_in_black_is_said_with_the_end_to_give(tmp_path, barcode_video):
    video = tmp_path / "fades.mp4"
    moving_then(np.zeros((64, 64, 3), np.uint8), 400, 30, 10.0, video)  # 40 s moving, then 3 s black
    found = ending.ending(video, 429, 10.0)  # the tail is 30 s back from the end: the reader seeks to it
    assert (found.first, found.black, found.worth_saying()) == (400, True, True)
    line = found.line(str(video))
    assert "ends in 3.0 s of black, frames 400-429" in line and line.endswith("add --end 39.90s (frame 399)")
    # the same film cut at the suggested end no longer ends in black
    assert not ending.ending(video, 399, 10.0).worth_saying()
    assert not ending.ending(barcode_video, 119, 24.0).worth_saying()  # a counter changes every frame


def test_a_film_that_holds_a_still_picture_is_said_and_a_short_hold_is_not(tmp_path):
    card = np.full((64, 64, 3), 180, np.uint8)
    card[20:40, 10:50] = 30
    long_hold, short_hold = tmp_path / "card.mp4", tmp_path / "pause.mp4"
    moving_then(card, 100, 50, 10.0, long_hold)
    moving_then(card, 100, 20, 10.0, short_hold)
    found = ending.ending(long_hold, 149, 10.0)
    assert (found.first, found.black) == (100, False) and "5.0 s of one still picture" in found.line("x")
    assert not ending.ending(short_hold, 119, 10.0).worth_saying()  # 2 s: a pause, not an ending


def test_training_says_a_black_ending_in_one_line_before_it_starts(tmp_path, capsys, monkeypatch):
    from trainer.cli import main

    video = tmp_path / "fades.mp4"
    moving_then(np.zeros((64, 64, 3), np.uint8), 100, 20, 10.0, video)
    monkeypatch.setattr("sys.argv", ["epilogue-train", str(video), "--preset", "tiny", "--dry-run"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "ends in" in line]
    assert said == [f"warning: video {video} ends in 2.0 s of black, frames 100-119: a continuation from its end "
                    "would continue that; to continue the scene before it, add --end 9.90s (frame 99)"]


@pytest.fixture(scope="module")
def final_run(tmp_path_factory):
    """A tiny --final model on a barcode film cut at frame 100 (of 120), exported."""
    from export.onnx_export import export
    from trainer.train import train

    root = tmp_path_factory.mktemp("final")
    video = write_video(root / "count.mp4", (barcode_frame(i) for i in range(120)))
    config = resolve("tiny", None, {"data": {"videos": (str(video),), "end": "100", "splits": FINAL_SPLITS},
                                    "train": {"steps": 20, "eval_every": 10, "checkpoint_every": 10}})
    run = train(config, root / "run")
    return video, run, export(run)


def test_a_final_run_holds_nothing_out_and_exports_its_last_checkpoint(final_run, capsys):
    video, run, model = final_run
    assert not (run / "best").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["held_out"] is False and metrics["val"] == metrics["test"] == {} and metrics["step"] == 20
    record = json.loads((run / "config.json").read_text())
    assert record["config"]["data"]["splits"] == [1.0, 0.0, 0.0] and record["videos"][0]["end"] == 100
    assert record["videos"][0]["splits"]["train"] == [0, 101]
    assert sorted(p.name for p in (run / "previews").iterdir()) == [f"step_{s:06d}.gif" for s in (0, 10, 20)]
    metadata = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert json.loads(metadata["held_out"]) is False and json.loads(metadata["film_end"]) == 100
    assert json.loads(metadata["checkpoint"]) == "latest" and json.loads(metadata["training_step"]) == 20


def first_frame_of(path) -> int:
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    return read_barcode(frame)


def test_the_rollout_starts_from_the_end_the_model_was_trained_to(final_run, tmp_path):
    video, _, model = final_run
    record = continue_film(model, video, tmp_path / "c.mp4", steps=2, with_source=0.05, size="64x64")
    assert record["start"]["frame"] == 100 and "trained" in record["start"]["chosen"]
    assert first_frame_of(tmp_path / "c.mp4") == 100  # the source shown first ends at the film's end, not after
    asked = continue_film(model, video, tmp_path / "d.mp4", steps=2, end="2s")
    assert asked["start"]["frame"] == 48 and asked["start"]["chosen"] == "the film's end (--end 2s)"
    with pytest.raises(UserError, match="give one of them"):
        continue_film(model, video, tmp_path / "e.mp4", steps=2, end="2s", start="10")


def test_evaluation_of_a_final_model_on_its_film_judges_only_what_needs_no_held_out_truth(final_run, tmp_path):
    video, _, model = final_run
    report = evaluate(model, video, long=12, out=tmp_path / "eval")
    assert report["held_out"] is False and report["start_frame"] == 100 and report["steps_compared"] == 0
    assert "metrics" not in report and report["alive"]["steps"] == 12
    assert "was trained on (a --final model)" in report["summary"][1]
    assert not (tmp_path / "eval" / "filmstrip.png").exists() and (tmp_path / "eval" / "long.png").exists()


def test_a_held_out_model_cut_by_end_is_compared_only_up_to_the_end(tmp_path):
    from export.onnx_export import export
    from trainer.train import train

    video = write_video(tmp_path / "count.mp4", (barcode_frame(i) for i in range(120)))
    config = resolve("tiny", None, {"data": {"videos": (str(video),), "end": "100"},
                                    "train": {"steps": 10, "eval_every": 10, "checkpoint_every": 10}})
    model = export(train(config, tmp_path / "run"))
    report = evaluate(model, video, long=4, out=tmp_path / "eval")
    test_start = round(101 * 0.85)  # the splits share out frames 0-100
    assert (report["start_frame"], report["film_end"]) == (test_start, 100)
    assert report["steps_compared"] == (100 - test_start) // 2 and report["held_out"] is True
    assert continue_film(model, video, tmp_path / "c.mp4", steps=1)["start"]["frame"] == 100
