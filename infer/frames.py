"""The three ways a frame is held, and the only place that converts between them.

uint8 [0, 255]: decoded and encoded video, PNGs. float32 [-1, 1]: what the model reads and writes (its
tanh range). float32 [0, 1]: what metrics measure. Every conversion rounds the same way, so a frame
measured by the evaluation is the frame a viewer sees in the video. The trainer's TensorFlow code converts
with the same arithmetic (`model_from_levels`, `unit_from_model`, `model_from_unit`: plain operators, so
they take numpy arrays and tensors alike).
"""

from __future__ import annotations

import numpy as np

LEVELS = 127.5  # uint8 levels per unit of the model's range


def model_from_levels(levels):
    """Float values in [0, 255] (an array or a tensor) -> [-1, 1]."""
    return levels / LEVELS - 1.0


def unit_from_model(values):
    """[-1, 1] -> [0, 1], unrounded (the trainer's in-graph scores)."""
    return (values + 1.0) / 2.0


def model_from_unit(values):
    """[0, 1] -> [-1, 1] (a mask drawn as a grey frame)."""
    return values * 2.0 - 1.0


def to_model(frame: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 -> float32 1xHxWx3 in [-1, 1], as in training."""
    return model_from_levels(frame.astype(np.float32))[None]


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """float32 (1x)HxWx3 in [-1, 1] -> uint8 HxWx3 (uint8 passes through)."""
    if frame.dtype == np.uint8:
        return frame
    return np.clip(np.rint((np.asarray(frame, np.float32).reshape(frame.shape[-3:]) + 1.0) * LEVELS), 0,
                   255).astype(np.uint8)


def to_unit(frame: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 (or a mean of such frames) -> float32 in [0, 1]."""
    return frame.astype(np.float32) / 255.0
