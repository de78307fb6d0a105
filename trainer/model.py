"""pix2pix (Isola et al., 2017): a U-Net generator and a 70x70 PatchGAN discriminator, both seeing the last
`context` frames (oldest to newest, stacked on channels); one frame is plain pix2pix.

Normalization is instance norm (`GroupNormalization(groups=-1)`): it is what pix2pix's "batch statistics
at test time" means at batch 1, and it computes the same thing in training, inference and ONNX. BatchNorm
run with `training=False` is what turned the origin story's frames black. The 1x1 bottleneck has no norm:
normalizing a single value per channel zeroes it.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from infer.config import Config
from infer.contract import input_names


@keras.saving.register_keras_serializable(package="epilogue")
class AddToFrame(layers.Layer):
    """The residual head: the newest context frame plus the predicted change, kept in [-1, 1]. A still
    background costs the generator nothing; motion is what it has to produce."""

    def call(self, inputs):
        change, frame = inputs
        return keras.ops.clip(frame + change, -1.0, 1.0)


@keras.saving.register_keras_serializable(package="epilogue")
class KeepOrRedraw(layers.Layer):
    """The mask head: from four channels, a drawn frame (tanh) and a mask (sigmoid) that keeps the newest
    context frame where it is 1. Unlike the residual head's added change, which piles up over a rollout,
    a kept pixel is exact and a redrawn one is fresh: an error is carried over at most in part and fades."""

    def call(self, inputs):
        raw, frame = inputs
        drawn, keep = keras.ops.tanh(raw[..., :3]), keras.ops.sigmoid(raw[..., 3:])
        return keep * frame + (1.0 - keep) * drawn


@keras.saving.register_keras_serializable(package="epilogue")
class KeepWarpOrDraw(layers.Layer):
    """The warp head: from six channels, a drawn frame (tanh) and three weights per pixel (softmax) for keeping the
    newest frame exactly, taking it warped by the flow (2 channels, in pixels: the newest frame is sampled at
    (x + dx, y + dy)), or taking the drawn frame. A mask head can only redraw a pixel that moves, and a redraw
    learned under L1 is the blur of where it might be; a warp moves it. The exact keep stays a choice of its own:
    a warp that must also hold the still background resamples it at every step, and it flows away."""

    def call(self, inputs):
        raw, flow, frame = inputs
        drawn, weights = keras.ops.tanh(raw[..., :3]), keras.ops.softmax(raw[..., 3:], axis=-1)
        moved = warp(frame, flow)
        return weights[..., :1] * frame + weights[..., 1:2] * moved + weights[..., 2:] * drawn


def warp(frame, flow):
    """`frame` sampled at each pixel plus `flow` ([..., 0] across, [..., 1] down, in pixels): bilinear, coordinates
    clamped to the border, gathered in float32 (half precision would round sub-pixel motion away); differentiable in
    the flow through the bilinear weights. ONNX's GridSample (bilinear, border, align_corners) computes the same."""
    batch, height, width, channels = keras.ops.shape(frame)
    rows, cols = keras.ops.meshgrid(keras.ops.arange(height, dtype="float32"),
                                    keras.ops.arange(width, dtype="float32"), indexing="ij")
    x = keras.ops.clip(cols + flow[..., 0], 0.0, width - 1.0)
    y = keras.ops.clip(rows + flow[..., 1], 0.0, height - 1.0)
    x0, y0 = keras.ops.floor(x), keras.ops.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    flat = keras.ops.reshape(frame, (batch, height * width, channels))

    def at(row, col):
        index = keras.ops.cast(row * width + col, "int32")
        index = keras.ops.broadcast_to(keras.ops.reshape(index, (batch, height * width, 1)),
                                       (batch, height * width, channels))
        return keras.ops.reshape(keras.ops.take_along_axis(flat, index, axis=1), (batch, height, width, channels))

    x1, y1 = keras.ops.minimum(x0 + 1, width - 1.0), keras.ops.minimum(y0 + 1, height - 1.0)
    top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx
    bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
    return top * (1 - fy) + bottom * fy


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


def _up(x, filters: int, config: Config, name: str, bias: bool = False, zero: bool = False, dtype: str | None = None):
    """2x larger: a 4x4 transposed convolution, or nearest-neighbour doubling then a 3x3 convolution (no
    checkerboard pattern to compound over a long rollout: Odena et al., 2016). `zero`: starts out all zeros."""
    init = keras.initializers.Zeros() if zero else _init()
    if config.model.upsample == "transpose":
        return layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=bias, kernel_initializer=init,
                                      dtype=dtype, name=f"{name}_conv")(x)
    x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_resize")(x)
    return layers.Conv2D(filters, 3, padding="same", use_bias=bias, kernel_initializer=init, dtype=dtype,
                         name=f"{name}_conv")(x)


