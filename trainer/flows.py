"""Flow targets for the warp head (`--flow-weight`): OpenCV's DIS optical flow between each stored frame and the one
`stride` before it, computed once beside the frame store and served with the windows.

Trained on L1 alone, the warp head's flow does not learn which way things go (README, Quality: the probe); a flow
that sees both frames can say it. DIS is computed on grey frames enlarged 4x: its smallest patch (4 pixels) is as
wide as a person at 64x64, and on the street it follows movers at the pixels their shift carries only when
enlarged (`python -m bench.moves --fit-flow`). Training only: the exported model never sees a flow target.

    frames/NAME-flow.npy    float16 [frames, h, w, 2]: row r, the flow from store row r back to the frame `stride`
                            before it (zeros where that frame is not stored: no window asks for it)
    frames/NAME-flow.json   what it was computed from: the frame store's index, the stride and DIS's settings
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from infer.errors import UserError, atomic_path, write_text_atomic
from infer.frames import model_from_levels
from infer.progress import Steps
from trainer.store import FrameStore

SCALE = 4  # DIS sees the frames this many times larger
DIS = {"preset": "medium", "patch_size": 4, "patch_stride": 1, "scale": SCALE}  # recorded with the targets


def dis_flow(newest: np.ndarray, truth: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """OpenCV's DIS flow (medium preset, 4-pixel patches at every pixel) for frames in [-1, 1] ([n, h, w, 3] each),
    backward like the warp head's: from each pixel of the truth to where it was in the newest frame, in pixels.
    Computed on grey frames `scale` times larger (bicubic), then brought back to the frame's size and pixels."""
    def grey(frame: np.ndarray) -> np.ndarray:
        levels = np.clip((frame.mean(-1) + 1) * 127.5, 0, 255).round().astype(np.uint8)
        return cv2.resize(levels, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale > 1 else levels

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setPatchSize(DIS["patch_size"])
    dis.setPatchStride(DIS["patch_stride"])
    height, width = newest.shape[1:3]
    flows = [cv2.resize(dis.calc(grey(t), grey(n), None), (width, height), interpolation=cv2.INTER_AREA) / scale
             for n, t in zip(newest, truth, strict=True)]
    return np.stack(flows).astype(np.float32)


class FlowStore:
    """The flow into each stored frame from the frame before it in its windows, mapped from its file (its pages are
    the page cache's, read as windows ask for them, like a frame store's)."""

    def __init__(self, flows: np.ndarray):
        self._flows = tf.experimental.dlpack.from_dlpack(flows.__dlpack__())

    def gather(self, rows: tf.Tensor) -> tf.Tensor:
        """float16 flows for a window's rows: the flow into each frame after the first, [..., n - 1, h, w, 2]. Half
        the bytes of float32 on the way to the device that trains, which converts them."""
        return tf.gather(self._flows, rows[..., 1:])


def open_flows(frames: FrameStore, stride: int) -> FlowStore:
    """The flow store beside `frames`: reused when it was computed from exactly these frames at this stride, else
    computed (a few tens of milliseconds a frame)."""
    path = frames.path.with_name(f"{frames.path.stem}-flow.npy")
    index = path.with_suffix(".json")
    wanted = {"frames": json.loads(frames.path.with_suffix(".json").read_text()), "stride": stride, "dis": DIS}
    if not (index.is_file() and path.is_file() and json.loads(index.read_text()) == wanted):
        _build(frames, path, index, wanted)
    flows = np.load(path, mmap_mode="c")  # copy-on-write, never written: DLPack exports only writable arrays
    if len(flows) != frames.bytes // frames.frame_bytes:
        raise UserError(f"flow targets {path} hold {len(flows)} frames where the frame store beside them holds "
                        f"{frames.bytes // frames.frame_bytes}; delete {path} and run again")
    return FlowStore(flows)


def _build(frames: FrameStore, path: Path, index: Path, wanted: dict) -> None:
    """DIS for each (earlier, later) pair of rows the windows hold, written into a temporary file on disk (memory
    stays flat however long the film) and renamed; the index after it makes it trusted."""
    index.unlink(missing_ok=True)
    for left in path.parent.glob(f".{path.stem}.partial-*"):  # a killed pass's temporary file
        left.unlink()
    stored = np.load(frames.path, mmap_mode="r")
    before = {int(later): int(earlier) for window in frames.rows.tolist()
              for earlier, later in zip(window[:-1], window[1:], strict=True)}
    tmp = atomic_path(path)
    progress = Steps("computing flow targets", len(before), unit="frame", lines=5)
    try:
        flows = np.lib.format.open_memmap(tmp, "w+", np.float16, (*stored.shape[:3], 2))  # zeros until computed
        for done, (later, earlier) in enumerate(sorted(before.items()), 1):
            pair = model_from_levels(stored[[earlier, later]].astype(np.float32))
            flows[later] = dis_flow(pair[:1], pair[1:])[0]
            progress.update(done)
        flows.flush()
        del flows
        os.replace(tmp, path)
    finally:
        progress.close()
        tmp.unlink(missing_ok=True)
    write_text_atomic(index, json.dumps(wanted))
