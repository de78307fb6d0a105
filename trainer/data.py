"""Frame pairs streamed from video files into tf.data.

Each split decodes its videos once per run and is cached to a file in the run directory, so later epochs
never decode. While decoding, only frames some pair still needs are held, at model size: at most
`stride + 1` of them, however long the film.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from infer.config import Config
from infer.video import read_frames
from trainer.plan import VideoPlan

CHUNK = 16


def pair_stream(config: Config, plans: list[VideoPlan], split: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(input, target) uint8 frames at model size, in time order, video after video."""
    stride = config.data.stride
    for plan in plans:
        starts = set(plan.splits[split].starts)
        held: dict[int, np.ndarray] = {}
        frames = read_frames(Path(plan.info.path), config.frame_size, config.data.fit,
                             wanted=plan.frames_used(split), stop=plan.splits[split].stop)
        for index, frame in frames:
            held[index] = frame
            if index - stride in starts:
                yield held.pop(index - stride), frame
            if index not in starts:
                held.pop(index, None)


def split_dataset(config: Config, plans: list[VideoPlan], split: str, cache_dir: Path) -> tf.data.Dataset:
    """The split's pairs as uint8 tensors, decoded on the first pass and read from a file cache after."""
    height, width = config.frame_size
    spec = tf.TensorSpec((None, height, width, 3), tf.uint8)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for stale in cache_dir.glob(f"{split}*.lockfile"):  # left by a run that was killed mid-pass
        stale.unlink()
    dataset = tf.data.Dataset.from_generator(lambda: _chunks(pair_stream(config, plans, split)),
                                             output_signature=(spec, spec))
    # prefetch: decoding (which releases the GIL) runs ahead while the cache file is written.
    return dataset.prefetch(2).cache(str(cache_dir / split)).unbatch()


def _chunks(pairs: Iterator[tuple[np.ndarray, np.ndarray]], size: int = CHUNK) -> Iterator[tuple[np.ndarray, ...]]:
    """Pairs stacked `size` at a time: per-element costs of the generator and the cache are paid once."""
    chunk: list[tuple[np.ndarray, np.ndarray]] = []
    for pair in pairs:
        chunk.append(pair)
        if len(chunk) == size:
            yield np.stack([p[0] for p in chunk]), np.stack([p[1] for p in chunk])
            chunk = []
    if chunk:
        yield np.stack([p[0] for p in chunk]), np.stack([p[1] for p in chunk])


def to_model_range(frames: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], the generator's tanh range."""
    return tf.cast(frames, tf.float32) / 127.5 - 1.0


def augment(config: Config, index: tf.Tensor, inp: tf.Tensor, tgt: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Jitter (and optionally mirror) both frames of a pair identically.

    Randomness is seeded by the element's position in the training stream, so a resumed run sees
    exactly the batches an uninterrupted one would have.
    """
    data = config.data
    seed = tf.stack([tf.constant(config.train.seed, tf.int64), index])
    pair = tf.concat([to_model_range(inp), to_model_range(tgt)], axis=-1)
    height, width = config.frame_size
    if data.jitter > 0:
        big = [round(height * (1 + data.jitter)), round(width * (1 + data.jitter))]
        pair = tf.image.resize(pair, big, method="bilinear")
        pair = tf.image.stateless_random_crop(pair, [height, width, 6], seed=seed)
    if data.mirror:
        pair = tf.image.stateless_random_flip_left_right(pair, seed=seed + 1)
    return pair[..., :3], pair[..., 3:]


def train_batches(config: Config, pairs: tf.data.Dataset, pair_count: int, start_step: int) -> tf.data.Dataset:
    """Shuffled, augmented, endless training batches, starting at `start_step` (resume)."""
    batch = config.train.batch_size
    stream = (pairs.shuffle(min(pair_count, config.data.shuffle_buffer), seed=config.train.seed,
                            reshuffle_each_iteration=True)
              .repeat()
              .enumerate()
              .skip(start_step * batch)
              .map(lambda i, pair: augment(config, i, *pair), num_parallel_calls=tf.data.AUTOTUNE,
                   deterministic=True)
              .batch(batch, drop_remainder=True)
              .prefetch(tf.data.AUTOTUNE))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return stream.with_options(options)


def eval_batches(pairs: tf.data.Dataset, batch: int) -> tf.data.Dataset:
    """Validation or test pairs in time order, in [-1, 1]."""
    return (pairs.map(lambda inp, tgt: (to_model_range(inp), to_model_range(tgt)))
            .batch(batch).prefetch(tf.data.AUTOTUNE))
