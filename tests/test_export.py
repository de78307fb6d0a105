"""Export: a self-describing ONNX model whose parity with Keras is checked, and clear errors."""

import json
import shutil

import onnx
import pytest

from export.cli import main
from export.onnx_export import export
from infer.config import Config
from infer.contract import Contract
from infer.runner import load


def test_round_trip_metadata_and_parity(square_model, square_run):
    proto = onnx.load(str(square_model))
    onnx.checker.check_model(proto)
    metadata = {p.key: p.value for p in proto.metadata_props}
    contract = Contract.from_metadata(metadata, square_model)
    record = json.loads((square_run / "config.json").read_text())
    assert contract.frame_size == (64, 64) and contract.value_range == (-1.0, 1.0) and contract.layout == "NHWC"
    assert contract.stride == 2 and contract.context_frames == 1 and contract.fit == "squash"
    assert contract.source_fps == 24 and contract.source_size == (64, 64) and contract.source_frames == 160
    assert contract.config_fingerprint == record["fingerprint"]
    assert contract.config == Config.from_dict(record["config"])  # typed, read back as today's
    assert contract.source_sha256 == record["videos"][0]["sha256"] and contract.checkpoint == "best"
    best = json.loads((square_run / "best" / "best.json").read_text())["step"]
    assert best in (300, 600) and contract.training_step == best  # the best trained checkpoint
    assert contract.parity["step_max_abs_diff"] < 1e-4 and contract.parity_provider == "CPUExecutionProvider"
    assert contract.splits["test"] == [136, 160]
    assert [i.name for i in proto.graph.input] == ["frame"] and [o.name for o in proto.graph.output] == ["next_frame"]
    assert load(square_model, "cpu").contract == contract


def contract_of(path):
    return Contract.from_metadata({p.key: p.value for p in onnx.load(str(path)).metadata_props}, path)


