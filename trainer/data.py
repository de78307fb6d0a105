"""Windows of frames from the frame store into tf.data: shuffled, augmented and batched for training, in time
order for evaluation.

A window is `config.window` frames `stride` apart (context, then targets; two frames for plain pix2pix). The store
(`trainer/store.py`) holds each frame once; a window is a row of frame indices, gathered as it is served, so the
order is shuffled as indices and a block of windows costs a few bytes each until it is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tensorflow as tf

from infer.config import Config
from infer.frames import model_from_levels
from trainer.store import FrameStore

if TYPE_CHECKING:
    from trainer.flows import FlowStore


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


def augment_batch(config: Config, positions: tf.Tensor, windows: tf.Tensor) -> tf.Tensor:
    """`augment` for a batch of uint8 windows, on the device that trains; without jitter or mirroring, only the
    conversion to [-1, 1]."""
    if not config.data.jitter and not config.data.mirror:
        return to_model_range(windows)
    return tf.map_fn(lambda pair: augment(config, pair[0], pair[1]), (positions, windows),
                     fn_output_signature=tf.float32)


def train_batches(config: Config, store: FrameStore, start_step: int,
                  pipeline: tf.distribute.InputContext | None = None,
                  flows: FlowStore | None = None) -> tf.data.Dataset:
    """Shuffled, endless batches for the replicas one input pipeline feeds, from the windows of its store, starting
    at `start_step` (resume): (each window's position in the stream, which seeds its augmentation; uint8 windows;
    with `flows`, the flow target into each frame after the first). The device that trains converts and augments
    them (`augment_batch`): a uint8 window is a quarter of its float32 bytes on the way there, and the host only
    gathers.

    Under a distribution strategy each worker is one pipeline with a share of the windows (`plan.shard`):
    a step takes `batch_size / pipelines` windows from each, one per-replica batch per replica. Augmentation
    is seeded by the window's position in all pipelines' streams together, so no two pipelines draw alike.
    The order is a function of the position too (`_blocks`), so a resumed run sees exactly the batches an
    uninterrupted one would have, without reading the windows of the steps before it.
    """
    pipeline = pipeline or tf.distribute.InputContext()
    pipelines, me = pipeline.num_input_pipelines, pipeline.input_pipeline_id
    per_step, count = config.train.batch_size // pipelines, store.count
    first = start_step * per_step  # windows this pipeline served before `start_step`
    block = max(1, min(count, config.data.shuffle_buffer // 2))
    epoch, offset = divmod(first, count)
    rows = tf.data.Dataset.from_tensor_slices(store.rows)
    later = tf.data.Dataset.counter(epoch + 1).flat_map(lambda e: _blocks(config, rows, count, block, e))
    stream = (_blocks(config, rows, count, block, epoch, offset // block).concatenate(later)
              .map(lambda group, order: tf.gather(group, order))
              .unbatch()
              .skip(offset % block))
    return (tf.data.Dataset.zip(tf.data.Dataset.counter(first), stream)
            .map(lambda i, row: (i * pipelines + me, store.gather(row), *([flows.gather(row)] if flows else [])),
                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(pipeline.get_per_replica_batch_size(config.train.batch_size), drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE))


def _blocks(config: Config, rows: tf.data.Dataset, count: int, block: int, epoch: tf.Tensor | int,
            first_block: int = 0) -> tf.data.Dataset:
    """Epoch `epoch` (every window once) from block `first_block` on: (windows' rows, the order to serve them in)
    for each block of `block` windows in time, the order drawn from (seed, epoch, block) alone. An epoch of up to
    half of `shuffle_buffer` is shuffled through, a longer one stays local in time, as in a shuffle buffer."""
    blocks = -(-count // block)

    def shuffled(index: tf.Tensor, group: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        seed = tf.stack([tf.constant(config.train.seed, tf.int64), tf.cast(epoch, tf.int64) * blocks + index])
        return group, tf.random.experimental.stateless_shuffle(tf.range(tf.shape(group)[0]), seed)

    return rows.skip(first_block * block).batch(block).enumerate(first_block).map(shuffled)


def eval_batches(windows: tf.data.Dataset, batch: int) -> tf.data.Dataset:
    """Validation or test windows in time order, in [-1, 1]: [batch, window, h, w, 3]."""
    return windows.map(to_model_range).batch(batch).prefetch(tf.data.AUTOTUNE)
