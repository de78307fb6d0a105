"""The standalone runner: one file that runs where no Python package is installed."""

import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

from infer.video import probe


@pytest.mark.heavy  # a PyInstaller build: minutes
def test_the_binary_shows_help_and_rolls_out_on_cpu(square_model, square_video, tmp_path):
    build = subprocess.run(["make", "binary"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    binary = ROOT / "dist" / "epilogue-rollout"
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no virtualenv, no PYTHONPATH
    shown = subprocess.run([binary, "--help"], capture_output=True, text=True, env=bare, cwd=tmp_path)
    assert shown.returncode == 0 and "--from" in shown.stdout
    out = Path(tmp_path) / "c.mp4"
    run = subprocess.run([binary, square_model, "--from", square_video, "--steps", "5", "--out", out],
                         capture_output=True, text=True, env=bare, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "provider: CPUExecutionProvider" in run.stdout and probe(out).frames == 5
