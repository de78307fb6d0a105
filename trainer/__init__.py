"""epilogue's trainer: frame pairs from videos, pix2pix, and the training loop."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the terminal