def _context(config: Config, names: list[str]) -> tuple[list, object]:
    """One input per context frame, and the frames side by side on channels."""
    height, width = config.frame_size
    frames = [keras.Input((height, width, 3), name=name) for name in names]
    return frames, frames[0] if len(frames) == 1 else layers.Concatenate(name=f"{names[-1]}_context")(frames)


def generator(config: Config) -> keras.Model:
    """The last `context` frames in (oldest first), the frame `stride` later out, all in [-1, 1]."""
    depth = config.model.depth
    frames, x = _context(config, input_names(config.model.context))
    skips = []
    for level in range(depth):
        x = _down(x, _filters(config, level), norm=0 < level < depth - 1, name=f"down{level}")
        skips.append(x)
    for i, level in enumerate(range(depth - 2, -1, -1)):
        x = _up(x, _filters(config, level), config, f"up{i}")
        x = layers.GroupNormalization(groups=-1, epsilon=1e-5, name=f"up{i}_norm")(x)
        if i < 3 and config.model.dropout > 0:
            x = layers.Dropout(config.model.dropout, name=f"up{i}_dropout")(x)
        x = layers.ReLU(name=f"up{i}_act")(x)
        x = layers.Concatenate(name=f"up{i}_skip")([x, skips[level]])
    head = config.model.head
    features, x = x, _up(x, {"mask": 4, "warp": 6}.get(head, 3), config, "out", bias=True)
    if head == "mask":
        next_frame = KeepOrRedraw(dtype="float32", name="next_frame")([x, frames[-1]])
    elif head == "warp":  # the flow from a convolution of its own, in float32, starting still
        flow = _up(features, 2, config, "flow", bias=True, zero=True, dtype="float32")
        next_frame = KeepWarpOrDraw(dtype="float32", name="next_frame")([x, flow, frames[-1]])
    elif head == "residual":
        change = layers.Activation("tanh", dtype="float32", name="change")(x)
        next_frame = AddToFrame(dtype="float32", name="next_frame")([change, frames[-1]])
    else:
        next_frame = layers.Activation("tanh", dtype="float32", name="next_frame")(x)  # float32 under mixed precision
    model = keras.Model(frames, next_frame, name="generator")
    if head in ("mask", "warp"):
        _start_keeping(model.get_layer("out_conv"), config.model.keep_init, head)
    return model


def _start_keeping(out: layers.Layer, share: float, head: str) -> None:
    """The keep channel's bias, so that before training the head keeps `share` of the newest frame everywhere (the
    warp head shares the rest evenly between warping and drawing). Near 1, the untrained model is nearly a copy of
    its input and training learns what to redraw (measured in README, Quality: `plain_mask_unroll4_keep`)."""
    if head == "mask":
        out.bias.assign([0.0, 0.0, 0.0, math.log(share / (1.0 - share))])
    else:
        out.bias.assign([0.0, 0.0, 0.0, math.log(2 * share / (1.0 - share)), 0.0, 0.0])


def discriminator(config: Config, judged: int = 1) -> keras.Model:
    """Logits per 70x70 patch (at 64 filters): are these `judged` frames a real continuation of these context
    frames? Seeing several frames, it can tell a frozen or reversed motion from a real one; the sequence
    discriminator (`judged` > 1) sees a chain of the generator's own steps, so a chain that stalls, fades or
    flickers looks fake to it."""
    height, width = config.frame_size
    context = config.model.context
    names = ["input_frame"] if context == 1 else [f"context_{j}" for j in range(context)]
    names += ["target_frame"] if judged == 1 else [f"target_{j}" for j in range(judged)]
    inputs = [keras.Input((height, width, 3), name=name) for name in names]
    x = layers.Concatenate(name="pair")(inputs)
    for level in range(3):
        x = _down(x, _filters(config, level), norm=level > 0, name=f"d{level}")
    x = layers.ZeroPadding2D(name="pad0")(x)
    x = layers.Conv2D(_filters(config, 3), 4, use_bias=False, kernel_initializer=_init(), name="d3_conv")(x)
    x = layers.GroupNormalization(groups=-1, epsilon=1e-5, name="d3_norm")(x)
    x = layers.LeakyReLU(0.2, name="d3_act")(x)
    x = layers.ZeroPadding2D(name="pad1")(x)
    x = layers.Conv2D(1, 4, kernel_initializer=_init(), name="patch_logits_conv")(x)
    logits = layers.Activation("linear", dtype="float32", name="patch_logits")(x)
    return keras.Model(inputs, logits, name="discriminator" if judged == 1 else "sequence_discriminator")
