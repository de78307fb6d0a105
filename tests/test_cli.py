"""A quiet and quick command line: mistakes are one line, and nothing waits for TensorFlow to load."""

import subprocess
import sys

import pytest
from conftest import PROGRAMS

from trainer.quiet import CHATTER


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("module", "args"), [
    ("trainer.cli", ["--help"]), ("trainer.cli", ["missing.mp4"]), ("trainer.cli", ["BARCODE", "--dry-run"]),
    ("trainer.cli", ["BARCODE", "--context", "0"]), ("export.cli", ["--help"]), ("export.cli", ["missing_run"]),
])
def test_help_dry_runs_and_mistakes_answer_before_tensorflow_loads(barcode_video, module, args):
    args = [str(barcode_video) if a == "BARCODE" else a for a in args]
    result = run(str(PROGRAMS / "tensorflow_loaded.py"), module, *args)
    assert result.stdout.strip().splitlines()[-1] == "tensorflow loaded: False", result.stderr


def test_a_mistake_is_exactly_one_line(tmp_path):
    missing = tmp_path / "nope.mp4"
    train = run("-m", "trainer.cli", str(missing))
    assert train.returncode == 2 and train.stderr.splitlines() == [f"error: video {missing} does not exist"]
    export = run("-m", "export.cli", str(tmp_path))
    assert export.returncode == 2
    assert export.stderr.splitlines() == [f"error: {tmp_path} is not a run directory (no config.json); train one "
                                          "with epilogue-train"]


def test_a_run_starts_with_its_config_and_tensorflow_keeps_its_chatter_to_itself(square_video, tmp_path):
    result = run("-m", "trainer.cli", str(square_video), "--preset", "tiny", "--steps", "2", "--run-dir",
                 str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("epilogue-train, effective config:")
    assert not [line for line in result.stderr.splitlines() if CHATTER.search(line) or "absl" in line]
    export = run("-m", "export.cli", str(tmp_path / "run"))
    assert export.returncode == 0 and not export.stderr.strip(), export.stderr
    verbose = run("-m", "export.cli", str(tmp_path / "run"), "--verbose")
    assert verbose.returncode == 0 and CHATTER.search(verbose.stderr)  # still there for whoever asks
