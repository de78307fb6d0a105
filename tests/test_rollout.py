"""The rollout runner: exact frame counts, autoregression, health flags, clear errors, Ctrl-C, no TensorFlow."""

import json
import sys
from functools import partial
from pathlib import Path

import av
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import PROGRAMS, ctrl_c_when
from onnx import TensorProto, helper

from infer.contract import input_names
from infer.errors import UserError
from infer.frames import to_model
from infer.rollout import continue_film, main, run_per_frame
from infer.video import probe, read_frames, read_image


def count_and_rate(path: Path) -> tuple[int, float, tuple[int, int]]:
    info = probe(path)
    return info.frames, info.fps, (info.width, info.height)


def test_a_rollout_has_exactly_one_frame_per_step_at_the_asked_size_and_rate(square_model, square_video, tmp_path):
    out = tmp_path / "c.mp4"
    record = continue_film(square_model, square_video, out, steps=24, size="96x64", fps=4)
    assert count_and_rate(out) == (24, 4.0, (96, 64))
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert saved["steps"] == 24 and saved["provider"] == "CPUExecutionProvider"
    assert saved["cuda_graphs"] is False
    assert saved["start"]["frame"] == 159 and len(saved["health"]["mean_intensity"]) == 24


def test_blend_source_prefix_and_side_by_side_add_exactly_their_frames(square_model, square_video, tmp_path):
    out = tmp_path / "c.mp4"
    continue_film(square_model, square_video, out, steps=10, fps=4, blend=2, with_source=1.0, side_by_side=True)
    # 10 steps x (2 in-between + 1) at 12 fps, after 1 s of source at 12 fps; source size 64x64, doubled.
    assert count_and_rate(out) == (30 + 12, 12.0, (128, 64))


def test_default_rate_makes_600_steps_last_90_seconds(square_model, square_video, tmp_path):
    record = continue_film(square_model, square_video, tmp_path / "c.mp4", steps=6)
    assert record["fps"] * 90 == pytest.approx(600)


