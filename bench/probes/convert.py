"""The converters section's probe: one converter exporting one preset's generator, then ONNX Runtime running it.

    python -m bench.probes.convert PRESET native|tf2onnx RUNS      prints one JSON line

A process per converter and preset, so that each export's peak RSS is its own.
"""

import json
import sys
import time

import numpy as np
import onnxruntime as ort

from bench.rss import peak_rss_mb
from export.onnx_export import convert
from infer.config import resolve
from trainer import model


def seconds_per_frame(proto, shape: tuple, runs: int) -> float:
    """Median seconds of one ONNX Runtime CPU call on a zero frame, after one warm-up call."""
    session = ort.InferenceSession(proto.SerializeToString(), ort.SessionOptions(), providers=["CPUExecutionProvider"])
    frame = np.zeros((1, *shape), np.float32)
    session.run(None, {"frame": frame})
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        session.run(None, {"frame": frame})
        times.append(time.perf_counter() - began)
    return float(np.median(times))


def main(preset: str, converter: str, runs: int) -> dict:
    """Export seconds, seconds per frame and this process's peak RSS for an untrained generator (neither
    figure depends on the weights)."""
    generator = model.generator(resolve(preset, None, {}))
    began = time.perf_counter()
    proto, _ = convert(generator, "next_frame", 17, converter)
    export_s = time.perf_counter() - began
    return {"export_s": export_s, "s_per_frame": seconds_per_frame(proto, generator.inputs[0].shape[1:], runs),
            "peak_rss_mb": peak_rss_mb()}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
