"""epilogue's export: the trained generator as a self-describing ONNX model, parity checked."""

from trainer import quiet as _quiet  # noqa: F401  (TensorFlow's log settings, before anything imports it)

CONVERTERS = ("auto", "native", "tf2onnx")  # auto: the native writer, tf2onnx for layers it does not know
