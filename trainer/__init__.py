"""epilogue's trainer: windows of frames from videos, pix2pix, and the training loop."""

from trainer import quiet as _quiet  # noqa: F401  (TensorFlow's log settings, before anything imports it)
