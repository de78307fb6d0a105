"""The three ways a frame is held, and the only place that converts between them.

uint8 [0, 255]: decoded and encoded video, PNGs. float32 [-1, 1]: what the model reads and writes (its
tanh range). float32 [0, 1]: what metrics measure. Every conversion rounds the same way, so a frame
measured by the evaluation is the frame a viewer sees in the video.
"""

from __future__ import annotations

import numpy as np


def to_model(frame: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 -> float32 1xHxWx3 in [-1, 1], as in training."""
    return (frame.astype(np.float32) / 127.5 - 1.0)[None]


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """float32 (1x)HxWx3 in [-1, 1] -> uint8 HxWx3 (uint8 passes through)."""
    if frame.dtype == np.uint8:
        return frame
    return np.clip(np.rint((np.asarray(frame, np.float32).reshape(frame.shape[-3:]) + 1.0) * 127.5), 0,
                   255).astype(np.uint8)


def to_unit(frame: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 (or a mean of such frames) -> float32 in [0, 1]."""
    return frame.astype(np.float32) / 255.0
