"""The baseline for the training-loop benchmark: pix2pix the way the TensorFlow tutorial writes it.

Sequential down/up stacks with BatchNorm, batch 1, one `tf.function` step with two tapes and
`apply_gradients`. No strategy, no loss scaling, no checkpoints: the least machinery there is.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

INIT = keras.initializers.RandomNormal(0.0, 0.02)


def _down(filters: int, batchnorm: bool = True) -> keras.Sequential:
    block = keras.Sequential([layers.Conv2D(filters, 4, strides=2, padding="same", kernel_initializer=INIT,
                                            use_bias=False)])
    if batchnorm:
        block.add(layers.BatchNormalization())
    block.add(layers.LeakyReLU(0.2))
    return block


def _up(filters: int, dropout: bool = False) -> keras.Sequential:
    block = keras.Sequential([layers.Conv2DTranspose(filters, 4, strides=2, padding="same",
                                                     kernel_initializer=INIT, use_bias=False),
                              layers.BatchNormalization()])
    if dropout:
        block.add(layers.Dropout(0.5))
    block.add(layers.ReLU())
    return block


def generator(size: int = 256) -> keras.Model:
    frame = keras.Input((size, size, 3))
    downs = [_down(64, False), _down(128), _down(256), _down(512), _down(512), _down(512), _down(512),
             _down(512)]
    ups = [_up(512, True), _up(512, True), _up(512, True), _up(512), _up(256), _up(128), _up(64)]
    x, skips = frame, []
    for down in downs:
        x = down(x)
        skips.append(x)
    for up, skip in zip(ups, reversed(skips[:-1]), strict=True):
        x = layers.Concatenate()([up(x), skip])
    out = layers.Conv2DTranspose(3, 4, strides=2, padding="same", kernel_initializer=INIT, activation="tanh")(x)
    return keras.Model(frame, out)


def discriminator(size: int = 256) -> keras.Model:
    inp, tgt = keras.Input((size, size, 3)), keras.Input((size, size, 3))
    x = layers.Concatenate()([inp, tgt])
    x = _down(256)(_down(128)(_down(64, False)(x)))
    x = layers.Conv2D(512, 4, kernel_initializer=INIT, use_bias=False)(layers.ZeroPadding2D()(x))
    x = layers.LeakyReLU(0.2)(layers.BatchNormalization()(x))
    x = layers.Conv2D(1, 4, kernel_initializer=INIT)(layers.ZeroPadding2D()(x))
    return keras.Model([inp, tgt], x)


def make_step(size: int = 256):
    """A compiled train step of the tutorial's shape, and the models it trains."""
    gen, disc = generator(size), discriminator(size)
    gen_opt, disc_opt = keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)

    @tf.function
    def step(inp, tgt):
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            fake = gen(inp, training=True)
            real_logits, fake_logits = disc([inp, tgt], training=True), disc([inp, fake], training=True)
            gen_loss = bce(tf.ones_like(fake_logits), fake_logits) + 100 * tf.reduce_mean(tf.abs(tgt - fake))
            disc_loss = bce(tf.ones_like(real_logits), real_logits) + bce(tf.zeros_like(fake_logits), fake_logits)
        gen_opt.apply_gradients(zip(gen_tape.gradient(gen_loss, gen.trainable_variables),
                                    gen.trainable_variables, strict=True))
        disc_opt.apply_gradients(zip(disc_tape.gradient(disc_loss, disc.trainable_variables),
                                     disc.trainable_variables, strict=True))
        return gen_loss, disc_loss

    return step
