"""The generator written out as an ONNX graph, one Keras layer at a time.

Channels-first inside, where ONNX Runtime's convolutions and its fused InstanceNormalization are fastest,
and NHWC at the two ends, as the model's contract says. Written directly rather than through tf2onnx: that
converter spells each instance norm as a dozen primitive ops between two transposes (about a tenth of
CPU inference time) and needs about 9 GB of memory for the full 54.4 M-parameter generator.

Only the layers `trainer/model.py` uses are known here; any other one is refused by name, and export's
parity check compares every graph with Keras on real frames.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from trainer.model import AddToFrame, KeepOrRedraw, KeepWarpOrDraw


class NoWriter(ValueError):
    """A layer, or an option of one, that this writer does not translate (epilogue-export --converter auto
    then converts with tf2onnx instead)."""


class Graph:
    """Nodes and weights in the order they are written."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []

    def node(self, op: str, inputs: list[str], name: str, output: str | None = None, **attributes) -> str:
        """A node named `name`; its output is `name/output` unless given."""
        output = output or f"{name}/output"
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attributes))
        return output

    def weight(self, array: np.ndarray, name: str) -> str:
        """Floats as float32 (whatever the training precision); integers (sizes, axes) as int64."""
        dtype = np.int64 if np.issubdtype(np.asarray(array).dtype, np.integer) else np.float32
        self.weights.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype), name))
        return name


def _same_pads(kernel: int, stride: int, size: int) -> tuple[int, int]:
    """Keras' (TensorFlow's) "same" padding of one axis: the odd pixel, if any, goes after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _check_plain(layer: keras.layers.Layer) -> None:
    """Refuse the convolution options the writer doesn't translate, rather than write a wrong graph."""
    config = layer.get_config()
    plain = {"activation": "linear", "dilation_rate": (1, 1), "data_format": "channels_last", "groups": 1,
             "output_padding": None}
    for option, value in plain.items():
        got = config.get(option, value)
        if (tuple(got) if isinstance(got, list) else got) != value:
            raise NoWriter(f"export: layer {layer.name} has {option}={got!r}; the ONNX writer knows {value!r} only")


