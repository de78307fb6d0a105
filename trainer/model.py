"""pix2pix (Isola et al., 2017): a U-Net generator and a 70x70 PatchGAN discriminator.

Normalization is instance norm (`GroupNormalization(groups=-1)`): it is what pix2pix's "batch statistics
at test time" means at batch 1, and it computes the same thing in training, inference and ONNX. BatchNorm
run with `training=False` is what turned the origin story's frames black. The 1x1 bottleneck has no norm:
normalizing a single value per channel zeroes it.
"""

from __future__ import annotations

import keras
from keras import layers

from infer.config import Config


def _init() -> keras.initializers.Initializer:
    """N(0, 0.02) as in pix2pix, a new one per layer: a Keras 3 initializer without a seed object draws the
    same values on every call, so one shared instance would start every same-shaped layer identical."""
    return keras.initializers.RandomNormal(0.0, 0.02)


def _filters(config: Config, level: int) -> int:
    return config.model.filters * min(2**level, 8)


def _down(x, filters: int, norm: bool, name: str):
    # No bias, as in the TF tutorial: a norm would cancel it, and without one Grappler's conv+bias+LeakyReLU
    # fusion fails on the bottleneck (a logged "remapper failed" error).
    x = layers.Conv2D(filters, 4, strides=2, padding="same", kernel_initializer=_init(), use_bias=False,
                      name=f"{name}_conv")(x)
    if norm:
        x = layers.GroupNormalization(groups=-1, epsilon=1e-5, name=f"{name}_norm")(x)
    return layers.LeakyReLU(0.2, name=f"{name}_act")(x)


def generator(config: Config) -> keras.Model:
    """Frame t in, frame t + stride out, both in [-1, 1]."""
    height, width = config.frame_size
    depth = config.model.depth
    frame = keras.Input((height, width, 3), name="frame")
    x, skips = frame, []
    for level in range(depth):
        x = _down(x, _filters(config, level), norm=0 < level < depth - 1, name=f"down{level}")
        skips.append(x)
    for i, level in enumerate(range(depth - 2, -1, -1)):
        x = layers.Conv2DTranspose(_filters(config, level), 4, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=_init(), name=f"up{i}_conv")(x)
        x = layers.GroupNormalization(groups=-1, epsilon=1e-5, name=f"up{i}_norm")(x)
        if i < 3 and config.model.dropout > 0:
            x = layers.Dropout(config.model.dropout, name=f"up{i}_dropout")(x)
        x = layers.ReLU(name=f"up{i}_act")(x)
        x = layers.Concatenate(name=f"up{i}_skip")([x, skips[level]])
    x = layers.Conv2DTranspose(3, 4, strides=2, padding="same", kernel_initializer=_init(), name="out_conv")(x)
    next_frame = layers.Activation("tanh", dtype="float32", name="next_frame")(x)  # float32 under mixed precision
    return keras.Model(frame, next_frame, name="generator")


def discriminator(config: Config) -> keras.Model:
    """Logits per 70x70 patch (at 64 filters): is this target a real continuation of this input?"""
    height, width = config.frame_size
    inp = keras.Input((height, width, 3), name="input_frame")
    tgt = keras.Input((height, width, 3), name="target_frame")
    x = layers.Concatenate(name="pair")([inp, tgt])
    for level in range(3):
        x = _down(x, _filters(config, level), norm=level > 0, name=f"d{level}")
    x = layers.ZeroPadding2D(name="pad0")(x)
    x = layers.Conv2D(_filters(config, 3), 4, use_bias=False, kernel_initializer=_init(), name="d3_conv")(x)
    x = layers.GroupNormalization(groups=-1, epsilon=1e-5, name="d3_norm")(x)
    x = layers.LeakyReLU(0.2, name="d3_act")(x)
    x = layers.ZeroPadding2D(name="pad1")(x)
    x = layers.Conv2D(1, 4, kernel_initializer=_init(), name="patch_logits_conv")(x)
    logits = layers.Activation("linear", dtype="float32", name="patch_logits")(x)
    return keras.Model([inp, tgt], logits, name="discriminator")
