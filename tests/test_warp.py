"""The warp head: its warp moves pixels exactly as asked, its ONNX graph (GridSample) matches Keras for a step and
for a 600-step rollout, its float16 variant keeps GridSample in float32, and it trains and exports."""

import numpy as np
import pytest

from infer.config import resolve


@pytest.fixture(scope="module")
def moving_generator(square_video, tmp_path_factory):
    """A tiny warp-head generator trained on the moving square and exported (export checks a step and 10 fed-back
    steps), then made to move: its flow, near zero after so short a training, shifted by (0.7, -1.3) pixels."""
    from export.onnx_export import export, find_checkpoint, load_generator
    from trainer.train import train

    run = tmp_path_factory.mktemp("warp") / "run"
    train(resolve("tiny", None, {"data": {"videos": (str(square_video),)}, "model": {"head": "warp"}}), run)
    assert export(run, "latest").is_file()
    generator, _ = load_generator(run, find_checkpoint(run, "latest"))
    flow = generator.get_layer("flow_conv")
    flow.bias.assign(flow.bias.numpy() + np.array([0.7, -1.3], np.float32))
    return generator


def test_the_warp_moves_by_whole_and_half_pixels_and_holds_the_border():
    from trainer.model import warp

    frame = np.random.default_rng(1).uniform(-1, 1, (2, 6, 9, 3)).astype(np.float32)
    flow = np.zeros((2, 6, 9, 2), np.float32)
    np.testing.assert_array_equal(np.asarray(warp(frame, flow)), frame)  # still: the frame itself
    flow[..., 0] = 2.0  # each pixel takes the one two to its right; the last columns repeat the edge
    expected = np.concatenate([frame[:, :, 2:], frame[:, :, -1:], frame[:, :, -1:]], axis=2)
    np.testing.assert_allclose(np.asarray(warp(frame, flow)), expected, atol=1e-6)
    flow[..., 0], flow[..., 1] = 0.0, -0.5  # half a pixel up: the mean of a pixel and the one above it
    expected = (frame + np.concatenate([frame[:, :1], frame[:, :-1]], axis=1)) / 2
    np.testing.assert_allclose(np.asarray(warp(frame, flow)), expected, atol=1e-6)


def test_the_untrained_warp_head_starts_still_and_keeps_its_share_of_the_frame():
    from trainer import model

    generator = model.generator(resolve("tiny", None, {"model": {"head": "warp", "keep_init": 0.9}}))
    assert not np.any(generator.get_layer("flow_conv").kernel.numpy())
    keep, moved, drawn = np.exp(generator.get_layer("out_conv").bias.numpy()[3:])
    assert keep / (keep + moved + drawn) == pytest.approx(0.9) and moved == drawn


def test_the_onnx_graph_matches_keras_for_a_step_and_for_600_fed_back_steps(moving_generator):
    import onnxruntime as ort

    from export.onnx_graph import to_onnx
    from infer.roll import roll

    proto = to_onnx(moving_generator, "next_frame", 17)
    grid = next(n for n in proto.graph.node if n.op_type == "GridSample")
    assert {a.name: onnx_value(a) for a in grid.attribute} == {"mode": b"bilinear", "padding_mode": b"border",
                                                              "align_corners": 1}
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    start = np.random.default_rng(2).uniform(-1, 1, (3, 64, 64, 3)).astype(np.float32)
    # (An untrained generator is no test of 600 steps: its random weights amplify float32 round-off into 0.2 by
    # step 100 whatever the head, even with the flow at zero.)
    keras_step = lambda frames: moving_generator(frames, training=False).numpy()  # noqa: E731
    onnx_step = lambda frames: session.run(None, {"frame": frames[0]})[0]  # noqa: E731
    assert np.abs(onnx_step([start]) - keras_step([start])).max() < 1e-5
    *_, a = roll(keras_step, [start[:1]], 600)
    *_, b = roll(onnx_step, [start[:1]], 600)
    assert np.abs(a - b).max() < 1e-4


def onnx_value(attribute):
    import onnx

    return onnx.helper.get_attribute_value(attribute)


def test_the_float16_variant_keeps_gridsample_in_float32(moving_generator):
    import onnx
    import onnxruntime as ort

    from export.onnx_export import to_fp16
    from export.onnx_graph import to_onnx

    half = to_fp16(to_onnx(moving_generator, "next_frame", 17))
    made = {o: n for n in half.graph.node for o in n.output}
    grid = next(n for n in half.graph.node if n.op_type == "GridSample")
    for name in grid.input:  # each input cast up to float32 just before it
        cast = made[name]
        assert cast.op_type == "Cast" and onnx.helper.get_attribute_value(cast.attribute[0]) == onnx.TensorProto.FLOAT
    session = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"])
    frame = np.random.default_rng(3).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    assert np.abs(session.run(None, {"frame": frame})[0] - moving_generator(frame, training=False).numpy()).max() < 0.05
