"""Shared fixtures: synthetic videos whose frames carry their own index, and the bundled clip."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

import trainer.quiet  # noqa: F401  (TensorFlow's log settings, before any test imports it)
from infer.video import VideoWriter

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "assets" / "big_buck_bunny_0_30.webm"
PROGRAMS = ROOT / "tests" / "programs"  # what tests run in a process of their own: python PROGRAMS/NAME.py ARGS
BITS = 12  # a 4x3 grid of black/white cells: frame indices up to 4095


def barcode_frame(index: int, height: int = 64, width: int = 64) -> np.ndarray:
    """A frame whose cells spell `index` in binary, large enough to survive compression and resizing."""
    frame = np.zeros((height, width, 3), np.uint8)
    rows, cols = 3, 4
    for bit in range(BITS):
        if index >> bit & 1:
            r, c = divmod(bit, cols)
            frame[r * height // rows:(r + 1) * height // rows, c * width // cols:(c + 1) * width // cols] = 255
    return frame


def read_barcode(frame: np.ndarray) -> int:
    """The index a barcode frame carries, read from the centre of each cell."""
    height, width = frame.shape[:2]
    rows, cols = 3, 4
    index = 0
    for bit in range(BITS):
        r, c = divmod(bit, cols)
        cell = frame[r * height // rows:(r + 1) * height // rows, c * width // cols:(c + 1) * width // cols]
        ch, cw = cell.shape[0] // 4, cell.shape[1] // 4
        if cell[ch:-ch, cw:-cw].mean() > 127:
            index |= 1 << bit
    return index


def write_video(path: Path, frames, fps: float = 24, codec: str | None = None) -> Path:
    frames = iter(frames)
    first = next(frames)
    writer = VideoWriter(path, first.shape[:2], fps, codec=codec)
    writer.write(first)
    for frame in frames:
        writer.write(frame)
    return writer.close()


@pytest.fixture(scope="session")
def barcode_video(tmp_path_factory) -> Path:
    """120 frames at 96x64 (not square: squashing is exercised), each carrying its index."""
    path = tmp_path_factory.mktemp("media") / "barcode.mp4"
    return write_video(path, (barcode_frame(i, 64, 96) for i in range(120)))


@pytest.fixture(scope="session")
def bundled() -> Path:
    return BUNDLED


def square_frame(index: int, size: int = 64, speed: int = 4) -> np.ndarray:
    """A white square moving steadily right (wrapping) over a dim gradient: motion a model can learn."""
    frame = np.zeros((size, size, 3), np.uint8)
    frame[..., 2] = np.linspace(40, 120, size, dtype=np.uint8)[:, None]
    x = (index * speed) % size
    cols = [(x + i) % size for i in range(size // 4)]
    frame[size // 3: size // 3 + size // 4, cols] = 255
    return frame


@pytest.fixture(scope="session")
def square_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("media") / "square.mp4"
    return write_video(path, (square_frame(i) for i in range(160)))


@pytest.fixture(scope="session")
def square_run(square_video, tmp_path_factory) -> Path:
    """A tiny model trained 600 steps on the moving square (shared: training is the slow part)."""
    from infer.config import resolve
    from trainer.train import train

    run_dir = tmp_path_factory.mktemp("runs") / "square"
    config = resolve("tiny", None, {"data": {"videos": (str(square_video),)},
                                    "train": {"steps": 600, "eval_every": 300, "checkpoint_every": 300}})
    return train(config, run_dir)


@pytest.fixture(scope="session")
def square_model(square_run) -> Path:
    from export.onnx_export import export

    return export(square_run)


def ctrl_c_when(command: list[str], prefix: str, timeout: float = 120) -> tuple[int, str]:
    """Run a command in plain-output mode, press Ctrl-C once a line starts with `prefix`; (exit code, output)."""
    env = {**os.environ, "CI": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(prefix):
            process.send_signal(signal.SIGINT)
            break
    seen.append(process.stdout.read())
    return process.wait(timeout=timeout), "".join(seen)
