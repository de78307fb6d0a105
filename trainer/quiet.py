"""TensorFlow's log settings, in one place: its start-up chatter off the terminal, its real warnings kept.

On TF 2.21 `TF_CPP_MIN_LOG_LEVEL` does not silence the lines its native libraries print while loading and
while the devices start ("All log messages before absl::InitializeLog()", oneDNN and CUDA-driver notes,
"failed call to cuInit" on a machine without a GPU). So the import and the device start-up run with the
process's stderr (file descriptor 2, where native code writes) pointed at a temporary file; afterwards,
every line that is not known chatter is written to the real stderr. `--verbose` (or EPILOGUE_VERBOSE=1)
shows everything.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CHATTER = re.compile("|".join([
    r"All log messages before absl::InitializeLog\(\) is called",
    r"oneDNN custom operations are on",
    r"Could not find cuda drivers on your machine",
    r"failed call to cuInit",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"TF-TRT Warning: Could not find TensorRT",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"To enable the following instructions: .* rebuild TensorFlow",
    r"Attempting to register factory for plugin",
    r"Created device /job:localhost/replica:0/task:0/device:CPU",
]))


def verbose_requested(flag: bool = False) -> bool:
    return flag or os.environ.get("EPILOGUE_VERBOSE", "") not in ("", "0")


@contextmanager
def quiet(verbose: bool = False) -> Iterator[None]:
    """Run TensorFlow's import and device start-up inside this; its chatter is dropped, the rest kept."""
    if verbose_requested(verbose):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if line.strip() and not CHATTER.search(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
