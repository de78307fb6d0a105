"""Windows of frames streamed from video files into tf.data.

A window is `config.window` frames `stride` apart (context, then targets; two frames for plain pix2pix). Each
split (with several workers, each worker's share of the training split) decodes its videos once per run and
is cached to a file in the run directory, so later epochs never decode. While decoding, only frames some
window still needs are held, at model size: at most `(window - 1) * stride + 1` of them, however long the
film.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from infer.config import Config
from infer.context import context_indices, span
from infer.frames import model_from_levels
from infer.video import read_frames
from trainer.plan import VideoPlan

CHUNK = 16


def window_stream(config: Config, plans: list[VideoPlan], split: str) -> Iterator[np.ndarray]:
    """uint8 [window, h, w, 3] arrays at model size, in time order, video after video."""
    stride, last = config.data.stride, span(config.window, config.data.stride)
    for plan in plans:
        starts = set(plan.splits[split].starts)
        held: dict[int, np.ndarray] = {}
        frames = read_frames(Path(plan.info.path), config.frame_size, config.data.fit,
                             wanted=plan.frames_used(split), stop=plan.splits[split].stop)
        for index, frame in frames:
            held[index] = frame
            if index - last in starts:
                yield np.stack([held[i] for i in context_indices(index, config.window, stride)])
            for old in [i for i in held if i <= index - last]:  # no window still to come needs it
                del held[old]


def split_dataset(config: Config, plans: list[VideoPlan], split: str, cache_dir: Path,
                  name: str | None = None) -> tf.data.Dataset:
    """The split's windows as uint8 tensors, decoded on the first pass and read from a file cache after
    (`cache_dir/name`, the split's name unless a shard of it has a name of its own)."""
    height, width = config.frame_size
    spec = tf.TensorSpec((None, config.window, height, width, 3), tf.uint8)
    name = name or split
    cache_dir.mkdir(parents=True, exist_ok=True)
    dataset = tf.data.Dataset.from_generator(lambda: _chunks(window_stream(config, plans, split)),
                                             output_signature=spec)
    # prefetch: decoding (which releases the GIL) runs ahead while the cache file is written.
    return dataset.prefetch(2).cache(str(cache_dir / name)).unbatch()


def _chunks(windows: Iterator[np.ndarray], size: int = CHUNK) -> Iterator[np.ndarray]:
    """Windows stacked `size` at a time: per-element costs of the generator and the cache are paid once."""
    chunk: list[np.ndarray] = []
    for window in windows:
        chunk.append(window)
        if len(chunk) == size:
            yield np.stack(chunk)
            chunk = []
    if chunk:
        yield np.stack(chunk)


def to_model_range(frames: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], the generator's tanh range."""
    return model_from_levels(tf.cast(frames, tf.float32))


def augment(config: Config, index: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
    """Jitter (and optionally mirror) every frame of a window identically; float32 in [-1, 1].

    Randomness is seeded by the element's position in the training stream, so a resumed run sees
    exactly the batches an uninterrupted one would have.
    """
    data = config.data
    seed = tf.stack([tf.constant(config.train.seed, tf.int64), index])
    height, width = config.frame_size
    frames = config.window
    # The frames side by side on channels ([h, w, 3 * frames], oldest first), so one crop moves them all.
    stacked = tf.reshape(tf.transpose(to_model_range(window), [1, 2, 0, 3]), [height, width, 3 * frames])
    if data.jitter > 0:
        big = [round(height * (1 + data.jitter)), round(width * (1 + data.jitter))]
        stacked = tf.image.resize(stacked, big, method="bilinear")
        stacked = tf.image.stateless_random_crop(stacked, [height, width, 3 * frames], seed=seed)
    if data.mirror:
        stacked = tf.image.stateless_random_flip_left_right(stacked, seed=seed + 1)
    return tf.transpose(tf.reshape(stacked, [height, width, frames, 3]), [2, 0, 1, 3])


def train_batches(config: Config, windows: tf.data.Dataset, count: int, start_step: int,
                  pipeline: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """Shuffled, augmented, endless batches for the replicas one input pipeline feeds, from its `count`
    windows, starting at `start_step` (resume).

    Under a distribution strategy each worker is one pipeline with a share of the windows (`plan.shard`):
    a step takes `batch_size / pipelines` windows from each, one per-replica batch per replica. Augmentation
    is seeded by the window's position in all pipelines' streams together, so no two pipelines draw alike.
    The order is a function of the position too (`_blocks`), so a resumed run sees exactly the batches an
    uninterrupted one would have, without reading the windows of the steps before it.
    """
    pipeline = pipeline or tf.distribute.InputContext()
    pipelines, me = pipeline.num_input_pipelines, pipeline.input_pipeline_id
    per_step = config.train.batch_size // pipelines
    first = start_step * per_step  # windows this pipeline served before `start_step`
    block = max(1, min(count, config.data.shuffle_buffer // 2))
    epoch, offset = divmod(first, count)
    later = tf.data.Dataset.counter(epoch + 1).flat_map(lambda e: _blocks(config, windows, count, block, e))
    stream = (_blocks(config, windows, count, block, epoch, offset // block).concatenate(later)
              .prefetch(1)  # the next block gathers while this one is served
              .map(lambda group, order: tf.gather(group, order))
              .unbatch()
              .skip(offset % block))
    return (tf.data.Dataset.zip(tf.data.Dataset.counter(first), stream)
            .map(lambda i, window: augment(config, i * pipelines + me, window),
                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(pipeline.get_per_replica_batch_size(config.train.batch_size), drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE))


def _blocks(config: Config, windows: tf.data.Dataset, count: int, block: int, epoch: tf.Tensor | int,
            first_block: int = 0) -> tf.data.Dataset:
    """Epoch `epoch` (every window once) from block `first_block` on: (windows, the order to serve them in) for
    each block of `block` windows in time, the order drawn from (seed, epoch, block) alone. Two blocks are held
    at a time, so `shuffle_buffer` windows in all: an epoch of up to half of it is shuffled through, a longer one
    stays local in time, as it did in a shuffle buffer."""
    blocks = -(-count // block)

    def shuffled(index: tf.Tensor, group: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        seed = tf.stack([tf.constant(config.train.seed, tf.int64), tf.cast(epoch, tf.int64) * blocks + index])
        return group, tf.random.experimental.stateless_shuffle(tf.range(tf.shape(group)[0]), seed)

    return windows.skip(first_block * block).batch(block).enumerate(first_block).map(shuffled)


def eval_batches(windows: tf.data.Dataset, batch: int) -> tf.data.Dataset:
    """Validation or test windows in time order, in [-1, 1]: [batch, window, h, w, 3]."""
    return windows.map(to_model_range).batch(batch).prefetch(tf.data.AUTOTUNE)
