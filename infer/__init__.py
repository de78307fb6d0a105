"""epilogue's lean side: video I/O, the shared config and the ONNX Runtime rollout. Never imports TensorFlow."""

__version__ = "0.1.0"
