"""The sequence discriminator: it judges a chain of the generator's own steps against the real frames that followed
the same context, its loss reaches every step of the chain, and a run that uses it trains, checkpoints it and
resumes."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import read_barcode

from infer.config import resolve
from infer.errors import UserError
from infer.frames import to_uint8
from trainer import store
from trainer.plan import plan


def config_for(video, unroll=0, sequence_disc=3, **options):
    return resolve("tiny", None, {"data": {"videos": (str(video),)}, "model": {"head": "mask"},
                                  "train": {"unroll": unroll, "sequence_disc": sequence_disc, **options}})


@pytest.mark.parametrize(("unroll", "sequence_disc", "frames"), [(0, 3, 4), (4, 3, 6), (1, 5, 6)])
def test_a_window_holds_the_context_and_every_frame_either_chain_needs(barcode_video, tmp_path, unroll,
                                                                       sequence_disc, frames):
    config = config_for(barcode_video, unroll, sequence_disc)
    plans = plan(config)
    window = next(store.open_store(config, plans, "train", tmp_path).windows().as_numpy_iterator())
    indices = [read_barcode(to_uint8(frame)) for frame in window]
    assert len(indices) == frames and np.all(np.diff(indices) == config.data.stride)


@pytest.mark.parametrize("frames", [1, -2])
def test_a_sequence_of_fewer_than_two_frames_is_refused_in_one_line(frames):
    with pytest.raises(UserError, match="sequence_disc is the number of generated frames judged together"):
        resolve("tiny", None, {"train": {"sequence_disc": frames}})


def test_the_chain_is_the_rollout_and_its_last_frame_feels_the_first_step(square_video, tmp_path):
    """Frame j of the chain is the generator applied j times, fed back as at rollout; and the gradient of the last
    frame reaches the real context, which with one context frame only the chain's first step sees."""
    from trainer.train import Trainer

    config = config_for(square_video, sequence_disc=3)
    trainer = Trainer(config, tmp_path, tf.distribute.get_strategy(), "float32")
    context = tf.Variable(np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        chain = trainer._chain([context])
        last = tf.reduce_sum(chain[-1])
    frame = context
    for made in chain:
        frame = trainer.generator([frame], training=False)
        np.testing.assert_array_equal(made.numpy(), frame.numpy())
    assert float(tf.reduce_max(tf.abs(tape.gradient(last, context)))) > 0
    assert len(trainer.sequence_disc.inputs) == config.model.context + 3


def test_a_run_with_it_trains_checkpoints_it_and_a_resume_restores_it(square_video, tmp_path):
    from trainer.train import Trainer, train

    config = config_for(square_video, unroll=2, steps=6, eval_every=6, checkpoint_every=6)
    train(config, tmp_path / "run")
    saved = tf.train.latest_checkpoint(tmp_path / "run" / "checkpoints")
    resumed = Trainer(config, tmp_path / "run", tf.distribute.get_strategy(), "float32")
    assert resumed.restore() == 6
    # Keras 3 models are reached through their optimizer in a checkpoint.
    for i, variable in enumerate(resumed.sequence_disc.trainable_variables):
        kept = tf.train.load_variable(saved, f"sequence_opt/_trainable_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE")
        np.testing.assert_array_equal(variable.numpy(), kept)
