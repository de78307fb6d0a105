"""Export the trained generator to ONNX, carrying its own contract, with parity checked, not assumed.

The generator is rebuilt under the float32 policy and the checkpoint's weights loaded into it (a
mixed-precision run exports as float32), written out as an ONNX graph layer by layer, then run by ONNX
Runtime beside Keras on real validation frames (recorded in the run directory when training began, so the
videos are not read again): one step, and a 10-step rollout fed back on itself. Export fails when they differ.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import keras
import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf

from export import CONVERTERS
from export.onnx_graph import NoWriter, to_onnx
from infer import __version__
from infer.contract import Contract, input_names
from infer.errors import UserError, atomic_path, check_writable_dir, warn
from infer.frames import to_model
from infer.roll import roll
from trainer import model
from trainer.rundir import read_config, recorded_parity_frames, recorded_splits

STEP_TOLERANCE = 1e-4  # max abs difference of one step, values in [-1, 1]
ROLLOUT_STEPS = 10
ROLLOUT_TOLERANCE = 1e-2  # float32 round-off compounds over 10 fed-back steps; a real mismatch is >= 0.1
# The float16 variant against float32 Keras: float16 keeps 11 bits (steps of 5e-4 near 1), so its limits are
# wider than float32's, and a real mismatch (0.1 or more over the rollout) still fails.
HALF_STEP_TOLERANCE = 1e-2
HALF_ROLLOUT_TOLERANCE = 5e-2


def find_checkpoint(run_dir: Path, which: str) -> str:
    """The checkpoint prefix for best, latest or a step number."""
    folder = run_dir / ("best" if which == "best" else "checkpoints")
    if which in ("best", "latest"):
        path = tf.train.latest_checkpoint(str(folder))
        if path is None and which == "best" and tf.train.latest_checkpoint(str(run_dir / "checkpoints")):
            raise UserError(f"run {run_dir} has no best checkpoint (best/ holds one once an eval of a trained "
                            "step scores finite); export with --checkpoint latest, or train until the first eval")
    elif which.isdigit():
        path = str(folder / f"ckpt-{int(which)}")
        path = path if Path(f"{path}.index").exists() else None
    else:
        raise UserError(f"--checkpoint must be best, latest or a step number (got {which!r})")
    if path is None:
        raise UserError(f"run {run_dir} has no {which} checkpoint; train it first (epilogue-train ... "
                        f"--run-dir {run_dir}) or pick another with --checkpoint")
    return path


def load_generator(run_dir: Path, checkpoint: str) -> tuple[keras.Model, int]:
    """The generator in float32 with the checkpoint's weights, and the training step they are from."""
    config = read_config(run_dir)
    keras.config.set_dtype_policy("float32")
    generator = model.generator(config)
    step = tf.Variable(0, dtype=tf.int64)
    try:
        tf.train.Checkpoint(generator=generator, step=step).restore(checkpoint).expect_partial() \
            .assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as error:
        reason = str(error).splitlines()[0][:200]
        raise UserError(f"checkpoint {checkpoint} does not fit the config of {run_dir} ({reason}); "
                        "was it copied from another run?") from None
    return generator, int(step.numpy())


def parity_contexts(run_dir: Path) -> list[np.ndarray]:
    """The run's recorded validation contexts in [-1, 1]: one [count, h, w, 3] array per context frame, oldest
    first."""
    frames = recorded_parity_frames(run_dir)
    return [to_model(frames[:, j])[0] for j in range(frames.shape[1])]


def check_parity(generator: keras.Model, proto: onnx.ModelProto, contexts: list[np.ndarray],
                 providers: list[str]) -> dict[str, float]:
    """Max abs difference of one step and of a 10-step rollout between ONNX Runtime and Keras."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=providers)
    names = [i.name for i in session.get_inputs()]

    def keras_step(frames: list[np.ndarray]) -> np.ndarray:
        return generator(frames, training=False).numpy()

    def onnx_step(frames: list[np.ndarray]) -> np.ndarray:
        return session.run(None, dict(zip(names, frames, strict=True)))[0]

    step = float(np.abs(onnx_step(contexts) - keras_step(contexts)).max())
    first = [c[:1] for c in contexts]
    *_, a = roll(keras_step, first, ROLLOUT_STEPS)
    *_, b = roll(onnx_step, first, ROLLOUT_STEPS)
    return {"step_max_abs_diff": step, "rollout_max_abs_diff": float(np.abs(a - b).max())}


def contract(run_dir: Path, step: int, checkpoint: str) -> Contract:
    record = json.loads((run_dir / "config.json").read_text())
    config = read_config(run_dir)
    video = record["videos"][0]
    return Contract(inputs=tuple(input_names(config.model.context)), output="next_frame", layout="NHWC",
                    value_range=(-1.0, 1.0), source_fps=video["fps"], source_size=tuple(video["size"]),
                    training_step=step, config_fingerprint=record["fingerprint"],
                    epilogue_version=__version__, source_video=video["path"], source_frames=video["frames"],
                    splits=recorded_splits(run_dir), config=config,
                    checkpoint=checkpoint, source_sha256=video["sha256"])


def convert(generator: keras.Model, output: str, opset: int, converter: str = "auto") -> tuple[onnx.ModelProto, str]:
    """The generator as ONNX, and which converter wrote it. The native writer (`export/onnx_graph.py`) is
    faster to run and to export; tf2onnx is the general path for layers the native writer does not know."""
    if converter not in CONVERTERS:
        raise UserError(f"--converter must be one of {', '.join(CONVERTERS)} (got {converter!r})")
    if converter != "tf2onnx":
        try:
            return to_onnx(generator, output, opset), "native"
        except NoWriter as error:
            if converter == "native":
                raise UserError(f"{error}; export with --converter tf2onnx (or auto)") from None
            print(f"{error}: converting with tf2onnx instead", flush=True)
    return _tf2onnx(generator, output, opset), "tf2onnx"


def _tf2onnx(generator: keras.Model, output: str, opset: int) -> onnx.ModelProto:
    import tf2onnx

    spec = [tf.TensorSpec((None, *frame.shape[1:]), tf.float32, name=frame.name) for frame in generator.inputs]
    proto, _ = tf2onnx.convert.from_keras(generator, input_signature=spec, opset=opset)
    (produced,) = [o.name for o in proto.graph.output]
    if produced != output:  # name the output as the contract says
        for node in proto.graph.node:
            node.output[:] = [output if name == produced else name for name in node.output]
        proto.graph.output[0].name = output
    # The oldest IR version the opset allows, as the native writer stamps (older ONNX Runtime builds load it).
    proto.ir_version = onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    return proto


def to_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Weights and math in float16 for GPU providers; the input and output stay float32, and so does the warp
    head's GridSample (ONNX Runtime's CPU and CUDA kernels take float only)."""
    from onnxconverter_common import float16

    with warnings.catch_warnings():  # "float32 number truncated": tiny weights rounding, expected in float16
        warnings.simplefilter("ignore", UserWarning)
        return float16.convert_float_to_float16(proto, keep_io_types=True,
                                                op_block_list=[*float16.DEFAULT_OP_BLOCK_LIST, "GridSample"])


