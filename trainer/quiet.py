"""TensorFlow's log settings, in one place: its chatter off the terminal, its real warnings kept.

On TF 2.21 `TF_CPP_MIN_LOG_LEVEL` does not silence the lines its native libraries print while loading and
while the devices start ("All log messages before absl::InitializeLog()", oneDNN and CUDA-driver notes,
"failed call to cuInit" on a machine without a GPU), and a multi-worker run that loses a peer prints the
collective's abort from several native threads before the error reaches Python (which then says it in one
line). So while `quiet()` is open the process's stderr (file descriptor 2, where native code writes) is a
pipe read by a thread that passes on, as they come, only the lines that are not known chatter.
`--verbose` (or EPILOGUE_VERBOSE=1) shows everything.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

NATIVE = r"^[IWEF]\d{4} [\d:.]+\s+\d+ "  # absl's prefix: severity, date, time, thread
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
    # A collective aborted by a lost peer, and the lines its messages run on to; the trainer says it in one.
    NATIVE + r"(base_collective_executor|ring_alg|collective_\w+|coordination_\w+|\w*grpc\w*|\w*rpc\w*)\.cc:\d+\]",
    r"^Additional GRPC error information from remote target",
    r"^:UNKNOWN:Error received from peer",
    r"^/job:\w+/replica:\d+/task:\d+\s*$",
    r"^The tasks have crashed\. Check the task logs",
    r"^The error could be from a previous operation\. Restart your program to reset\.",
    # TensorFlow's preemption handler calls its own deprecated property when it saves.
    r"PreemptionCheckpointHandler\.total_run_calls \(from [\w.]+\) is deprecated",
    r"^Instructions for updating:\s*$",
    r"^Track steps using a tf\.Variable saved in checkpoint instead\.",
]))


def verbose_requested(flag: bool = False) -> bool:
    return flag or os.environ.get("EPILOGUE_VERBOSE", "") not in ("", "0")


def _chatter_dropped(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if line.strip() and not CHATTER.search(line.decode(errors="replace"))]


def _pass_on(source: int, sink: int) -> None:
    """Copy lines from `source` to `sink`, dropping chatter, until every writer has closed `source`.

    It must never stop early: a reader gone leaves the pipe to fill, and then every write to stderr, the
    trainer's included, blocks for good. So a filter that fails passes everything on from then on, and a sink
    that fails is drained and dropped; the last line, newline or not, goes out when the pipe closes."""
    pending, filtering = b"", True
    while chunk := os.read(source, 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        filtering = _forward(sink, [line + b"\n" for line in lines], filtering)
    if pending:
        _forward(sink, [pending], filtering)
    os.close(source)


def _forward(sink: int, lines: list[bytes], filtering: bool) -> bool:
    """Write `lines` to `sink`, less chatter while `filtering`; whether to go on filtering."""
    if filtering:
        try:
            lines = _chatter_dropped(lines)
        except Exception:  # whatever failed, the lines must still pass and the reader live
            filtering = False
    with contextlib.suppress(OSError):
        _write_all(sink, b"".join(lines))
    return filtering


def _write_all(sink: int, data: bytes) -> None:
    while data:
        data = data[os.write(sink, data):]


@contextmanager
def quiet(verbose: bool = False) -> Iterator[None]:
    """Run TensorFlow inside this; its chatter is dropped as it comes, the rest passed on."""
    if verbose_requested(verbose):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        yield
        return
    sys.stderr.flush()
    terminal = os.dup(2)
    source, writer = os.pipe()
    os.dup2(writer, 2)
    os.close(writer)
    thread = threading.Thread(target=_pass_on, args=(source, terminal), daemon=True, name="quiet-stderr")
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's last writer: the thread reads to the end and stops
        thread.join(timeout=10)
        if not thread.is_alive():  # one still writing must not find its descriptor reused
            os.close(terminal)
