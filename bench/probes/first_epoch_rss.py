"""The memory section's probe: the peak RSS of one first epoch, as training reads it, in a fresh process.

    python -m bench.probes.first_epoch_rss VIDEO [ALLOWED_MB]    prints: WINDOWS PEAK_RSS_MB STORE_MB

ALLOWED_MB: the memory the frame store may take (default: what training allows it); a bigger store is read from
disk.
"""

import sys
import tempfile
from pathlib import Path

from bench.rss import peak_rss_mb
from bench.run import PLAIN_PIX2PIX
from infer.config import resolve
from trainer import store
from trainer.plan import plan


def first_epoch(video: str, allowed_mb: int | None) -> tuple[int, int]:
    """Windows of the first epoch as training runs it (frames stored, then every window read) and the store's MB."""
    config = resolve("full", None, {**PLAIN_PIX2PIX, "data": {"videos": (video,), "stride": 50, "hop": 1}})
    with tempfile.TemporaryDirectory() as folder:
        memory = None if allowed_mb is None else allowed_mb << 20
        frames = store.open_store(config, plan(config), "train", Path(folder), memory=memory)
        return sum(1 for _ in frames.windows()), frames.bytes >> 20


if __name__ == "__main__":
    windows, store_mb = first_epoch(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
    print(windows, peak_rss_mb(), store_mb)