def _conv(graph: Graph, layer: keras.layers.Conv2D, inputs: list[str]) -> str:
    _check_plain(layer)
    (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
    pads = [(0, 0), (0, 0)]
    if layer.padding == "same":
        pads = [_same_pads(k, s, n) for k, s, n in zip((kh, kw), (sh, sw), layer.input.shape[1:3], strict=True)]
    weights = [graph.weight(layer.kernel.numpy().transpose(3, 2, 0, 1), f"{layer.name}/kernel")]  # HWIO -> OIHW
    if layer.use_bias:
        weights.append(graph.weight(layer.bias.numpy(), f"{layer.name}/bias"))
    return graph.node("Conv", inputs + weights, layer.name, kernel_shape=[kh, kw], strides=[sh, sw],
                      pads=[pads[0][0], pads[1][0], pads[0][1], pads[1][1]])


def _conv_transpose(graph: Graph, layer: keras.layers.Conv2DTranspose, inputs: list[str]) -> str:
    _check_plain(layer)
    (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
    if layer.padding != "same" or kh < sh or kw < sw:
        raise NoWriter(f"export: layer {layer.name} has padding {layer.padding!r} with kernel {layer.kernel_size} "
                         f"and strides {layer.strides}; the ONNX writer knows 'same' with kernel >= stride")
    # "same" makes the output exactly stride x the input: kernel - stride pixels are cropped, the odd one after.
    top, left = (kh - sh) // 2, (kw - sw) // 2
    weights = [graph.weight(layer.kernel.numpy().transpose(3, 2, 0, 1), f"{layer.name}/kernel")]  # HWOI -> IOHW
    if layer.use_bias:
        weights.append(graph.weight(layer.bias.numpy(), f"{layer.name}/bias"))
    return graph.node("ConvTranspose", inputs + weights, layer.name, kernel_shape=[kh, kw], strides=[sh, sw],
                      pads=[top, left, kh - sh - top, kw - sw - left])


def _instance_norm(graph: Graph, layer: keras.layers.GroupNormalization, inputs: list[str]) -> str:
    channels = layer.input.shape[-1]
    if layer.axis not in (-1, 3):
        raise NoWriter(f"export: layer {layer.name} normalizes axis {layer.axis}; the ONNX writer knows channels")
    if layer.groups not in (-1, channels):
        raise NoWriter(f"export: layer {layer.name} normalizes {layer.groups} groups; the ONNX writer knows "
                         "instance norm only (groups=-1)")
    scale = layer.gamma.numpy() if layer.scale else np.ones(channels)
    shift = layer.beta.numpy() if layer.center else np.zeros(channels)
    return graph.node("InstanceNormalization", inputs + [graph.weight(scale, f"{layer.name}/gamma"),
                                                         graph.weight(shift, f"{layer.name}/beta")],
                      layer.name, epsilon=float(layer.epsilon))


def _leaky_relu(graph: Graph, layer: keras.layers.LeakyReLU, inputs: list[str]) -> str:
    return graph.node("LeakyRelu", inputs, layer.name, alpha=float(layer.negative_slope))


def _relu(graph: Graph, layer: keras.layers.ReLU, inputs: list[str]) -> str:
    if layer.max_value is not None or layer.negative_slope or layer.threshold:
        raise NoWriter(f"export: layer {layer.name} is a ReLU with a cap, slope or threshold; not known here")
    return graph.node("Relu", inputs, layer.name)


def _concatenate(graph: Graph, layer: keras.layers.Concatenate, inputs: list[str]) -> str:
    if layer.axis not in (-1, 3):
        raise NoWriter(f"export: layer {layer.name} concatenates on axis {layer.axis}; channels only here")
    return graph.node("Concat", inputs, layer.name, axis=1)


def _activation(graph: Graph, layer: keras.layers.Activation, inputs: list[str]) -> str:
    name = layer.activation.__name__
    if name == "linear":
        return inputs[0]
    if name != "tanh":
        raise NoWriter(f"export: layer {layer.name} applies {name}; the ONNX writer knows tanh and linear")
    return graph.node("Tanh", inputs, layer.name)


def _upsample(graph: Graph, layer: keras.layers.UpSampling2D, inputs: list[str]) -> str:
    if layer.interpolation != "nearest" or layer.data_format != "channels_last":
        raise NoWriter(f"export: layer {layer.name} upsamples with {layer.interpolation!r}; nearest only here")
    scales = graph.weight(np.array([1, 1, *layer.size], np.float32), f"{layer.name}/scales")
    # Keras repeats each pixel: "asymmetric" coordinates with floor rounding are exactly that.
    return graph.node("Resize", [inputs[0], "", scales], layer.name, mode="nearest",
                      coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def _add_to_frame(graph: Graph, layer: AddToFrame, inputs: list[str]) -> str:
    """The residual head: frame + change, clipped to [-1, 1]."""
    total = graph.node("Add", inputs, f"{layer.name}/add")
    low, high = graph.weight(np.array(-1.0), f"{layer.name}/low"), graph.weight(np.array(1.0), f"{layer.name}/high")
    return graph.node("Clip", [total, low, high], layer.name)


def _keep_or_redraw(graph: Graph, layer: KeepOrRedraw, inputs: list[str]) -> str:
    """The mask head: keep * frame + (1 - keep) * drawn, with drawn = tanh(channels 0-2) and keep = sigmoid(channel
    3), spelled as in Keras so that a kept pixel stays exact (also in float16). Slices, not Split: opset 10 on."""
    raw, frame = inputs
    name = layer.name

    def channels(first: int, last: int) -> str:
        bounds = [graph.weight(np.array([v]), f"{name}/{what}_{first}") for what, v in (("from", first), ("to", last))]
        return graph.node("Slice", [raw, *bounds, graph.weight(np.array([1]), f"{name}/axis_{first}")],
                          f"{name}/channels_{first}")

    drawn = graph.node("Tanh", [channels(0, 3)], f"{name}/drawn")
    keep = graph.node("Sigmoid", [channels(3, 4)], f"{name}/keep")
    redraw = graph.node("Sub", [graph.weight(np.array(1.0), f"{name}/one"), keep], f"{name}/redraw")
    kept = graph.node("Mul", [keep, frame], f"{name}/kept")
    return graph.node("Add", [kept, graph.node("Mul", [redraw, drawn], f"{name}/redrawn")], name)


def _keep_warp_or_draw(graph: Graph, layer: KeepWarpOrDraw, inputs: list[str]) -> str:
    """The warp head: weights (softmax over channels 3-5) for the frame kept, the frame warped and the drawn frame
    (tanh of channels 0-2). The warp is GridSample (bilinear, border, align_corners: pixel centres at -1 and 1, as
    Keras' clamped gather), its grid the pixels' own coordinates plus the flow scaled to that range; the frame is
    already channels-first, the grid goes channels-last."""
    raw, flow, frame = inputs
    name = layer.name
    height, width = layer.input[2].shape[1:3]

    def channels(source: str, first: int, last: int, what: str) -> str:
        bounds = [graph.weight(np.array([v]), f"{name}/{what}_{end}") for end, v in (("from", first), ("to", last))]
        return graph.node("Slice", [source, *bounds, graph.weight(np.array([1]), f"{name}/{what}_axis")],
                          f"{name}/{what}")

    drawn = graph.node("Tanh", [channels(raw, 0, 3, "raw_drawn")], f"{name}/drawn")
    weights = graph.node("Softmax", [channels(raw, 3, 6, "raw_weights")], f"{name}/weights", axis=1)
    rows, cols = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    base = graph.weight(np.stack([cols, rows], axis=-1)[None], f"{name}/base_grid")
    scale = graph.weight(np.array([2 / max(width - 1, 1), 2 / max(height - 1, 1)]), f"{name}/flow_scale")
    grid = graph.node("Transpose", [flow], f"{name}/flow_nhwc", perm=[0, 2, 3, 1])
    grid = graph.node("Add", [graph.node("Mul", [grid, scale], f"{name}/flow_scaled"), base], f"{name}/grid")
    moved = graph.node("GridSample", [frame, grid], f"{name}/moved", mode="bilinear", padding_mode="border",
                       align_corners=1)
    parts = [graph.node("Mul", [channels(weights, k, k + 1, f"weight{k}"), source], f"{name}/part{k}")
             for k, source in enumerate((frame, moved, drawn))]
    return graph.node("Add", [graph.node("Add", parts[:2], f"{name}/kept_or_moved"), parts[2]], name)


def _identity(graph: Graph, layer: keras.layers.Layer, inputs: list[str]) -> str:
    """Dropout: nothing at inference."""
    return inputs[0]


WRITERS: dict[type, Callable[[Graph, keras.layers.Layer, list[str]], str]] = {
    keras.layers.Conv2D: _conv, keras.layers.Conv2DTranspose: _conv_transpose,
    keras.layers.GroupNormalization: _instance_norm, keras.layers.LeakyReLU: _leaky_relu,
    keras.layers.ReLU: _relu, keras.layers.Concatenate: _concatenate, keras.layers.Activation: _activation,
    keras.layers.Dropout: _identity, keras.layers.UpSampling2D: _upsample, AddToFrame: _add_to_frame,
    KeepOrRedraw: _keep_or_redraw, KeepWarpOrDraw: _keep_warp_or_draw,
}


def to_onnx(generator: keras.Model, output_name: str, opset: int) -> onnx.ModelProto:
    """The generator as an ONNX model: NHWC float32 frames in (one input per context frame, named as in
    Keras) and out, any batch size."""
    graph = Graph()
    (next_frame,) = generator.outputs
    names = {id(frame): graph.node("Transpose", [frame.name], f"{frame.name}_to_nchw", perm=[0, 3, 1, 2])
             for frame in generator.inputs}
    for layer in generator.operations:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        writer = WRITERS.get(type(layer))
        if writer is None:
            raise NoWriter(f"export: layer {layer.name} ({type(layer).__name__}) has no ONNX writer in "
                             "export/onnx_graph.py")
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        names[id(layer.output)] = writer(graph, layer, [names[id(tensor)] for tensor in inputs])
    graph.node("Transpose", [names[id(next_frame)]], "to_nhwc", output_name, perm=[0, 2, 3, 1])
    body = helper.make_graph(
        graph.nodes, generator.name, initializer=graph.weights,
        inputs=[helper.make_tensor_value_info(frame.name, TensorProto.FLOAT, ["batch", *frame.shape[1:]])
                for frame in generator.inputs],
        outputs=[helper.make_tensor_value_info(output_name, TensorProto.FLOAT,
                                               ["batch", *next_frame.shape[1:]])])
    opsets = [helper.make_opsetid("", opset)]
    # The oldest IR version the opset allows: the onnx package would stamp its newest, which older ONNX
    # Runtime builds (a runner installed apart from the trainer) refuse to load.
    proto = helper.make_model(body, opset_imports=opsets, producer_name="epilogue",
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(proto)
    return proto
