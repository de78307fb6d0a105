"""Training on two logical CPU devices, which must be made before TensorFlow's runtime starts: so in a process of
its own, whatever the test process has started already. Tests run it by path.

    python tests/programs/two_cpus.py losses VIDEO CACHE_DIR RUNS_DIR     prints one JSON line: [one, mirrored]
    python tests/programs/two_cpus.py train VIDEO RUN_DIR                 trains 6 steps with --strategy mirrored
"""

import json
import sys
from pathlib import Path

import keras
import tensorflow as tf


def split_cpu(count: int) -> None:
    """`count` logical devices on the first CPU."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def losses(video: str, cache: str, runs: str) -> None:
    """Three steps' losses on one device, then under MirroredStrategy over both CPUs: same seed, same global batch."""
    from infer.config import resolve  # epilogue's modules after split_cpu, as anything may start the runtime
    from trainer import data, store
    from trainer.plan import plan
    from trainer.train import Trainer

    config = resolve("tiny", None, {"data": {"videos": (video,)},
                                    "model": {"dropout": 0.0, "head": "mask", "keep_init": 0.9},
                                    "train": {"batch_size": 2}})
    plans = plan(config)
    frames = store.open_store(config, plans, "train", Path(cache))
    found = []
    for strategy in (tf.distribute.get_strategy(), tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])):
        keras.utils.set_random_seed(0)
        trainer = Trainer(config, Path(runs) / str(len(found)), strategy, "float32")
        batches = iter(strategy.distribute_datasets_from_function(
            lambda pipeline: data.train_batches(config, frames, 0, pipeline)))
        found.append([{k: float(v) for k, v in trainer.step_fn(next(batches)).items()} for _ in range(3)])
    print(json.dumps(found))


def train_mirrored(video: str, run_dir: str) -> None:
    """Six steps of the tiny preset with the mirrored strategy, batch 2 (one window per device)."""
    from infer.config import resolve  # epilogue's modules after split_cpu, as anything may start the runtime
    from trainer.train import train

    config = resolve("tiny", None, {"data": {"videos": (video,)},
                                    "train": {"steps": 6, "batch_size": 2, "strategy": "mirrored",
                                              "eval_every": 100, "checkpoint_every": 100}})
    train(config, Path(run_dir))


if __name__ == "__main__":
    split_cpu(2)
    {"losses": losses, "train": train_mirrored}[sys.argv[1]](*sys.argv[2:])
