"""The run directory: everything one run produces, and how a re-run finds where it stopped.

    config.json     resolved config, library versions, each video's fingerprint, frame count, end and splits
    parity_frames.npz  the validation (--final: training) frames export checks its ONNX model on, recorded at the start
    checkpoints/    latest checkpoints (generator, discriminator, their optimizers, step; with --sequence-disc, the
                    sequence discriminator and its optimizer too)
    best/           the trained checkpoint with the lowest validation L1 (or continuation score), and best.json;
                    none in a --final run, which holds no frame out to choose by: it exports its last checkpoint
    logs/           TensorBoard
    samples/        newest input | target | prediction (| kept, with the mask head) grids, one PNG per eval
    previews/       a short rollout GIF per eval
    frames/         the frame store: each frame the windows need, decoded once at model size (trainer/store.py)
    evals.jsonl     one-step validation L1, PSNR, SSIM and the continuation score at every eval (step 0 is the
                    untrained baseline)
    metrics.json    validation and test metrics, written when training ends
    workers/        multi-worker training: every worker but the chief writes a run directory of its own here
    lock            held while a trainer runs: a second one on the same directory is refused
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import platform
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from infer import __version__
from infer.config import Config, as_today
from infer.context import context_indices, span
from infer.errors import UserError, atomic_path, check_writable_dir, warn, write_text_atomic
from infer.video import VideoInfo, file_sha256, read_frames
from trainer.plan import VideoPlan, plan_video

PARITY_FRAMES = "parity_frames.npz"
PARITY_COUNT = 4  # contexts spread over the first video's validation split


def versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"epilogue": __version__, "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__}


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, modified: float) -> str:
    """A video's fingerprint, computed once per process for an unchanged file."""
    return file_sha256(Path(path))


def video_sha256(path: str) -> str:
    return _sha256(path, *_stamp(Path(path)))


def videos(plans: list[VideoPlan]) -> list[dict]:
    return [{"path": p.info.path, "sha256": video_sha256(p.info.path),
             "frames": p.info.frames, "end": p.end, "fps": p.info.fps, "size": [p.info.width, p.info.height],
             "splits": {name: [s.start, s.stop] for name, s in p.splits.items()}} for p in plans]


def _stamp(path: Path) -> tuple[int, float]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime


@contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """One trainer per run directory. The lock is an flock on RUN/lock, which the kernel drops when its
    process dies: a lock file left by a killed trainer is taken over, with a warning."""
    check_writable_dir(run_dir, "run directory")
    path = run_dir / "lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"run directory {run_dir} is in use by another epilogue-train "
                            f"({path.read_text().strip() or 'unknown process'}); wait for it to end, or use "
                            "another --run-dir") from None
        handle.seek(0)
        if left := handle.read().strip():
            warn(f"run directory {run_dir} was left locked by a trainer that is gone ({left}); taking it over")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_fits(run_dir: Path, config: Config, plans: list[VideoPlan]) -> dict | None:
    """The saved record when `run_dir` holds a run of this same config and these same videos (a resume), None
    for a new run; a one-line error for anything else. Needs no TensorFlow, so it answers before it loads."""
    check_writable_dir(run_dir, "run directory")
    path = run_dir / "config.json"
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    wanted = json.loads(json.dumps(config.to_dict()))  # tuples become lists, as when read back
    made = as_today(saved["config"])
    if made != wanted:
        changed = [f"{s}.{k}" for s, fields in wanted.items() for k, v in fields.items() if made[s][k] != v]
        raise UserError(f"run directory {run_dir} was made with another config (changed: {', '.join(changed)});"
                        " use a new --run-dir, or the same options to resume")
    for old, new in zip(saved["videos"], videos(plans), strict=True):
        if old["sha256"] != new["sha256"]:
            raise UserError(f"video {new['path']} changed since run {run_dir} started; use a new --run-dir")
    return saved


def open_run(run_dir: Path, config: Config, plans: list[VideoPlan]) -> dict:
    """Create the run, or check that an existing one was made by this same config and these same videos. Either
    way the run ends up with what export needs of its videos (the splits, the parity frames), so export never
    reads them again."""
    record = check_fits(run_dir, config, plans)
    if record is None:
        record = json.loads(json.dumps({"config": config.to_dict(), "fingerprint": config.fingerprint(),
                                        "videos": videos(plans), "versions": versions()}))
        write_text_atomic(run_dir / "config.json", json.dumps(record, indent=2))
    if not (run_dir / PARITY_FRAMES).is_file():
        _save_parity_frames(run_dir, parity_frames(config, plans[0]))
    return record


def parity_frames(config: Config, first: VideoPlan) -> np.ndarray:
    """Real contexts spread over the first video's validation split (its training split for a --final model), at
    model size: uint8 [PARITY_COUNT, context, h, w, 3], oldest frame first."""
    split, k, stride = first.splits["val" if config.held_out else "train"], config.model.context, config.data.stride
    newest = np.linspace(split.start + span(k, stride), split.stop - 1, PARITY_COUNT).round().astype(int).tolist()
    contexts = [context_indices(n, k, stride) for n in newest]
    frames = dict(read_frames(Path(first.info.path), config.frame_size, config.data.fit,
                              wanted={i for c in contexts for i in c}, stop=split.stop))
    return np.stack([np.stack([frames[i] for i in c]) for c in contexts])


def _save_parity_frames(run_dir: Path, frames: np.ndarray) -> None:
    tmp = atomic_path(run_dir / PARITY_FRAMES)
    try:
        np.savez_compressed(tmp, contexts=frames)
        os.replace(tmp, run_dir / PARITY_FRAMES)
    finally:
        tmp.unlink(missing_ok=True)


def recorded_parity_frames(run_dir: Path) -> np.ndarray:
    """The parity frames recorded when the run began. A run begun before they were recorded reads them from its
    first video again, which must still be where it was."""
    path = run_dir / PARITY_FRAMES
    if path.is_file():
        with np.load(path) as saved:
            return saved["contexts"]
    first = first_plan(run_dir)
    if not Path(first.info.path).is_file():
        raise UserError(f"run {run_dir} began before its parity frames were recorded, and its video "
                        f"{first.info.path} is gone; put it back there to export")
    print(f"note: run {run_dir} began before its parity frames were recorded: reading them from {first.info.path}")
    return parity_frames(read_config(run_dir), first)


def recorded_splits(run_dir: Path) -> dict[str, list[int]]:
    """[start, stop) frames of the first video's splits, as training planned them."""
    video = _first_video(run_dir)
    if "splits" in video:
        return video["splits"]
    return {name: [split.start, split.stop] for name, split in first_plan(run_dir).splits.items()}


def first_plan(run_dir: Path) -> VideoPlan:
    """The first video's plan, from the run's record alone: planning is arithmetic on the frame count."""
    config, video = read_config(run_dir), _first_video(run_dir)
    info = VideoInfo(video["path"], video["frames"], video["fps"], *video["size"])
    return plan_video(info, config)


def _first_video(run_dir: Path) -> dict:
    return json.loads((run_dir / "config.json").read_text())["videos"][0]


def read_config(run_dir: Path) -> Config:
    """The config a run was made with (for export and evaluation)."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.json); train one with epilogue-train")
    return Config.from_dict(json.loads(path.read_text())["config"])


def forget_evals_after(run_dir: Path, step: int) -> None:
    """Drop evals.jsonl lines past `step`, so a resumed run's log has each step once."""
    path = run_dir / "evals.jsonl"
    if path.exists():
        kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
        write_text_atomic(path, "".join(f"{line}\n" for line in kept))
