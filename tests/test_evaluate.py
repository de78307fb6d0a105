"""Evaluation: honest numbers against the real future and two baselines, and a report that shows them."""

import contextlib
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import square_frame, write_video

from infer import metrics
from infer.errors import UserError
from infer.evaluate import beats, evaluate, longest_runs
from infer.rollout import ORIGIN_STEP_RATE
from infer.video import probe, read_frames
from infer.yardstick import LIMIT


def test_metrics_match_hand_computed_values():
    dark, light = np.full((32, 32, 3), 0.2, np.float32), np.full((32, 32, 3), 0.5, np.float32)
    assert metrics.l1(dark, light) == pytest.approx(0.3)
    assert metrics.psnr(dark, dark + 0.1) == pytest.approx(20.0, abs=1e-4)  # mse 0.01
    assert metrics.psnr(dark, dark) == metrics.PSNR_CAP
    assert metrics.ssim(light, light) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, (48, 40, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1).astype(np.float32)
    assert metrics.ssim(a, b) == pytest.approx(float(tf.image.ssim(a, b, 1.0)), abs=1e-5)
    assert metrics.psnr(a, b) == pytest.approx(float(tf.image.psnr(a, b, 1.0)), abs=1e-4)
    black, white = np.zeros((8, 8, 3)), np.ones((8, 8, 3))
    assert metrics.histogram_distance(metrics.histogram(black), metrics.histogram(white)) == 1.0
    assert metrics.histogram_distance(metrics.histogram(black), metrics.histogram(black)) == 0.0