def save(proto: onnx.ModelProto, path: Path, meta: Contract) -> None:
    """Stamp the contract into metadata_props, check the model, write it atomically."""
    del proto.metadata_props[:]
    for key, value in meta.to_metadata().items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name, proto.doc_string = "epilogue", f"epilogue {__version__} generator: frame t -> t + stride"
    onnx.checker.check_model(proto)
    tmp = atomic_path(path)
    try:
        onnx.save(proto, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def within(parity: dict[str, float], step_limit: float, rollout_limit: float, provider: str, frames: int) -> bool:
    """Say the parity in one line; whether both differences are inside their limits."""
    print(f"parity on {frames} validation frames (ONNX Runtime {provider.removesuffix('ExecutionProvider')} vs "
          f"Keras): one step max |diff| {parity['step_max_abs_diff']:.2e} (limit {step_limit:.0e}), "
          f"{ROLLOUT_STEPS}-step rollout {parity['rollout_max_abs_diff']:.2e} (limit {rollout_limit:.0e})")
    return parity["step_max_abs_diff"] <= step_limit and parity["rollout_max_abs_diff"] <= rollout_limit


def half_variant(generator: keras.Model, proto: onnx.ModelProto, frames: list[np.ndarray], out: Path,
                 half: Path) -> tuple[onnx.ModelProto, dict[str, float] | None]:
    """The float16 variant and its parity on CUDA (None where no CUDA provider is here to check it); like the
    float32 model, one beyond tolerance is refused before anything is written."""
    half_proto = to_fp16(proto)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return half_proto, None
    parity = check_parity(generator, half_proto, frames, ["CUDAExecutionProvider"])
    if not within(parity, HALF_STEP_TOLERANCE, HALF_ROLLOUT_TOLERANCE, "CUDAExecutionProvider", len(frames[0])):
        raise UserError(f"the float16 ONNX model differs from Keras beyond tolerance on CUDA ({parity}); nothing "
                        f"written to {out} or {half}: export without --fp16")
    return half_proto, parity


def export(run_dir: Path, which: str = "best", out: Path | None = None, fp16: bool = False,
           opset: int = 17, converter: str = "auto") -> Path:
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.json); train one with epilogue-train")
    if which == "best" and not read_config(run_dir).held_out:
        print(f"{run_dir} is a --final run: no frame was held out to choose a best checkpoint by, so its last "
              "checkpoint is the model", flush=True)
        which = "latest"
    checkpoint = find_checkpoint(run_dir, which)
    out = out or run_dir / "export" / "generator.onnx"
    check_writable_dir(out.parent, "output directory")
    generator, step = load_generator(run_dir, checkpoint)
    meta = contract(run_dir, step, which if which in ("best", "latest") else str(int(which)))
    proto, writer = convert(generator, meta.output, opset, converter)
    print(f"exported {checkpoint} (step {step}) with the {writer} converter, ONNX opset {opset}", flush=True)
    frames = parity_contexts(run_dir)
    parity = check_parity(generator, proto, frames, ["CPUExecutionProvider"])
    if not within(parity, STEP_TOLERANCE, ROLLOUT_TOLERANCE, "CPUExecutionProvider", len(frames[0])):
        raise UserError(f"ONNX model differs from Keras beyond tolerance ({parity}); nothing written to {out}")
    half = out.with_name(f"{out.stem}_fp16{out.suffix}")
    half_proto, half_parity = half_variant(generator, proto, frames, out, half) if fp16 else (None, None)
    save(proto, out, meta.with_parity(parity, "CPUExecutionProvider"))
    print(f"wrote {out}")
    if fp16 and half_parity is None:
        save(half_proto, half, meta.with_parity(None, None))
        warn(f"{half} written, parity unchecked: no CUDA provider here (float16 is for GPU machines)")
    elif fp16:
        save(half_proto, half, meta.with_parity(half_parity, "CUDAExecutionProvider"))
        print(f"wrote {half} (float16, parity checked on CUDA)")
    print(f"next: epilogue-rollout {out} --from {meta.source_video}")
    return out
