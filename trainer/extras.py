"""The training commands on the lean install: `pip install 'epilogue[cpu]'` puts epilogue-train and
epilogue-export on the PATH without TensorFlow, Keras or ONNX, so they say in one line which extra to add."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from infer.errors import UserError

# What the `train` and `gpu` extras bring that the lean runner's install lacks (pyproject.toml).
# By module name: opencv-python-headless is imported as cv2.
TRAINING = {"tensorflow", "keras", "tensorboard", "onnx", "onnxconverter_common", "tf2onnx", "cv2"}


@contextmanager
def training_extra(command: str) -> Iterator[None]:
    """Import the training side inside this: a module of the training extras missing is one line naming the
    extra to install (exit 2), where it would be a traceback; any other missing module stays a bug's traceback."""
    try:
        yield
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] not in TRAINING:
            raise
        raise UserError(f"{command} needs the training extra, which this install lacks (no module {error.name}): "
                        "pip install 'epilogue[train]', or 'epilogue[gpu]' on a GPU machine") from None