def test_verdicts_are_exact():
    assert beats([0.1, 0.3, 0.2], [0.2, 0.2, 0.3], "lower") == [1, 3]
    assert beats([30.0, 10.0], [20.0, 20.0], "higher") == [1]
    assert longest_runs([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10"
    assert longest_runs([]) == "none"


@pytest.fixture(scope="module")
def report(square_model, square_video, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    return evaluate(square_model, square_video, long=60, out=out), out


def test_a_briefly_trained_model_beats_persistence_at_step_1_on_learnable_motion(report):
    numbers, _ = report
    assert numbers["start_frame"] == 136  # the first held-out test frame of 160
    assert numbers["alive"]["reference"]["spans"] == {"statistics": [0, 112], "training": [0, 112]}  # its splits
    assert numbers["steps_compared"] == (159 - 136) // 2
    assert 1 in numbers["model_beats"]["persistence"]["l1"]
    assert 1 in numbers["model_beats"]["mean_frame"]["l1"]
    model, persistence = numbers["metrics"]["model"]["l1"][0], numbers["metrics"]["persistence"]["l1"][0]
    assert model < persistence
    assert numbers["short_horizon"]["l1_ratio_step1"] < 1
    assert any("beats persistence" in line for line in numbers["summary"])
    alive = numbers["alive"]
    assert numbers["long_steps"] == 60 and alive["steps"] == 60
    assert all(len(series) == 60 for series in [*alive["ratios"].values(), *alive["per_step"].values()])
    assert numbers["summary"][0].startswith(alive["summary"])
    # The horizon is the step before the first whose ratios leave a band, recomputed from the series it reports.
    ref, ratios = alive["reference"], alive["ratios"]
    outside = [k + 1 for k in range(60)
               if not ref["motion_band"][0] <= ratios["motion"][k] <= ref["motion_band"][1]
               or not ref["sharpness_band"][0] <= ratios["sharpness"][k] <= ref["sharpness_band"][1]
               or ratios["colour"][k] > LIMIT or ratios["realism"][k] > LIMIT]
    assert alive["ends_at_step"] == (outside[0] if outside else None)
    assert alive["alive_horizon"] == (outside[0] - 1 if outside else 60)
    assert alive["alive_fraction"] == pytest.approx(1 - len(outside) / 60, abs=1e-4)


def test_the_report_names_every_image_and_each_exists(report):
    numbers, out = report
    page = (out / "index.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert set(images) == {"l1.png", "psnr.png", "ssim.png", "motion.png", "sharpness.png", "realism.png", "travel.png",
                           "filmstrip.png", "long.png"}
    assert all((out / name).is_file() and (out / name).stat().st_size > 1000 for name in images)
    assert "http" not in page  # readable offline
    assert page.index(numbers["alive"]["summary"]) < page.index("<video") < page.index("<img")  # verdict first
    assert 'src="rollout.mp4"' in page and probe(out / "rollout.mp4").frames == numbers["long_steps"]
    assert probe(out / "rollout.mp4").width == 2 * probe(out / "rollout.mp4").height  # real | model
    assert json.loads((out / "eval.json").read_text())["summary"] == numbers["summary"]


def test_the_filmstrip_shows_the_real_frames_in_their_own_colours(report, square_video):
    from PIL import Image

    numbers, out = report
    strip = np.asarray(Image.open(out / "filmstrip.png").convert("RGB"))
    ((_, real),) = read_frames(square_video, (64, 64), wanted={numbers["start_frame"] + numbers["stride"]})
    np.testing.assert_array_equal(strip[18:18 + 64, 4:4 + 64], real)  # below the labels, inside the gap


def test_a_start_inside_training_warns_and_a_too_short_video_is_an_error(square_model, square_video, tmp_path,
                                                                        capsys):
    evaluate(square_model, square_video, start="1.0", steps=3, long=3, out=tmp_path / "a")
    assert "inside the training split" in capsys.readouterr().err
    short = write_video(tmp_path / "short.mp4", (square_frame(i) for i in range(2)))
    with pytest.raises(UserError, match="not one step of 2 frames is left"):
        evaluate(square_model, short, out=tmp_path / "b")


def test_another_video_starts_at_the_models_own_test_fraction(square_model, square_video, tmp_path, capsys):
    longer = write_video(tmp_path / "longer.mp4", (square_frame(i) for i in range(200)))
    report = evaluate(square_model, longer, steps=2, long=2, out=tmp_path / "e")
    assert report["start_frame"] == 170  # the last 15% of 200 frames
    assert capsys.readouterr().err.splitlines()[0] == (
        f"warning: video {longer} is not the training film {square_video} (another sha256): starting at its last 15% "
        "(the model's test fraction), which may not be held out")


def test_another_film_as_long_as_the_training_film_is_not_taken_for_it(square_model, tmp_path, capsys):
    """Same length (160 frames), another film: its spans are its own, not the training film's splits."""
    other = write_video(tmp_path / "other.mp4", (square_frame(i, speed=3) for i in range(160)))
    report = evaluate(square_model, other, start="1.0", steps=2, long=2, out=tmp_path / "e")
    assert report["start_frame"] == 24
    assert report["alive"]["reference"]["spans"] == {"statistics": [0, 160], "training": [0, 24]}
    assert "inside the training split" not in capsys.readouterr().err  # its frames were never trained on
    report = evaluate(square_model, other, steps=2, long=2, out=tmp_path / "e")
    assert report["alive"]["reference"]["spans"] == {"statistics": [0, 160], "training": [0, 136]}
    assert "is not the training film" in capsys.readouterr().err


def run_eval(capsys, monkeypatch, *args) -> tuple[int, list[str], list[str]]:
    """epilogue-eval on the command line: exit code, stdout lines, stderr lines."""
    from infer.evaluate import main

    monkeypatch.setattr("sys.argv", ["epilogue-eval", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out.splitlines(), captured.err.splitlines()


def test_start_is_a_frame_number_or_seconds_and_the_command_ends_with_the_report(square_model, square_video,
                                                                                 tmp_path, capsys, monkeypatch):
    out = tmp_path / "e"
    for start, frame in (("130", 130), ("5.5s", 132), ("5.5", 132), ("test", 136)):
        code, lines, _ = run_eval(capsys, monkeypatch, square_model, square_video, "--start", start, "--steps", "2",
                                  "--long", "2", "--out", out)
        assert code == 0 and json.loads((out / "eval.json").read_text())["start_frame"] == frame
    assert lines[-3:] == [f"report: {out / 'index.html'}", f"numbers: {out / 'eval.json'}",
                          f"next: open {out / 'index.html'} in a browser"]
    code, _, errors = run_eval(capsys, monkeypatch, square_model, square_video, "--start", "soon", "--out", out)
    assert code == 2
    assert errors[-1] == "error: --start 'soon' is not test, a frame number or seconds (e.g. 300 or 12.5s)"


def test_motion_is_measured_once_per_step_and_shared(square_model, square_video, tmp_path, monkeypatch):
    calls = []
    motion = metrics.motion

    def counted(previous, current):
        calls.append(1)
        return motion(previous, current)

    monkeypatch.setattr(metrics, "motion", counted)
    report = evaluate(square_model, square_video, steps=3, long=12, out=tmp_path / "e")
    assert len(calls) == (160 - 2) + 12  # the real film's steps (stride 2), then each rollout step once
    assert report["health"]["mean_abs_change"] == report["alive"]["per_step"]["motion"]


def files_held_open(folder: Path) -> list[str]:
    """What this process still has open under `folder` (Linux: /proc/self/fd)."""
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # an fd closed while we look
            if str(folder) in os.readlink(fd):
                held.append(os.readlink(fd))
    return held


@pytest.mark.parametrize("stop", [RuntimeError, KeyboardInterrupt])
def test_an_evaluation_stopped_midway_leaves_no_video_and_no_open_file(square_model, square_video, tmp_path,
                                                                      monkeypatch, stop):
    from infer.runner import Stepper

    step, calls = Stepper.step, []

    def failing(self):
        calls.append(1)
        if len(calls) == 30:  # past the encoder's lookahead: the file has begun
            raise stop("stopped at step 30")
        step(self)

    monkeypatch.setattr(Stepper, "step", failing)
    out = tmp_path / "eval"
    with pytest.raises(stop, match="stopped at step 30"):
        evaluate(square_model, square_video, steps=3, long=40, out=out)
    assert list(out.iterdir()) == [] and files_held_open(out) == []


def test_ctrl_c_in_an_evaluation_says_nothing_was_written(square_model, square_video, tmp_path, capsys,
                                                          monkeypatch):
    from infer.runner import Stepper

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Stepper, "step", interrupted)
    code, _, errors = run_eval(capsys, monkeypatch, square_model, square_video, "--out", tmp_path / "e")
    assert code == 130 and list((tmp_path / "e").iterdir()) == []
    assert errors[-1] == ("interrupted: the report is incomplete (its eval.json, written last, is not there; no file "
                          "is left half-written); run the command again")


CHECK = """<script>
addEventListener('load', async () => {
  const images = [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]);
  const video = document.querySelector('video');
  if (video.readyState < 1) await new Promise(done => { video.onloadedmetadata = done; video.onerror = done; });
  document.body.dataset.result = JSON.stringify({images, duration: video.duration});
});
</script></body>"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium here (make test installs Debian's)")
def test_the_page_works_in_a_real_browser(report, tmp_path):
    """Every image loads and the video's metadata says 60 steps at the origin story's rate; a screenshot stays."""
    numbers, out = report
    (out / "check.html").write_text((out / "index.html").read_text().replace("</body>", CHECK))
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run([*browser, "--virtual-time-budget=10000", "--dump-dom", (out / "check.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    result = json.loads(html.unescape(re.search(r'data-result="([^"]*)"', dom)[1]))
    assert result["images"] and all(loaded for _, loaded in result["images"]), result["images"]
    assert result["duration"] == pytest.approx(numbers["long_steps"] / ORIGIN_STEP_RATE, abs=0.2)
    shot = tmp_path / "report.png"
    subprocess.run([*browser, "--window-size=1000,1600", f"--screenshot={shot}", (out / "index.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000


def test_the_old_spelling_of_the_start_is_one_line_naming_the_new(square_model, square_video, capsys, monkeypatch):
    code, _, errors = run_eval(capsys, monkeypatch, square_model, square_video, "--from", "21")
    assert code == 2 and errors == ["error: epilogue-eval's --from is now --start, read as epilogue-rollout reads it "
                                    "(a frame number, or seconds: --start 21s)"]
