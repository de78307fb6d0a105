"""The run directory: everything one run produces, and how a re-run finds where it stopped.

    config.json     resolved config, library versions, each video's fingerprint
    checkpoints/    latest checkpoints (generator, discriminator, both optimizers, step)
    best/           the checkpoint with the lowest validation L1, and best.json
    logs/           TensorBoard
    samples/        newest input | target | prediction grids, one PNG per eval
    previews/       a short rollout GIF per eval
    cache/          decoded windows, so later epochs never decode
    evals.jsonl     validation L1, PSNR, SSIM at every eval (step 0 is the untrained baseline)
    metrics.json    validation and test metrics, written when training ends
    workers/        multi-worker training: every worker but the chief writes a run directory of its own here
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from infer import __version__
from infer.config import Config
from infer.errors import UserError, check_writable_dir, write_text_atomic
from infer.video import file_sha256
from trainer.plan import VideoPlan


def versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"epilogue": __version__, "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__}


def describe(config: Config, plans: list[VideoPlan]) -> dict:
    videos = [{"path": p.info.path, "sha256": file_sha256(Path(p.info.path)), "frames": p.info.frames,
               "fps": p.info.fps, "size": [p.info.width, p.info.height]} for p in plans]
    return {"config": config.to_dict(), "fingerprint": config.fingerprint(), "videos": videos,
            "versions": versions()}


def open_run(run_dir: Path, config: Config, plans: list[VideoPlan]) -> dict:
    """Create the run, or check that an existing one was made by this same config and these same videos."""
    check_writable_dir(run_dir, "run directory")
    record = json.loads(json.dumps(describe(config, plans)))  # tuples become lists, as when read back
    path = run_dir / "config.json"
    if not path.exists():
        write_text_atomic(path, json.dumps(record, indent=2))
        return record
    saved = json.loads(path.read_text())
    if saved["config"] != record["config"]:
        changed = [f"{s}.{k}" for s, fields in record["config"].items() for k, v in fields.items()
                   if saved["config"].get(s, {}).get(k) != v]
        raise UserError(f"run directory {run_dir} was made with another config (changed: {', '.join(changed)});"
                        " use a new --run-dir, or the same options to resume")
    for old, new in zip(saved["videos"], record["videos"], strict=True):
        if old["sha256"] != new["sha256"]:
            raise UserError(f"video {new['path']} changed since run {run_dir} started; use a new --run-dir")
    return saved


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
