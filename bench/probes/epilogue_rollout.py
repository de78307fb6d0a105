"""The rollout section's contender: epilogue's runner rolling an exported model out, without TensorFlow.

    python -m bench.probes.epilogue_rollout MODEL.onnx VIDEO OUT.mp4 STEPS      prints one JSON line
"""

import json
import sys
import time
from pathlib import Path

from bench.rss import peak_rss_mb
from infer.rollout import continue_film


def main(model: Path, source: Path, out: Path, steps: int) -> dict:
    """Wall time, model time, peak RSS and the provider of a 1920x1080 rollout; TensorFlow must stay unloaded."""
    began = time.perf_counter()
    record = continue_film(model, source, out, steps=steps, size="1920x1080")
    if "tensorflow" in sys.modules:
        raise SystemExit("bench rollout: the runner loaded TensorFlow")
    return {"wall_s": time.perf_counter() - began, "model_s_per_step": record["timing"]["model_s_per_step"],
            "peak_rss_mb": peak_rss_mb(), "provider": record["provider"], "cuda_graphs": record["cuda_graphs"]}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))))
