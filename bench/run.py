"""`make bench`: each figure is a ratio against a baseline measured in the same run, on this machine.

    python -m bench.run [SECTION ...]     sections: pipeline memory training (default: all)

Figures go to bench/results.json (other sections' figures are kept) and are printed as a table.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from infer.config import resolve  # noqa: E402
from infer.video import VideoWriter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "assets" / "big_buck_bunny_0_30.webm"
RESULTS = ROOT / "bench" / "results.json"


def timed(work) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def pipeline() -> dict:
    """First-epoch pairs/s of the tf.data pipeline vs a plain PyAV decode loop; cached epochs vs first."""
    import av

    from trainer import data
    from trainer.plan import plan

    def raw_decode() -> int:
        with av.open(str(CLIP)) as container:
            container.streams.video[0].thread_type = "AUTO"
            return sum(1 for frame in container.decode(video=0) if frame.to_ndarray(format="rgb24") is not None)

    config = resolve("pix2pix", None, {"data": {"videos": (str(CLIP),), "stride": 6, "hop": 1}})
    plans = plan(config)
    pairs = len(plans[0].splits["train"].starts)
    raws, firsts, cacheds = [], [], []
    for _ in range(3):  # interleaved repeats, medians: this machine's speed wanders
        raws.append(raw_decode() / timed(raw_decode))
        with tempfile.TemporaryDirectory() as cache:
            batches = data.split_dataset(config, plans, "train", Path(cache)).batch(64)  # as training reads it
            firsts.append(pairs / timed(lambda: sum(1 for _ in batches)))  # noqa: B023
            cacheds.append(pairs / timed(lambda: sum(1 for _ in batches)))  # noqa: B023
    raw, first, cached = (float(np.median(v)) for v in (raws, firsts, cacheds))
    return {"raw_decode_frames_per_s": round(raw, 1), "first_epoch_pairs_per_s": round(first, 1),
            "first_epoch_vs_raw_decode": round(first / raw, 2), "cached_epoch_pairs_per_s": round(cached, 1),
            "cached_vs_first_epoch": round(cached / first, 1), "goal": "first >= 0.8x raw decode; cached >= 20x first",
            "setup": "bundled clip 1280x720 VP8, 256x256 pairs, stride 6, hop 1 (498 train pairs), medians of 3"}


_RSS_PROBE = """
import resource, sys
from pathlib import Path
from infer.config import resolve
from trainer import data
from trainer.plan import plan
config = resolve("pix2pix", None, {"data": {"videos": (sys.argv[1],), "stride": 50, "hop": 1}})
pairs = sum(1 for _ in data.pair_stream(config, plan(config), "train"))
print(pairs, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def memory() -> dict:
    """Peak RSS while streaming every training pair of a short and a 5x longer synthetic video."""
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for frames in (600, 3000):
            path = Path(tmp) / f"long_{frames}.mp4"
            writer = VideoWriter(path, (360, 640), 24, options={"preset": "ultrafast"})
            ramp = np.linspace(0, 255, 640, dtype=np.float32)[None, :, None]
            for i in range(frames):
                writer.write(np.broadcast_to((ramp + i) % 256, (360, 640, 3)).astype(np.uint8))
            writer.close()
            out = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(path)], capture_output=True, text=True,
                                 check=True, cwd=ROOT).stdout.split()
            figures[f"peak_rss_mb_{frames}_frames"] = int(out[1])
    figures["rss_long_vs_short"] = round(figures["peak_rss_mb_3000_frames"] / figures["peak_rss_mb_600_frames"], 2)
    figures["goal"] = "peak RSS does not grow with video length (ratio ~1.0)"
    figures["setup"] = "640x360 synthetic H.264, 256x256 pairs, stride 50, hop 1"
    return figures


def training(steps: int = 6) -> dict:
    """Steps/s of epilogue's loop vs a TF-tutorial-style loop, same 256x256 pix2pix, batch 1, CPU float32."""
    import tensorflow as tf

    from bench import tutorial_pix2pix
    from trainer import data
    from trainer.plan import plan
    from trainer.train import Trainer

    def rate(step, batches) -> float:
        for _ in range(2):  # trace and warm up
            step(*next(batches))
        return steps / timed(lambda: [float(step(*next(batches))[0]) for _ in range(steps)])

    tutorial_step = tutorial_pix2pix.make_step()
    frames = tf.random.uniform((1, 256, 256, 3), -1, 1)
    tutorial = rate(tutorial_step, iter(tf.data.Dataset.from_tensors((frames, frames)).repeat()))

    figures = {"tutorial_steps_per_s": round(tutorial, 3)}
    for xla in (False, True):
        config = resolve("pix2pix", None, {"data": {"videos": (str(CLIP),), "stride": 6, "hop": 1},
                                           "train": {"xla": xla, "precision": "float32"}})
        with tempfile.TemporaryDirectory() as run_dir:
            plans = plan(config)
            pairs = data.split_dataset(config, plans, "train", Path(run_dir) / "cache")
            trainer = Trainer(config, Path(run_dir), tf.distribute.get_strategy(), "float32")
            batches = iter(data.train_batches(config, pairs, len(plans[0].splits["train"].starts), 0))
            ours = rate(lambda i, t: list(trainer.step_fn(i, t).values()), batches)  # noqa: B023
        name = "epilogue_xla" if xla else "epilogue"
        figures[f"{name}_steps_per_s"] = round(ours, 3)
        figures[f"{name}_vs_tutorial"] = round(ours / tutorial, 2)
    figures["goal"] = "epilogue >= 1.0x tutorial"
    figures["setup"] = f"256x256, 64 filters, batch 1, float32, {steps} timed steps after 2 warm-up steps"
    return figures


SECTIONS = {"pipeline": pipeline, "memory": memory, "training": training}


def main(names: list[str]) -> None:
    unknown = set(names) - set(SECTIONS)
    if unknown:
        sys.exit(f"error: unknown bench section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in names or list(SECTIONS):
        print(f"bench: {name} ...", flush=True)
        results[name] = {**SECTIONS[name](), "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
                         "date": time.strftime("%Y-%m-%d")}
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    table = Table("section", "figure", "value")
    for section, figures in results.items():
        for key, value in figures.items():
            table.add_row(section, key, str(value))
    Console().print(table)
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main(sys.argv[1:])
