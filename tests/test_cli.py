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


LEAN = "import sys\nfor name in {blocked}:\n    sys.modules[name] = None  # as on `pip install 'epilogue[cpu]'`\n" \
       "from {module} import main\nsys.argv = ['cmd', *sys.argv[1:]]\nmain()"


@pytest.mark.parametrize(("module", "command", "missing"), [("trainer.cli", "epilogue-train", "keras"),
                                                            ("export.cli", "epilogue-export", "tensorflow")])
def test_the_lean_install_says_in_one_line_which_extra_training_and_export_need(square_video, tmp_path, module,
                                                                                command, missing):
    from trainer.extras import TRAINING

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")  # export checks it is a run directory first
    args = [str(square_video), "--preset", "tiny", "--run-dir", str(tmp_path / "new")] if module == "trainer.cli" \
        else [str(run_dir)]
    result = run("-c", LEAN.format(blocked=sorted(TRAINING), module=module), *args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {command} needs the training extra, which this install lacks (no "
                                          f"module {missing}): pip install 'epilogue[train]', or 'epilogue[gpu]' on "
                                          "a GPU machine"]


BROKEN_FILTER = """
import os
from trainer import quiet
class Broken:
    def search(self, text):
        raise RuntimeError("a filter that fails")
quiet.CHATTER = Broken()
with quiet.quiet():
    for i in range(20000):  # 200 KB: more than a pipe holds, so a reader gone would block these writes for good
        os.write(2, b"line %d\\n" % i)
    os.write(2, b"the last line, without its newline")
print("done")
"""


def test_a_failing_chatter_filter_passes_every_line_on_and_nothing_hangs():
    result = subprocess.run([sys.executable, "-c", BROKEN_FILTER], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "done\n"
    assert result.stderr == "".join(f"line {i}\n" for i in range(20000)) + "the last line, without its newline"


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
