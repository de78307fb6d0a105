"""The memory section's probe: the peak RSS of one first epoch, as training reads it, in a fresh process.

    python -m bench.probes.first_epoch_rss VIDEO      prints: BATCHES PEAK_RSS_MB
"""

import sys
import tempfile
from pathlib import Path

from bench.rss import peak_rss_mb
from bench.run import PLAIN_PIX2PIX
from infer.config import resolve
from trainer import data
from trainer.plan import plan


def first_epoch(video: str) -> int:
    """Batches of the first epoch as training runs it: decoded, cached to a file (the memory that must stay flat)."""
    config = resolve("full", None, {**PLAIN_PIX2PIX, "data": {"videos": (video,), "stride": 50, "hop": 1}})
    with tempfile.TemporaryDirectory() as cache:
        return sum(1 for _ in data.split_dataset(config, plan(config), "train", Path(cache)).batch(64))


if __name__ == "__main__":
    print(first_epoch(sys.argv[1]), peak_rss_mb())
