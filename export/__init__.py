"""epilogue's export: the trained generator as a self-describing ONNX model, parity checked."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