def test_each_step_is_fed_the_previous_output(square_model, square_video, tmp_path):
    continue_film(square_model, square_video, tmp_path / "c.mp4", steps=8, frames_dir=tmp_path / "frames")
    saved = [read_image(tmp_path / "frames" / f"step_{k:04d}.png") for k in range(9)]
    (_, last), = read_frames(square_video, (64, 64), wanted={159})
    np.testing.assert_array_equal(saved[0], last)  # starts from the true last frame, prepared as in training
    session = ort.InferenceSession(str(square_model), providers=["CPUExecutionProvider"])
    frame = to_model(last)
    for k in range(1, 9):  # a plain loop that feeds each output back reproduces every saved step exactly
        frame = session.run(None, {"frame": frame})[0]
        expected = np.clip(np.rint((frame[0] + 1) * 127.5), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(saved[k], expected)
    assert not np.array_equal(saved[1], saved[8])  # not frozen


def test_a_model_newer_than_onnxruntime_reads_is_a_clear_error(square_model, tmp_path):
    from infer.runner import load

    proto = onnx.load(str(square_model))
    proto.ir_version = 99
    onnx.save(proto, str(tmp_path / "future.onnx"))
    with pytest.raises(UserError, match=r"newer than onnxruntime .* reads .*IR version: 99.*export the model again"):
        load(tmp_path / "future.onnx", "cpu")


def test_every_stepper_on_a_model_has_graph_ids_of_its_own(square_model):
    from infer.runner import Stepper, load

    model = load(square_model, "cpu")
    ids = [options.get_run_config_entry("gpu_graph_id") for _ in range(2) for options in Stepper(model).rotations]
    assert ids == ["1", "2", "3", "4"] and model.graphs is False  # 0 is ONNX Runtime's; no graphs on CPU


def fake_model(square_model: Path, tmp_path: Path, kind: str, metadata: bool = True, context: int = 1) -> Path:
    """A model with the real one's metadata that returns its newest input ("identity") or black ("black"); with
    `context`, it takes that many frames (stride 2, as the real one)."""
    frames = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", 64, 64, 3]) for name in input_names(context)]
    out = helper.make_tensor_value_info("next_frame", TensorProto.FLOAT, ["n", 64, 64, 3])
    if kind == "identity":
        nodes, inits = [helper.make_node("Identity", ["frame"], ["next_frame"])], []
    else:
        zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
        minus_one = helper.make_tensor("minus_one", TensorProto.FLOAT, [], [-1.0])
        nodes = [helper.make_node("Mul", ["frame", "zero"], ["nothing"]),
                 helper.make_node("Add", ["nothing", "minus_one"], ["next_frame"])]
        inits = [zero, minus_one]
    model = helper.make_model(helper.make_graph(nodes, kind, frames, [out], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    if metadata:
        for prop in onnx.load(str(square_model)).metadata_props:
            model.metadata_props.add(key=prop.key, value=with_context(prop.key, prop.value, context))
    path = tmp_path / f"{kind}-{context}.onnx"
    onnx.save(model, str(path))
    return path


def with_context(key: str, value: str, context: int) -> str:
    """A metadata value of the real model, as a model that sees `context` frames would have it."""
    if key == "inputs":
        return json.dumps(input_names(context))
    if key == "config":
        config = json.loads(value)
        config["model"]["context"] = context
        return json.dumps(config)
    return value


def test_the_monitor_flags_a_frozen_and_a_black_continuation(square_model, square_video, tmp_path, capsys):
    frozen = continue_film(fake_model(square_model, tmp_path, "identity"), square_video, tmp_path / "f.mp4",
                           steps=12)
    assert frozen["health"]["flags"] == {"frozen": 1}
    black = continue_film(fake_model(square_model, tmp_path, "black"), square_video, tmp_path / "b.mp4", steps=12)
    assert black["health"]["flags"] == {"black": 1}
    assert "collapsed to black" in capsys.readouterr().err


def test_fail_on_collapse_stops_with_a_valid_shorter_video(square_model, square_video, tmp_path, monkeypatch):
    black = fake_model(square_model, tmp_path, "black")
    out = tmp_path / "b.mp4"
    monkeypatch.setattr("sys.argv", ["epilogue-rollout", str(black), "--from", str(square_video), "--out",
                                     str(out), "--steps", "50", "--fail-on-collapse"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 3
    assert probe(out).frames == 5  # flagged after RUN=5 black steps


def test_per_frame_mode_gives_a_video_as_long_as_the_source(square_model, square_video, tmp_path):
    out = tmp_path / "p.mp4"
    run_per_frame(square_model, square_video, out)
    assert count_and_rate(out) == (160, 24.0, (64, 64))


def test_per_frame_mode_honours_start_steps_and_rate_and_refuses_rollout_options(square_model, square_video,
                                                                                 tmp_path, capsys, monkeypatch):
    out = tmp_path / "p.mp4"
    record = run_per_frame(square_model, square_video, out, start="100", steps=20, fps=10, side_by_side=True)
    assert count_and_rate(out) == (20, 10.0, (128, 64)) and record["start"]["frame"] == 100
    record = run_per_frame(square_model, square_video, out, start="150", duration=2.0)
    assert count_and_rate(out) == (10, 5.0, (64, 64))  # frames 150-159 over two seconds
    for option in (("--blend", "2"), ("--with-source", "1"), ("--fail-on-collapse",), ("--frames-dir", tmp_path)):
        line = run_cli(capsys, monkeypatch, square_model, "--from", square_video, "--per-frame", *option)
        assert line.startswith("error: --per-frame makes one frame per source frame") and "shape a rollout only" in line


def test_per_frame_mode_feeds_each_frame_with_the_real_frames_stride_apart_before_it(square_model, barcode_video,
                                                                                      tmp_path, monkeypatch):
    from conftest import read_barcode

    from infer.runner import Stepper

    fed, apply = [], Stepper.apply

    def spy(self, frames):
        fed.append([read_barcode(frame) for frame in frames])
        return apply(self, frames)

    monkeypatch.setattr(Stepper, "apply", spy)
    model = fake_model(square_model, tmp_path, "identity", context=3)  # frames 4, 2 and 0 source frames back
    record = run_per_frame(model, barcode_video, tmp_path / "p.mp4", start="3", steps=5)
    assert fed == [[0, 1, 3], [0, 2, 4], [1, 3, 5], [2, 4, 6], [3, 5, 7]]  # frame 0 stands in before the film
    assert record["steps"] == 5 and probe(tmp_path / "p.mp4").frames == 5


def test_a_model_exported_before_the_typed_contract_is_told_to_export_again(square_model, tmp_path):
    from infer.runner import load

    proto = onnx.load(str(square_model))
    metadata = {prop.key for prop in proto.metadata_props}
    assert not metadata & {"stride", "fit", "frame_size", "context_frames"}  # the config says them, once
    for prop in proto.metadata_props:
        if prop.key == "epilogue":
            prop.value = json.dumps({"format": 2})
    onnx.save(proto, str(tmp_path / "old.onnx"))
    with pytest.raises(UserError) as old:
        load(tmp_path / "old.onnx", "cpu")
    assert str(old.value) == (f"{tmp_path / 'old.onnx'} was exported by another epilogue (contract format 2, this one "
                              "reads 3); export it again with epilogue-export")


def run_cli(capsys, monkeypatch, *args) -> str:
    monkeypatch.setattr("sys.argv", ["epilogue-rollout", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_bad_inputs_are_one_clear_line(square_model, square_video, tmp_path, capsys, monkeypatch):
    text = tmp_path / "model.onnx"
    text.write_text("hello")
    blocker = tmp_path / "file"
    blocker.write_text("")
    bare = fake_model(square_model, tmp_path, "identity", metadata=False)
    cases = [
        ((tmp_path / "missing.onnx", "--from", square_video), "does not exist"),
        ((text, "--from", square_video), "is not an ONNX model"),
        ((bare, "--from", square_video), "has no epilogue metadata"),
        ((square_model, "--from", text), "can't be read as a video"),
        ((square_model, "--from", square_video, "--out", blocker / "c.mp4"), "is not writable"),
        ((square_model, "--from", square_video, "--start", "999"), "has 160 frames"),
    ]
    for args, message in cases:
        line = run_cli(capsys, monkeypatch, *args, "--steps", "2")
        assert line.startswith("error: ") and message in line, (args, line)
    assert not list(tmp_path.glob("*.mp4"))


def test_ctrl_c_finalizes_a_valid_shorter_video_without_tensorflow(square_model, square_video, tmp_path):
    out = tmp_path / "c.mp4"
    command = [sys.executable, PROGRAMS / "tensorflow_loaded.py", "infer.rollout", str(square_model), "--from",
               str(square_video), "--out", str(out), "--steps", "100000", "--size", "64x64"]
    code, output = ctrl_c_when(command, "rollout: step", timeout=60)
    assert code == 130, output
    held = int(output.split("is a valid video holding ")[1].split()[0])
    assert held > 0 and probe(out).frames == held
    assert "tensorflow loaded: False" in output


def test_a_still_image_can_start_a_rollout(square_model, tmp_path):
    from conftest import square_frame

    from infer.pictures import save_png

    image = save_png(tmp_path / "still.png", square_frame(5, size=96))
    record = continue_film(square_model, image, tmp_path / "c.mp4", steps=3)
    assert count_and_rate(tmp_path / "c.mp4")[0] == 3 and record["size"] == [96, 96]


def test_starts_are_last_a_frame_number_or_seconds(tmp_path):
    from infer.rollout import start_index

    video = tmp_path / "film.mp4"
    assert start_index("last", 160, 24.0, video) == 159
    assert start_index("30", 160, 24.0, video) == 30
    assert start_index("2.5s", 160, 24.0, video) == 60
    assert start_index("2.5", 160, 24.0, video) == 60
    with pytest.raises(UserError) as soon:
        start_index("soon", 160, 24.0, video)
    assert str(soon.value) == "--start 'soon' is not last, a frame number or seconds (e.g. 300 or 12.5s)"
    with pytest.raises(UserError) as late:
        start_index("7s", 160, 24.0, video)
    assert str(late.value) == f"--start 7s is frame 168, but video {video} has 160 frames (0-159)"


def test_a_rollout_starts_where_start_says(square_model, square_video, tmp_path):
    record = continue_film(square_model, square_video, tmp_path / "c.mp4", start="5s", steps=2)
    assert record["start"] == {"source": str(square_video), "frame": 120, "seconds": 5.0, "chosen": "--start 5s"}


def test_a_crop_model_shows_the_real_film_cropped_as_it_was_trained(square_model, tmp_path):
    from conftest import write_video

    wide = np.zeros((64, 128, 3), np.uint8)
    wide[:, :32] = 255  # a white left quarter that a centre crop cuts away
    video = write_video(tmp_path / "wide.mp4", [wide] * 30)
    identity = fake_model(square_model, tmp_path, "identity")
    proto = onnx.load(str(identity))
    for prop in proto.metadata_props:
        if prop.key == "config":
            config = json.loads(prop.value)
            config["data"]["fit"] = "crop"
            prop.value = json.dumps(config)
    onnx.save(proto, str(identity))
    out = tmp_path / "c.mp4"
    record = continue_film(identity, video, out, steps=4, fps=4, with_source=1.0, side_by_side=True)
    assert record["size"] == [128, 64]  # two 64x64 panels: the crop's aspect at the source's height
    first = next(read_frames(out))[1]
    assert first.mean() < 20  # the prefix is the centre crop (black), not the squashed frame (a white band)


def test_tensorrt_engines_are_cached_per_model_and_float16_only_for_the_float16_variant(square_model, tmp_path,
                                                                                        monkeypatch):
    import shutil

    from infer.runner import tensorrt_options
    from infer.video import file_sha256

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    options = tensorrt_options(square_model)
    assert options["trt_engine_cache_enable"] == "1" and options["trt_timing_cache_enable"] == "1"
    assert options["trt_engine_cache_path"] == str(tmp_path / "epilogue" / "tensorrt" / file_sha256(square_model)[:16])
    assert options["trt_fp16_enable"] == "0"
    half = shutil.copy(square_model, tmp_path / "generator_fp16.onnx")
    assert tensorrt_options(Path(half))["trt_fp16_enable"] == "1"


GPU_FAILS = "[ONNXRuntimeError] : 10 : INVALID_GRAPH : no CUDA-capable device is detected"


def gpu_providers_fail(monkeypatch) -> None:
    """This onnxruntime offers TensorRT and CUDA, and neither starts; the CPU provider runs as usual."""
    from infer import runner

    real = runner._session

    def session(path, provider, graphs=False):
        if provider != "cpu":
            raise RuntimeError(GPU_FAILS)
        return real(path, provider, graphs)

    monkeypatch.setattr(runner.ort, "get_available_providers", lambda: list(runner.PROVIDERS.values()))
    monkeypatch.setattr(runner, "_session", session)


def test_a_gpu_provider_that_fails_to_start_is_reported_and_the_next_one_runs(square_model, monkeypatch, capsys):
    from infer.runner import load

    gpu_providers_fail(monkeypatch)
    model = load(square_model)
    assert model.provider == "CPUExecutionProvider" and model.device == "cpu"
    assert capsys.readouterr().out == f"provider: CPUExecutionProvider (tensorrt: {GPU_FAILS}; cuda: {GPU_FAILS})\n"


def test_a_file_that_is_not_a_model_is_refused_when_the_cpu_provider_cannot_parse_it(tmp_path, monkeypatch):
    from infer.runner import load

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not a model at all" * 20)
    gpu_providers_fail(monkeypatch)
    with pytest.raises(UserError, match=rf"^model {garbage} is not an ONNX model \(.*INVALID_PROTOBUF"):
        load(garbage)
    with pytest.raises(UserError, match=rf"^model {garbage} is not an ONNX model \(.*INVALID_PROTOBUF"):
        load(garbage, "cuda")  # a GPU provider asked by name: the file is still what is at fault


class FakeEncoder:
    """Stands in for PyAV's codec context in `_nvenc_works`: counts the ones alive; its open() raises `failure`
    (a C call, like PyAV's: the error's traceback holds no frame of the encoder's own)."""

    alive = 0

    def __init__(self, failure: type[BaseException] | None):
        FakeEncoder.alive += 1
        self.open = (lambda: None) if failure is None else partial(raise_, failure)

    def __del__(self):
        FakeEncoder.alive -= 1


def raise_(error: type[BaseException]) -> None:
    raise error(1, "avcodec_open2 failed") if issubclass(error, av.FFmpegError) else error("avcodec_open2 failed")


@pytest.mark.parametrize(("failure", "works"), [(None, True), (av.FFmpegError, False)])
def test_the_nvenc_probe_closes_its_test_encoder(monkeypatch, failure, works):
    from infer.rollout import _nvenc_works

    monkeypatch.setattr(av.CodecContext, "create", lambda *_: FakeEncoder(failure))
    assert _nvenc_works() is works and FakeEncoder.alive == 0


def test_the_nvenc_probe_closes_its_test_encoder_even_on_an_unexpected_error(monkeypatch):
    from infer.rollout import _nvenc_works

    monkeypatch.setattr(av.CodecContext, "create", lambda *_: FakeEncoder(RuntimeError))
    try:
        _nvenc_works()
    except RuntimeError as error:  # held with its traceback, as by a caller reporting it: the encoder is closed
        held = error
    assert str(held) == "avcodec_open2 failed" and FakeEncoder.alive == 0


def test_without_nvenc_the_probe_says_no(monkeypatch):
    from infer.rollout import _nvenc_works

    def unknown(*_):
        raise av.codec.codec.UnknownCodecError("h264_nvenc")

    monkeypatch.setattr(av.CodecContext, "create", unknown)
    assert _nvenc_works() is False


def cli_output(capsys, monkeypatch, *args) -> list[str]:
    """The lines a successful epilogue-rollout prints."""
    monkeypatch.setattr("sys.argv", ["epilogue-rollout", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0
    return capsys.readouterr().out.splitlines()


def test_the_rollout_ends_with_what_it_made_and_the_next_command(square_model, square_video, tmp_path, capsys,
                                                                 monkeypatch):
    out = tmp_path / "c.mp4"
    lines = cli_output(capsys, monkeypatch, square_model, "--from", square_video, "--out", out, "--steps", "2")
    assert lines[-3:] == [f"video: {out}", f"about it: {tmp_path / 'c.json'}",
                          f"next: epilogue-eval {square_model} {square_video} --video {out}"]
    lines = cli_output(capsys, monkeypatch, square_model, "--from", square_video, "--out", out, "--per-frame",
                       "--steps", "2")
    assert lines[-1] == f"next: epilogue-eval {square_model} {square_video}"


def test_a_rollout_from_an_image_ends_with_watching_it(square_model, tmp_path, capsys, monkeypatch):
    from infer.pictures import save_png

    image = save_png(tmp_path / "still.png", np.zeros((64, 64, 3), np.uint8))
    out = tmp_path / "c.mp4"
    lines = cli_output(capsys, monkeypatch, square_model, "--from", image, "--out", out, "--steps", "2")
    assert lines[-1] == f"next: watch {out}"