def exit_message(capsys, monkeypatch, *args):
    monkeypatch.setattr("sys.argv", ["epilogue-export", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_a_run_without_checkpoints_is_a_clear_error(square_run, tmp_path, capsys, monkeypatch):
    empty = tmp_path / "fresh"
    empty.mkdir()
    shutil.copy(square_run / "config.json", empty / "config.json")
    assert "has no latest checkpoint; train it first" in exit_message(capsys, monkeypatch, empty, "--checkpoint",
                                                                      "latest")
    assert "is not a run directory" in exit_message(capsys, monkeypatch, tmp_path)


def test_best_before_the_first_trained_eval_is_refused_in_one_line(square_run, tmp_path, capsys, monkeypatch):
    early = tmp_path / "early"
    shutil.copytree(square_run / "checkpoints", early / "checkpoints")
    shutil.copy(square_run / "config.json", early / "config.json")
    assert exit_message(capsys, monkeypatch, early) == (
        f"error: run {early} has no best checkpoint (best/ holds one once an eval of a trained step scores finite); "
        "export with --checkpoint latest, or train until the first eval")
    assert not (early / "export").exists()


def test_a_checkpoint_from_another_config_is_a_clear_error(square_run, tmp_path, capsys, monkeypatch):
    other = tmp_path / "other"
    shutil.copytree(square_run / "checkpoints", other / "checkpoints")
    record = json.loads((square_run / "config.json").read_text())
    record["config"]["model"]["filters"] = 16
    (other / "config.json").write_text(json.dumps(record))
    message = exit_message(capsys, monkeypatch, other, "--checkpoint", "latest")
    assert "does not fit the config" in message


def moved(square_run, tmp_path, record=True):
    """A copy of the run whose training video is no longer where it was (`record`: with what training recorded
    for export; without it, as a run begun before it was recorded)."""
    run = tmp_path / "run"
    for folder in ("checkpoints", "best"):
        shutil.copytree(square_run / folder, run / folder)
    saved = json.loads((square_run / "config.json").read_text())
    saved["videos"][0]["path"] = str(tmp_path / "gone.mp4")
    if record:
        shutil.copy(square_run / "parity_frames.npz", run)
    else:
        del saved["videos"][0]["splits"]
    (run / "config.json").write_text(json.dumps(saved))
    return run


def test_export_reads_what_training_recorded_and_works_with_the_video_moved_away(square_run, tmp_path, capsys):
    import numpy as np

    recorded = json.loads((square_run / "config.json").read_text())["videos"][0]["splits"]
    assert recorded == {"train": [0, 112], "val": [112, 136], "test": [136, 160]}
    with np.load(square_run / "parity_frames.npz") as saved:
        frames = saved["contexts"]
    assert frames.shape == (4, 1, 64, 64, 3) and frames.dtype == np.uint8
    contract = contract_of(export(moved(square_run, tmp_path), "latest"))
    assert contract.splits == recorded and contract.source_video == str(tmp_path / "gone.mp4")
    assert contract.parity["step_max_abs_diff"] < 1e-4 and "note:" not in capsys.readouterr().out


def test_a_run_begun_before_the_record_reads_its_video_again_or_says_in_one_line_it_is_gone(
        square_run, square_video, tmp_path, capsys, monkeypatch):
    import numpy as np

    from trainer import rundir

    old = moved(square_run, tmp_path, record=False)
    assert rundir.recorded_splits(old) == {"train": [0, 112], "val": [112, 136], "test": [136, 160]}
    assert exit_message(capsys, monkeypatch, old, "--checkpoint", "latest") == (
        f"error: run {old} began before its parity frames were recorded, and its video {tmp_path / 'gone.mp4'} is "
        "gone; put it back there to export")
    shutil.copy(square_video, tmp_path / "gone.mp4")  # put back
    with np.load(square_run / "parity_frames.npz") as saved:
        np.testing.assert_array_equal(rundir.recorded_parity_frames(old), saved["contexts"])
    assert capsys.readouterr().out == (f"note: run {old} began before its parity frames were recorded: reading them "
                                       f"from {tmp_path / 'gone.mp4'}\n")


def test_an_unwritable_output_is_a_clear_error(square_run, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "is not writable" in exit_message(capsys, monkeypatch, square_run, "--out", blocker / "g.onnx")


def test_a_failed_parity_writes_nothing(square_run, tmp_path, monkeypatch):
    from export import onnx_export
    from infer.errors import UserError

    monkeypatch.setattr(onnx_export, "STEP_TOLERANCE", -1.0)
    out = tmp_path / "g.onnx"
    with pytest.raises(UserError, match="differs from Keras"):
        export(square_run, out=out)
    assert list(tmp_path.iterdir()) == []


def test_fp16_variant_keeps_float32_io_and_says_parity_is_unchecked(square_run, tmp_path, capsys):
    export(square_run, out=tmp_path / "g.onnx", fp16=True)
    half = onnx.load(str(tmp_path / "g_fp16.onnx"))
    assert half.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert "parity unchecked" in capsys.readouterr().err


def on_cuda(monkeypatch, step: float, rollout: float) -> None:
    """As on a GPU machine: a CUDA provider, where the float16 variant's parity is `step` and `rollout`."""
    from export import onnx_export

    checked = onnx_export.check_parity

    def parity(generator, proto, frames, providers):
        if providers == ["CUDAExecutionProvider"]:
            return {"step_max_abs_diff": step, "rollout_max_abs_diff": rollout}
        return checked(generator, proto, frames, providers)

    monkeypatch.setattr(onnx_export, "check_parity", parity)
    monkeypatch.setattr(onnx_export.ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])


@pytest.mark.parametrize(("step", "rollout"), [(0.02, 0.01), (0.005, 0.2)])
def test_an_fp16_variant_beyond_tolerance_on_cuda_writes_nothing(square_run, tmp_path, monkeypatch, step, rollout):
    from infer.errors import UserError

    on_cuda(monkeypatch, step, rollout)
    out = tmp_path / "g.onnx"
    with pytest.raises(UserError) as error:
        export(square_run, out=out, fp16=True)
    assert str(error.value) == (f"the float16 ONNX model differs from Keras beyond tolerance on CUDA "
                                f"({{'step_max_abs_diff': {step}, 'rollout_max_abs_diff': {rollout}}}); nothing "
                                f"written to {out} or {tmp_path / 'g_fp16.onnx'}: export without --fp16")
    assert list(tmp_path.iterdir()) == []


def test_an_fp16_variant_within_tolerance_on_cuda_carries_its_cuda_parity(square_run, tmp_path, monkeypatch):
    on_cuda(monkeypatch, 0.004, 0.03)
    export(square_run, out=tmp_path / "g.onnx", fp16=True)
    half, full = (contract_of(tmp_path / name) for name in ("g_fp16.onnx", "g.onnx"))
    assert half.parity == {"step_max_abs_diff": 0.004, "rollout_max_abs_diff": 0.03}
    assert half.parity_provider == "CUDAExecutionProvider" and full.parity_provider == "CPUExecutionProvider"


def test_a_mixed_precision_run_trains_logs_its_loss_scale_and_exports_as_float32(square_video, tmp_path):
    import tensorflow as tf

    from infer.config import resolve
    from trainer.train import train

    config = resolve("tiny", None, {"data": {"videos": (str(square_video),)},
                                    "train": {"steps": 4, "precision": "mixed_float16", "eval_every": 100,
                                              "checkpoint_every": 100}})
    run = train(config, tmp_path / "mixed")
    tags = {value.tag for path in (run / "logs").glob("events.out.tfevents.*")
            for event in tf.compat.v1.train.summary_iterator(str(path)) for value in event.summary.value}
    assert "loss_scale" in tags
    out = export(run, "latest")
    proto = onnx.load(str(out))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert not any(init.data_type == onnx.TensorProto.FLOAT16 for init in proto.graph.initializer)


@pytest.mark.parametrize(("context", "head", "upsample"), [(1, "direct", "transpose"), (3, "residual", "resize"),
                                                           (1, "mask", "transpose"), (2, "warp", "resize")])
def test_the_graph_is_channels_first_with_fused_instance_norm_and_matches_keras_at_any_batch(context, head,
                                                                                           upsample):
    import keras
    import numpy as np
    import onnxruntime as ort

    from export.onnx_graph import to_onnx
    from infer.config import resolve
    from infer.contract import input_names
    from trainer import model

    config = resolve("tiny", None, {"data": {"height": 64, "width": 128},
                                    "model": {"context": context, "head": head, "upsample": upsample}})
    generator = model.generator(config)
    proto = to_onnx(generator, "next_frame", 17)
    ops = [node.op_type for node in proto.graph.node]
    flow = head == "warp"  # the warp head's flow goes channels-last for GridSample's grid
    assert ops.count("Transpose") == context + 1 + flow and ops[0] == ops[-1] == "Transpose"  # else only at the ends
    assert [i.name for i in proto.graph.input] == input_names(context)  # oldest first, the newest is "frame"
    assert proto.ir_version == 8  # the oldest opset 17 allows: older ONNX Runtime builds load it
    norms = sum(isinstance(layer, keras.layers.GroupNormalization) for layer in generator.layers)
    assert ops.count("InstanceNormalization") == norms and "Dropout" not in ops
    assert ("Clip" in ops) == (head == "residual") and ("ConvTranspose" in ops) == (upsample == "transpose")
    assert ("Sigmoid" in ops) == (head == "mask") and ("GridSample" in ops) == flow
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    frames = list(np.random.default_rng(0).uniform(-1, 1, (context, 3, 64, 128, 3)).astype(np.float32))
    onnx_out = session.run(None, dict(zip(input_names(context), frames, strict=True)))[0]
    assert onnx_out.shape == (3, 64, 128, 3)
    assert np.abs(onnx_out - generator(frames, training=False).numpy()).max() < 1e-5


def test_the_mask_head_keeps_the_frame_exactly_where_the_mask_is_one_and_draws_where_it_is_zero():
    import numpy as np

    from trainer.model import KeepOrRedraw

    frame = np.random.default_rng(0).uniform(-1, 1, (1, 4, 4, 3)).astype(np.float32)
    colour = np.full((1, 4, 4, 3), 0.5, np.float32)
    logit = np.where(np.arange(4)[None, :, None, None] < 2, 50.0, -50.0) * np.ones((1, 4, 4, 1))  # keep the top rows
    logit = logit.astype(np.float32)
    out = KeepOrRedraw()([np.concatenate([colour, logit], -1), frame]).numpy()
    assert np.array_equal(out[:, :2], frame[:, :2])
    assert np.allclose(out[:, 2:], np.tanh(0.5), atol=1e-6)


def test_same_padding_on_odd_sizes_matches_keras():
    import keras
    import numpy as np
    import onnxruntime as ort

    from export.onnx_graph import to_onnx

    frame = keras.Input((7, 9, 3), name="frame")
    x = keras.layers.Conv2D(4, 4, strides=2, padding="same", name="down")(frame)  # 7x9 -> 4x5: odd pixel after
    x = keras.layers.GroupNormalization(groups=-1, name="norm")(x)
    x = keras.layers.LeakyReLU(0.2, name="act")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="flat")(x)
    x = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same", name="up")(x)  # 4x5 -> 8x10
    small = keras.Model(frame, keras.layers.Activation("tanh", name="out")(x))
    session = ort.InferenceSession(to_onnx(small, "next_frame", 17).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    frames = np.random.default_rng(1).uniform(-1, 1, (2, 7, 9, 3)).astype(np.float32)
    onnx_out = session.run(None, {"frame": frames})[0]
    assert onnx_out.shape == (2, 8, 10, 3)
    assert np.abs(onnx_out - small(frames).numpy()).max() < 1e-5


def test_a_layer_the_graph_writer_does_not_know_is_refused_by_name():
    import keras

    from export.onnx_graph import to_onnx

    frame = keras.Input((8, 8, 3), name="frame")
    odd = keras.Model(frame, keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid", name="odd")(frame))
    with pytest.raises(ValueError, match="layer odd has activation='sigmoid'"):
        to_onnx(odd, "next_frame", 17)
    dilated = keras.Model(frame, keras.layers.Conv2D(3, 3, padding="same", dilation_rate=2, name="wide")(frame))
    with pytest.raises(ValueError, match="layer wide has dilation_rate"):
        to_onnx(dilated, "next_frame", 17)
    padded = keras.Model(frame, keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1,
                                                             name="grown")(frame))
    with pytest.raises(ValueError, match="layer grown has output_padding"):
        to_onnx(padded, "next_frame", 17)
    pooled = keras.Model(frame, keras.layers.MaxPooling2D(name="pool")(frame))
    with pytest.raises(ValueError, match=r"layer pool \(MaxPooling2D\) has no ONNX writer"):
        to_onnx(pooled, "next_frame", 17)


def test_tf2onnx_exports_the_same_model_with_parity(square_run, square_model, tmp_path):
    out = export(square_run, out=tmp_path / "t2o.onnx", converter="tf2onnx")
    contract = load(out, "cpu").contract
    assert contract.parity["step_max_abs_diff"] < 1e-4 and contract.inputs == ("frame",)
    proto, native = onnx.load(str(out)), onnx.load(str(square_model))
    assert [o.name for o in proto.graph.output] == ["next_frame"] and proto.ir_version == native.ir_version
    assert len(proto.graph.node) > len(native.graph.node)  # instance norm spelled out, transposes around it


def test_a_layer_the_native_writer_lacks_exports_through_tf2onnx_with_auto(capsys):
    import keras
    import numpy as np
    import onnxruntime as ort

    from export.onnx_export import convert
    from infer.errors import UserError

    frame = keras.Input((16, 16, 3), name="frame")
    pooled = keras.Model(frame, keras.layers.UpSampling2D(name="up")(keras.layers.MaxPooling2D(name="pool")(frame)))
    proto, writer = convert(pooled, "next_frame", 17, "auto")
    assert writer == "tf2onnx" and "layer pool (MaxPooling2D) has no ONNX writer" in capsys.readouterr().out
    frames = np.random.default_rng(2).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"frame": frames})[0], pooled(frames).numpy(), atol=1e-6)
    with pytest.raises(UserError, match="export with --converter tf2onnx"):
        convert(pooled, "next_frame", 17, "native")
