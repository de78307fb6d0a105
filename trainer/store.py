"""The frame store: each frame a split's windows need, decoded once at model size into one uint8 file in the run
directory; the split's windows are rows of frame indices into it, gathered when tf.data reads them.

A window cache writes a frame once per window it is in (6 times with the presets' windows and --hop 1); the store
writes it once. A store that takes at most a quarter of the memory available when training starts is mapped into
memory and gathered from as a tensor, without a copy; a bigger one stays on disk and each window's frames are read
from the file as the window is served (`os.preadv` into the window's own buffer, through the kernel's page
cache), so memory stays flat however long the film.

    frames/NAME.npy    uint8 [frames, h, w, 3]; NAME is the split, or a worker's share of it
    frames/NAME.json   what it holds: each video's sha256 and frame indices, the frame size and fit
The .npy is written under a temporary name and renamed, the .json after it: a store without a .json that
describes exactly these frames (a killed first pass, another config, a changed video) is rebuilt, with one line
saying why.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from infer.config import Config
from infer.errors import UserError, atomic_path, write_text_atomic
from infer.progress import Steps
from infer.video import read_frames
from trainer.plan import VideoPlan
from trainer.rundir import video_sha256

MEMORY_SHARE = 0.25  # of the memory available


class FrameStore:
    """A split's frames, each once, and its windows as rows of indices into them."""

    def __init__(self, path: Path, rows: np.ndarray, memory: int):
        self.path, self.rows = path, rows
        frames = np.load(path, mmap_mode="c")  # copy-on-write, never written: DLPack exports only writable arrays
        self.frame_shape, self.offset = frames.shape[1:], frames.offset
        self.frame_bytes = int(np.prod(self.frame_shape))  # uint8: one byte a value
        self.bytes = frames.nbytes
        self.in_memory = self.bytes <= memory
        if self.in_memory:  # the file mapped, as a tensor without a copy: its pages are the page cache's
            self._frames = tf.experimental.dlpack.from_dlpack(frames.__dlpack__())
        else:
            self._file = os.open(path, os.O_RDONLY)

    @property
    def count(self) -> int:
        return len(self.rows)

    def gather(self, rows: tf.Tensor) -> tf.Tensor:
        """uint8 frames for a tensor of rows: [..., h, w, 3]."""
        if self.in_memory:
            return tf.gather(self._frames, rows)
        frames = tf.numpy_function(self._read, [rows], tf.uint8, stateful=False)
        frames.set_shape(rows.shape.concatenate(self.frame_shape))
        return frames

    def _read(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty(rows.shape + self.frame_shape, np.uint8)
        for frame, row in zip(out.reshape(-1, *self.frame_shape), rows.reshape(-1).tolist(), strict=True):
            if os.preadv(self._file, [frame], self.offset + row * self.frame_bytes) != self.frame_bytes:
                raise UserError(f"frame store {self.path} is shorter than its index says; delete it and run again")
        return out

    def windows(self) -> tf.data.Dataset:
        """Every window once, in time order: uint8 [window, h, w, 3]."""
        return tf.data.Dataset.from_tensor_slices(self.rows).map(self.gather)


def open_store(config: Config, plans: list[VideoPlan], split: str, folder: Path, name: str | None = None,
               memory: int | None = None) -> FrameStore:
    """The split's frame store in `folder` (`name`, else the split's name): reused when it holds exactly these
    frames, else built; in memory when it takes at most `memory` bytes (default: a share of what is available)."""
    name = name or split
    wanted = _describe(config, plans, split)
    path, index = folder / f"{name}.npy", folder / f"{name}.json"
    why = _stale(index, path, wanted)
    if why:
        if why != "new":
            print(f"frame store {path}: {why}; storing its frames again", flush=True)
        _build(path, index, wanted, plans, split, config)
    rows = _rows(plans, split, wanted)
    return FrameStore(path, rows, _available() if memory is None else memory)


def _describe(config: Config, plans: list[VideoPlan], split: str) -> dict:
    """What a store of this split must hold: JSON-ready, compared whole with the saved index."""
    return {"size": list(config.frame_size), "fit": config.data.fit,
            "videos": [{"path": p.info.path, "sha256": video_sha256(p.info.path),
                        "frames": sorted(p.frames_used(split))} for p in plans]}


def _stale(index: Path, path: Path, wanted: dict) -> str:
    """Why the store can't be used as it is ("" when it can; "new" when there is none)."""
    if not index.is_file():
        return "its last pass did not finish" if path.exists() else "new"
    saved = json.loads(index.read_text())
    if saved["size"] != wanted["size"] or saved["fit"] != wanted["fit"]:
        return f"it holds frames at {saved['size'][1]}x{saved['size'][0]} ({saved['fit']}), the model wants " \
               f"{wanted['size'][1]}x{wanted['size'][0]} ({wanted['fit']})"
    for old, new in zip(saved["videos"], wanted["videos"], strict=False):
        if old["sha256"] != new["sha256"]:
            return f"video {new['path']} changed (sha256)"
    if saved["videos"] != wanted["videos"]:
        return "it holds other frames of the videos"
    if not path.is_file() or path.stat().st_size != saved["bytes"]:
        return "its frame file is missing or cut short"
    return ""


def _build(path: Path, index: Path, wanted: dict, plans: list[VideoPlan], split: str, config: Config) -> None:
    """Decode each wanted frame once, in time order, appending it to a temporary file; rename it into place, then
    write the index that makes it trusted."""
    index.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    for left in path.parent.glob(f".{path.stem}.partial-*"):  # a killed pass's temporary file
        left.unlink()
    total = sum(len(v["frames"]) for v in wanted["videos"])
    height, width = config.frame_size
    tmp = atomic_path(path)
    progress = Steps(f"storing {split} frames", total, unit="frame", lines=5)
    try:
        with open(tmp, "wb") as file:
            np.lib.format.write_array_header_1_0(file, {"descr": "|u1", "fortran_order": False,
                                                        "shape": (total, height, width, 3)})
            done = 0
            for plan, video in zip(plans, wanted["videos"], strict=True):
                frames = read_frames(Path(plan.info.path), config.frame_size, config.data.fit,
                                     wanted=set(video["frames"]), stop=max(video["frames"], default=-1) + 1)
                for _, frame in frames:
                    file.write(frame)
                    done += 1
                    progress.update(done)
            if done != total:
                raise UserError(f"decoded {done} of the {total} frames the {split} split needs from "
                                f"{', '.join(v['path'] for v in wanted['videos'])}; is a video damaged?")
        os.replace(tmp, path)
    finally:
        progress.close()
        tmp.unlink(missing_ok=True)
    write_text_atomic(index, json.dumps({**wanted, "bytes": path.stat().st_size}))


def _rows(plans: list[VideoPlan], split: str, wanted: dict) -> np.ndarray:
    """Each window's frames as rows of the store, which holds each video's wanted frames in order, video after
    video."""
    rows, first = [], 0
    for plan, video in zip(plans, wanted["videos"], strict=True):
        row = {frame: first + i for i, frame in enumerate(video["frames"])}
        rows += [[row[f] for f in window] for window in plan.splits[split].windows(plan.stride, plan.size)]
        first += len(video["frames"])
    return np.array(rows, np.int32).reshape(-1, plans[0].size)


def _available() -> int:
    """The bytes a store may take in memory: a share of what the system has available now."""
    try:
        meminfo = Path("/proc/meminfo").read_text().split("\n")
        kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable:"))
        return int(kb * 1024 * MEMORY_SHARE)
    except (OSError, StopIteration):
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * MEMORY_SHARE)


def remove_window_cache(run_dir: Path) -> None:
    """Runs begun before the store kept decoded windows in cache/: the store replaces it."""
    old = run_dir / "cache"
    if old.is_dir():
        size = sum(f.stat().st_size for f in old.rglob("*") if f.is_file())
        shutil.rmtree(old)
        print(f"removed {old} ({size / 1e6:.0f} MB of windows): frames are now stored once, in {run_dir / 'frames'}")
