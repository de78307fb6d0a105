"""Frame metrics on the lean side, in numpy: L1, PSNR and SSIM as tf.image computes them, and the
measures of a living film (motion per step, sharpness, colour histograms).

Frames are float arrays in [0, 1], HxWx3 (`infer.frames.to_unit`), taken from the uint8 frames a viewer
sees, so the evaluation, the rollout's health monitor and the reference statistics agree exactly. SSIM
uses an 11x11 Gaussian window (sigma 1.5) over the valid region, per channel, then the mean: the
definition of Wang et al. (2004) and of tf.image.ssim.
"""

from __future__ import annotations

import numpy as np

PSNR_CAP = 100.0  # identical frames: infinite PSNR, stored as this (JSON has no infinity)


def l1(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.square(a - b).mean())
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10.0 * np.log10(1.0 / mse))


def _gaussian(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering over the two spatial axes of HxWxC."""
    n = len(window)
    x = np.lib.stride_tricks.sliding_window_view(x, n, axis=0) @ window
    return np.lib.stride_tricks.sliding_window_view(x, n, axis=1) @ window


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    window = _gaussian()
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = _blur(a, window), _blur(b, window)
    var_a = _blur(a * a, window) - mu_a**2
    var_b = _blur(b * b, window) - mu_b**2
    cov = _blur(a * b, window) - mu_a * mu_b
    luminance = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    structure = (2 * cov + c2) / (var_a + var_b + c2)
    return float((luminance * structure).mean(axis=(0, 1)).mean())


def histogram(frame: np.ndarray, bins: int = 64) -> np.ndarray:
    """Per-channel colour histogram, normalised to sum 1 per channel."""
    counts = np.stack([np.histogram(frame[..., c], bins=bins, range=(0.0, 1.0))[0] for c in range(3)])
    return counts / counts.sum(axis=1, keepdims=True)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How far the colours moved: the earth mover's distance between two colour histograms, per channel in
    [0, 1] units, averaged over channels (0 same, 1 black vs white). Unlike a bin-by-bin distance it grows
    with the size of a shift, not with whether values crossed a bin edge."""
    return float(np.abs(np.cumsum(a - b, axis=1)).sum(axis=1).mean() / (a.shape[1] - 1))


def motion(previous: np.ndarray, current: np.ndarray) -> float:
    """Motion per step, the project's one definition: mean |current - previous| over pixels and channels."""
    return float(np.abs(current - previous).mean())


def sharpness(frame: np.ndarray) -> float:
    """Variance of the grey image's 3x3 Laplacian: falls when a picture blurs, rises when it turns to noise."""
    grey = frame @ np.array([0.299, 0.587, 0.114], np.float32)
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    return float(laplacian.var())
