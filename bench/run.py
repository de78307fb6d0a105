"""`make bench`: each figure is a ratio against a baseline measured in the same run, on this machine.

    python -m bench.run [SECTION ...]     sections: cli pipeline memory training techniques
                                          converters rollout workers int8 precision (default: all)

Figures go to bench/results.json (other sections' figures are kept) and are printed as a table.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import trainer.quiet  # noqa: F401  (TensorFlow's log settings, before anything imports it)
from infer.config import ALIVE, apply, resolve
from infer.errors import write_text_atomic
from infer.video import VideoWriter

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "assets" / "big_buck_bunny_0_30.webm"
RESULTS = ROOT / "bench" / "results.json"
# The speed sections time pix2pix itself: two-frame windows (one frame in, the next out), not the unroll's longer
# ones, and the plain head, as their recorded figures were measured.
PLAIN_PIX2PIX = {"model": {"head": "direct"}, "train": {"unroll": 0}}


def probe(name: str, *args: object) -> list[str]:
    """The command running bench/probes/NAME.py in a process of its own (run it from ROOT)."""
    return [sys.executable, "-m", f"bench.probes.{name}", *map(str, args)]


def timed(work) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def pipeline(rounds: int = 3) -> dict:
    """The frame store against raw decoding and against the window cache it replaced, at the full preset's windows
    (256x256, 6 frames: context 1 and unroll 4): bytes per frame, first-epoch time, windows/s of later epochs; and
    what the host does per window for training, projected to an H200 host."""
    import av
    import tensorflow as tf

    from trainer import data, store
    from trainer.plan import plan

    config = resolve("full", None, {"data": {"videos": (str(CLIP),), "stride": 6, "hop": 1}})
    plans = plan(config)
    stop, frame_bytes = plans[0].splits["train"].stop, int(np.prod(config.frame_size)) * 3

    def raw_decode() -> None:
        with av.open(str(CLIP)) as container:
            container.streams.video[0].thread_type = "AUTO"
            for index, frame in enumerate(container.decode(video=0)):
                if index >= stop:
                    break
                frame.to_ndarray(format="rgb24")

    def epoch(windows: tf.data.Dataset) -> float:
        return timed(lambda: sum(1 for _ in windows))

    times: dict[str, list[float]] = {k: [] for k in ("raw", "first", "memory", "disk", "cache", "host", "jitter")}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):  # interleaved repeats, medians: this machine's speed wanders
            times["raw"].append(timed(raw_decode))
            folder = Path(tmp) / str(round_)
            times["first"].append(timed(lambda f=folder: epoch(store.open_store(config, plans, "train", f).windows())))
            frames = store.open_store(config, plans, "train", folder)
            times["memory"].append(epoch(frames.windows()))
            times["disk"].append(epoch(store.open_store(config, plans, "train", folder, memory=0).windows()))
            # The window cache, as it was: chunks of 16 windows in a tf.data cache file.
            cache = frames.windows().batch(16).cache(str(folder / "cache")).unbatch()
            epoch(cache)
            times["cache"].append(epoch(cache))
            served = data.train_batches(config, frames, 0).take(frames.count)  # the host's part of a training step
            times["host"].append(timed(lambda b=served: sum(1 for _ in b)))
            jitter = apply(config, {"data": {"jitter": 0.12}})  # what the device does when jitter is on
            times["jitter"].append(timed(lambda j=jitter, b=served: [data.augment_batch(j, *x) for x in b]))
        count, used = frames.count, len(plans[0].frames_used("train"))
        store_bytes = sum(f.stat().st_size for f in folder.glob("train.*"))
        cache_bytes = sum(f.stat().st_size for f in folder.glob("cache*"))
    t = {k: float(np.median(v)) for k, v in times.items()}
    host = count / t["host"]
    return {"store_bytes_vs_frames": round(store_bytes / (used * frame_bytes), 4),
            "window_cache_bytes_vs_frames": round(cache_bytes / (used * frame_bytes), 2),
            "raw_decode_s": round(t["raw"], 2), "first_epoch_s": round(t["first"], 2),
            "first_epoch_vs_raw_decode": round(t["first"] / t["raw"], 2),
            "store_windows_per_s": round(count / t["memory"]),
            "store_from_disk_windows_per_s": round(count / t["disk"]),
            "window_cache_windows_per_s": round(count / t["cache"]),
            "store_vs_window_cache": round(t["cache"] / t["memory"], 1),
            "store_from_disk_vs_window_cache": round(t["cache"] / t["disk"], 1),
            "training_host_windows_per_s": round(host),
            "training_host_with_jitter_on_the_host_windows_per_s": round(count / t["jitter"]),
            "h200_host_cores_for_5000_windows_per_s": round(5000 / (host / (os.cpu_count() or 1)), 1),
            "h200_bytes_to_device_gb_per_s": round(5000 * config.window * frame_bytes / 1e9, 1),
            "goal": "store bytes 1.0x the frames' (plus an index); first epoch <= 1.1x raw decode; store >= 2x the "
                    "window cache",
            "setup": f"bundled clip 1280x720 VP8 up to the train split's end ({stop} frames), 256x256, windows of "
                     f"{config.window} frames, stride 6, hop 1 ({count} train windows, {used} frames); epochs read "
                     f"window by window; training host: data.train_batches, batch 1 (gather only: conversion and "
                     f"jitter run on the training device); medians of {rounds}"}


def memory() -> dict:
    """Peak RSS of a first epoch (frames stored, windows read) of a short and a 5x longer synthetic video, with the
    store in memory and with the store read from disk (allowed 64 MB, less than the long film's store)."""
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for frames in (600, 3000):
            path = Path(tmp) / f"long_{frames}.mp4"
            writer = VideoWriter(path, (360, 640), 24, options={"preset": "ultrafast"})
            ramp = np.linspace(0, 255, 640, dtype=np.float32)[None, :, None]
            for i in range(frames):
                writer.write(np.broadcast_to((ramp + i) % 256, (360, 640, 3)).astype(np.uint8))
            writer.close()
            for mode, allowed in (("memory", ""), ("disk", "64")):
                out = subprocess.run(probe("first_epoch_rss", path, *([allowed] if allowed else [])),
                                     capture_output=True, text=True, check=True, cwd=ROOT).stdout
                out = out.splitlines()[-1].split()  # after the store's progress lines
                figures[f"peak_rss_mb_{frames}_frames_{mode}"] = int(out[1])
                figures[f"store_mb_{frames}_frames"] = int(out[2])
    for mode in ("memory", "disk"):
        figures[f"rss_long_vs_short_{mode}"] = round(figures[f"peak_rss_mb_3000_frames_{mode}"]
                                                     / figures[f"peak_rss_mb_600_frames_{mode}"], 2)
    figures["goal"] = "read from disk, peak RSS does not grow with video length (ratio ~1.0)"
    figures["setup"] = ("640x360 synthetic H.264, 256x256 two-frame windows, stride 50, hop 1: frames stored, one "
                        "pass of windows; 'disk': the store allowed 64 MB of memory")
    return figures


def training(steps: int = 5, rounds: int = 3) -> dict:
    """Steps/s of epilogue's loop vs a TF-tutorial-style loop, same 256x256 pix2pix, batch 1, CPU float32.

    Both read the same augmented batches from epilogue's pipeline, so the figure is the cost of the loop's
    machinery (strategy, per-replica loss scaling, optimizer wrappers, step variable), not of the data.
    Rounds alternate between the loops; the medians are kept.
    """
    import tensorflow as tf

    from bench import tutorial_pix2pix
    from trainer import data, store
    from trainer.plan import plan
    from trainer.train import Trainer

    def rate(step, batches) -> float:
        return steps / timed(lambda: [float(step(next(batches))[0]) for _ in range(steps)])

    figures = {}
    with tempfile.TemporaryDirectory() as run_dir:
        loops = {}
        for xla in (False, True):
            config = resolve("full", None, {"data": {"videos": (str(CLIP),), "stride": 6, "hop": 1},
                                               "model": PLAIN_PIX2PIX["model"],
                                               "train": {**PLAIN_PIX2PIX["train"], "xla": xla, "precision": "float32"}})
            plans = plan(config)
            frames = store.open_store(config, plans, "train", Path(run_dir) / "frames")
            trainer = Trainer(config, Path(run_dir) / f"xla{xla}", tf.distribute.get_strategy(), "float32")
            batches = iter(data.train_batches(config, frames, 0))
            loops["epilogue_xla" if xla else "epilogue"] = (
                lambda w, trainer=trainer: list(trainer.step_fn(w).values()), batches)
        tutorial_step = tutorial_pix2pix.make_step()
        def tutorial(batch, config=config):
            windows = data.augment_batch(config, *batch)
            return tutorial_step(windows[:, 0], windows[:, 1])

        loops["tutorial"] = (tutorial, batches)
        rates: dict[str, list[float]] = {name: [] for name in loops}
        for step, batches in loops.values():  # trace and warm up
            [step(next(batches)) for _ in range(2)]
        for _ in range(rounds):
            for name, (step, batches) in loops.items():
                rates[name].append(rate(step, batches))
    tutorial = float(np.median(rates["tutorial"]))
    figures["tutorial_steps_per_s"] = round(tutorial, 3)
    for name in ("epilogue", "epilogue_xla"):
        figures[f"{name}_steps_per_s"] = round(float(np.median(rates[name])), 3)
        figures[f"{name}_vs_tutorial"] = round(float(np.median(rates[name])) / tutorial, 2)
    figures["goal"] = "epilogue >= 1.0x tutorial"
    figures["setup"] = (f"256x256, 64 filters, batch 1, float32, same input batches; medians of {rounds} rounds "
                        f"of {steps} steps, alternating")
    return figures


TECHNIQUES = {"residual": {"model": {"head": "residual"}}, "noise_0.05": {"train": {"noise": 0.05}},
              "unroll_2": {"train": {"unroll": 2}}, "unroll_2_grad": {"train": {"unroll": 2, "unroll_grad": True}},
              "context_2": {"model": {"context": 2}}, "context_3": {"model": {"context": 3}},
              "upsample_resize": {"model": {"upsample": "resize"}},
              "gradient_loss": {"train": {"gradient_weight": 10.0}}, "jitter_0": {"data": {"jitter": 0.0}},
              "unroll_4": {"train": {"unroll": 4}}, "mask": {"model": {"head": "mask"}},
              "jitter_0_unroll_4": {"data": {"jitter": 0.0}, "train": {"unroll": 4}},
              "jitter_0_unroll_4_mask": ALIVE}
# What #20 adds on top of the presets (`ALIVE`), measured against them: the warp head, the sequence discriminator,
# both, and the warp head with flow targets or the warp loss.
ON_PRESETS = {"warp": {"model": {"head": "warp"}}, "sequence_disc_3": {"train": {"sequence_disc": 3}},
              "warp_sequence_disc_3": {"model": {"head": "warp"}, "train": {"sequence_disc": 3}},
              "warp_flow_10": {"model": {"head": "warp"}, "train": {"flow_weight": 10.0}},
              "warp_loss_50": {"model": {"head": "warp"}, "train": {"warp_weight": 50.0}}}


def techniques(steps: int = 20, rounds: int = 3) -> dict:
    """What each technique of `make quality` costs in training speed: steps/s at the quality preset (64x64,
    CPU float32) over today's defaults, and each technique added to the presets over the presets, in the same
    process, alternating rounds, medians kept. Unroll is timed past its ramp, where a step draws 0..R extra
    generator passes (R/2 on average). Flow targets are computed once before training: timed apart, per frame."""
    import tensorflow as tf

    from trainer import data, flows, store
    from trainer.plan import plan
    from trainer.train import Trainer

    loops, figures = {}, {}
    with tempfile.TemporaryDirectory() as run_dir:
        base = resolve("quality", None, {"data": {"videos": (str(CLIP),)}})
        configs = {"defaults": base, **{name: apply(base, extra) for name, extra in TECHNIQUES.items()},
                   **{f"presets_{name}": apply(apply(base, ALIVE), extra) for name, extra in ON_PRESETS.items()}}
        for name, config in configs.items():
            config = config.validate()
            plans = plan(config)
            frames = store.open_store(config, plans, "train", Path(run_dir) / name / "frames")
            trainer = Trainer(config, Path(run_dir) / name, tf.distribute.get_strategy(), "float32")
            trainer.step.assign(config.train.steps)  # past the unroll ramp
            targets = None
            if config.train.flow_weight:
                took = timed(lambda c=config, f=frames: flows.open_flows(f, c.data.stride))
                figures["flow_targets_s_per_frame"] = round(took / len(np.unique(frames.rows[:, 1:])), 4)
                targets = flows.open_flows(frames, config.data.stride)
            batches = iter(data.train_batches(config, frames, 0, flows=targets))
            loops[name] = (lambda w, trainer=trainer: trainer.step_fn(w)["gen"], batches)
        rates: dict[str, list[float]] = {name: [] for name in loops}
        for step, batches in loops.values():  # trace and warm up
            [float(step(next(batches))) for _ in range(3)]
        for _ in range(rounds):
            for name, (step, batches) in loops.items():
                rates[name].append(steps / timed(lambda s=step, b=batches: [float(s(next(b))) for _ in range(steps)]))
    base = float(np.median(rates["defaults"]))
    figures["defaults_steps_per_s"] = round(base, 2)
    for name in TECHNIQUES:
        figures[f"{name}_vs_defaults"] = round(float(np.median(rates[name])) / base, 2)
    presets = float(np.median(rates["jitter_0_unroll_4_mask"]))
    for name in ON_PRESETS:
        figures[f"presets_{name}_vs_presets"] = round(float(np.median(rates[f"presets_{name}"])) / presets, 2)
    figures["setup"] = (f"quality preset (64x64, 32 filters, depth 6), bundled clip, batch 1, float32; medians of "
                        f"{rounds} rounds of {steps} steps, alternating")
    return figures


def model_only(generator, onnx_path: Path, runs: int = 10) -> dict:
    """Seconds per 256x256 frame of the model alone, nothing else running: the runner's step (on the provider
    it picks, frame copied out as the rollout does) vs Keras."""
    from infer.frames import to_model
    from infer.runner import Stepper, load

    stepper = Stepper(load(onnx_path))
    frame = np.random.default_rng(0).integers(0, 256, (256, 256, 3), np.uint8)
    stepper.reset([frame])
    figures = {}
    for name, run in (("onnxruntime", lambda: (stepper.step(), stepper.frame())),
                      ("keras_training_true", lambda: generator([to_model(frame)], training=True).numpy())):
        run()
        figures[f"model_only_s_per_frame_{name}"] = round(min(timed(run) for _ in range(runs)), 4)
    figures["model_only_onnxruntime_vs_keras"] = round(
        figures["model_only_s_per_frame_keras_training_true"] / figures["model_only_s_per_frame_onnxruntime"], 2)
    return figures


def rollout(steps: int = 600) -> dict:
    """600 steps at 256x256 into a 1920x1080 MP4: this runner vs the origin story's notebook, same weights."""
    import keras
    import tensorflow as tf

    from export.onnx_export import contract, save
    from export.onnx_graph import to_onnx
    from trainer import model
    from trainer.plan import plan
    from trainer.rundir import open_run

    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        config = resolve("full", None, {**PLAIN_PIX2PIX, "data": {"videos": (str(CLIP),), "stride": 6, "hop": 1}})
        open_run(run, config, plan(config))
        keras.utils.set_random_seed(0)
        generator = model.generator(config)  # untrained weights: speed does not depend on them
        tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator), run / "checkpoints", 1).save()
        onnx_path = run / "generator.onnx"
        meta = contract(run, 0, "untrained")
        save(to_onnx(generator, meta.output, 17), onnx_path, meta)
        figures |= model_only(generator, onnx_path)
        for name, program, target in (("epilogue", "epilogue_rollout", onnx_path),
                                      ("origin_notebook", "notebook_rollout", run)):
            out = subprocess.run(probe(program, target, CLIP, Path(tmp) / f"{name}.mp4", steps), capture_output=True,
                                 text=True, cwd=ROOT)
            if out.returncode:
                raise SystemExit(f"bench rollout: {name} failed:\n{out.stderr[-3000:]}")
            result = json.loads(out.stdout.splitlines()[-1])
            figures |= {f"{name}_wall_s": round(result.pop("wall_s"), 1),
                        f"{name}_model_s_per_step": round(result.pop("model_s_per_step"), 4),
                        f"{name}_peak_rss_mb": int(result.pop("peak_rss_mb"))}
            figures |= {f"{name}_{key}": value for key, value in result.items()}  # provider, cuda_graphs
    figures["wall_time_ratio"] = round(figures["origin_notebook_wall_s"] / figures["epilogue_wall_s"], 2)
    figures["goal"] = "origin notebook / epilogue wall time >= 3x"
    figures["setup"] = (f"{steps} steps, 256x256 pix2pix (54.4 M parameters), 1920x1080 libx264 MP4; epilogue on the "
                        "provider it picks (auto), the notebook on what TensorFlow finds")
    return figures


def cli(rounds: int = 3) -> dict:
    """Seconds until `epilogue-train --help` answers, against what it cost before the command line answered
    without TensorFlow: importing the training module (TensorFlow with it). Medians of alternating rounds."""
    commands = {"help": [sys.executable, "-m", "trainer.cli", "--help"],
                "import_training": [sys.executable, "-c", "import trainer.train"]}
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            seconds[name].append(timed(lambda c=command: subprocess.run(c, capture_output=True, check=True, cwd=ROOT)))
    help_s, before_s = (float(np.median(seconds[name])) for name in commands)
    return {"train_help_s": round(help_s, 2), "before_import_training_s": round(before_s, 2),
            "speedup": round(before_s / help_s, 1), "setup": f"medians of {rounds} alternating rounds, subprocesses"}


def converters(runs: int = 10) -> dict:
    """The native ONNX writer against tf2onnx (the general path) at the demo and full sizes: seconds to
    export, peak memory of the exporting process, and ONNX Runtime CPU seconds per frame (median of `runs`)."""
    figures = {}
    for preset in ("demo", "full"):
        for converter in ("native", "tf2onnx"):
            out = subprocess.run(probe("convert", preset, converter, runs), capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                raise SystemExit(f"bench converters: {preset} {converter} failed:\n{out.stderr[-3000:]}")
            result = json.loads(out.stdout.splitlines()[-1])
            figures |= {f"{preset}_{converter}_export_s": round(result["export_s"], 1),
                        f"{preset}_{converter}_peak_rss_mb": result["peak_rss_mb"],
                        f"{preset}_{converter}_s_per_frame": round(result["s_per_frame"], 4)}
        figures[f"{preset}_tf2onnx_vs_native_s_per_frame"] = round(
            figures[f"{preset}_tf2onnx_s_per_frame"] / figures[f"{preset}_native_s_per_frame"], 2)
    figures["setup"] = "untrained generators, opset 17, ONNX Runtime CPU, one frame at a time, each in its own process"
    return figures


def cpu_flags(*names: str) -> list[str]:
    """Which of these CPU features (as /proc/cpuinfo spells them) this machine has."""
    try:
        flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("flags")).split())
    except (OSError, StopIteration):
        return []
    return [name for name in names if name in flags]


def int8(runs: int = 10) -> dict:
    """ONNX Runtime CPU seconds per step of the generator quantized statically to int8 (QDQ, per-channel weights,
    calibrated on 20 frames of the bundled clip) against its float32 model, demo (128) and full (256) sizes:
    every operator quantized (ONNX Runtime's default, int8 activations), and only the convolutions (uint8
    activations, what AVX2 multiplies fastest). Untrained generators: speed does not depend on the weights."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from export.onnx_graph import to_onnx
    from infer.frames import to_model
    from infer.video import read_frames
    from trainer import model

    class Frames(CalibrationDataReader):
        def __init__(self, frames: list[np.ndarray]):
            self.left = iter([{"frame": f[None]} for f in frames])

        def get_next(self) -> dict | None:
            return next(self.left, None)

    def per_step(path: Path, frame: np.ndarray) -> tuple[float, np.ndarray]:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        session.run(None, {"frame": frame})
        seconds = [timed(lambda: session.run(None, {"frame": frame})) for _ in range(runs)]  # noqa: B023
        return float(np.median(seconds)), session.run(None, {"frame": frame})[0]

    variants = {"all_ops_s8": (QuantType.QInt8, None), "convs_only_u8": (QuantType.QUInt8, ["Conv"])}
    figures: dict = {"cpu_int8_features": cpu_flags("avx2", "avx512_vnni", "avx_vnni", "amx_int8") or ["none"]}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in ("demo", "full"):
            config = resolve(preset, None, {})
            plain = Path(tmp) / f"{preset}.onnx"
            onnx.save(to_onnx(model.generator(config), "next_frame", 17), str(plain))
            frames = [to_model(f)[0] for _, f in read_frames(CLIP, config.frame_size, wanted=set(range(0, 500, 25)))]
            base, expected = per_step(plain, frames[5][None])
            figures[f"{preset}_float32_s_per_step"] = round(base, 4)
            for name, (activations, ops) in variants.items():
                quantized = Path(tmp) / f"{preset}_{name}.onnx"
                quantize_static(str(plain), str(quantized), Frames(frames), quant_format=QuantFormat.QDQ,
                                per_channel=True, activation_type=activations, weight_type=QuantType.QInt8,
                                op_types_to_quantize=ops)
                seconds, got = per_step(quantized, frames[5][None])
                figures[f"{preset}_int8_{name}_speedup"] = round(base / seconds, 2)
                figures[f"{preset}_int8_{name}_step_max_abs_diff"] = round(float(np.abs(got - expected).max()), 3)
    figures["goal"] = "int8 >= 1.5x float32 per step"
    figures["setup"] = (f"untrained demo (128x128) and full (256x256) generators, opset 17, ONNX Runtime CPU, one "
                        f"frame, median of {runs}; diff: one step on a frame of the bundled clip, values in [-1, 1]")
    return figures


def precision(steps: int = 5, rounds: int = 2) -> dict:
    """Training steps/s in mixed_bfloat16 against float32 at the demo size (128x128, the presets' windows), same
    process, alternating rounds; and whether this CPU computes bfloat16 natively (AVX512_BF16 or AMX)."""
    import keras
    import tensorflow as tf

    from trainer import data, store
    from trainer.plan import plan
    from trainer.train import Trainer

    config = resolve("demo", None, {"data": {"videos": (str(CLIP),)}})
    loops = {}
    with tempfile.TemporaryDirectory() as run_dir:
        frames = store.open_store(config, plan(config), "train", Path(run_dir) / "frames")
        for name in ("float32", "mixed_bfloat16"):
            keras.utils.set_random_seed(0)
            trainer = Trainer(config, Path(run_dir) / name, tf.distribute.get_strategy(), name)
            loops[name] = (trainer, iter(data.train_batches(config, frames, 0)))
        rates: dict[str, list[float]] = {name: [] for name in loops}
        for trainer, batches in loops.values():  # trace and warm up
            [float(trainer.step_fn(next(batches))["gen"]) for _ in range(2)]
        for _ in range(rounds):
            for name, (trainer, batches) in loops.items():
                rates[name].append(steps / timed(
                    lambda t=trainer, b=batches: [float(t.step_fn(next(b))["gen"]) for _ in range(steps)]))
    base = float(np.median(rates["float32"]))
    native = cpu_flags("avx512_bf16", "amx_bf16")
    return {"cpu_bfloat16_features": native or ["none"], "float32_steps_per_s": round(base, 2),
            "mixed_bfloat16_vs_float32": round(float(np.median(rates["mixed_bfloat16"])) / base, 2),
            "setup": f"demo preset (128x128, windows of 6, mask head), batch 1, bundled clip; medians of {rounds} "
                     f"rounds of {steps} steps past 2 warm-up steps, alternating"}


def _rate(output: str, prefix: str = "") -> float:
    """The last steps/s a training run printed (plain lines), from the lines starting with `prefix`."""
    rates = [float(line.split("steps/s")[0].split()[-1]) for line in output.splitlines()
             if line.startswith(prefix) and "train: step" in line]
    if not rates:
        raise SystemExit(f"bench workers: no progress line in:\n{output[-3000:]}")
    return rates[-1]


def workers(steps: int = 150) -> dict:
    """Multi-worker training on one machine: steps/s and windows/s of 2 local workers against one process on the
    same global batch (2), and the first epoch's decode time of each worker's share against the whole split."""
    from trainer import store
    from trainer.plan import plan, shard

    config = resolve("full", None, {**PLAIN_PIX2PIX, "data": {"videos": (str(CLIP),), "stride": 6, "hop": 1}})
    plans = plan(config)
    figures = {}
    with tempfile.TemporaryDirectory() as cache:
        def first_epoch(share, name: str) -> float:
            return timed(lambda: sum(1 for _ in store.open_store(config, share, "train", Path(cache), name)
                                     .windows().batch(64)))

        figures["first_epoch_whole_split_s"] = round(first_epoch(plans, "whole"), 2)
        for me in range(2):
            figures[f"first_epoch_worker{me}_of_2_s"] = round(first_epoch(shard(plans, "train", me, 2), f"w{me}"), 2)
    slowest = max(figures["first_epoch_worker0_of_2_s"], figures["first_epoch_worker1_of_2_s"])
    figures["first_epoch_slowest_worker_vs_whole"] = round(slowest / figures["first_epoch_whole_split_s"], 2)
    rates = {}
    with tempfile.TemporaryDirectory() as runs:
        base = [sys.executable, "-m", "trainer.cli", str(CLIP), "--preset", "demo", "--steps", str(steps),
                "--batch-size", "2", "--unroll", str(PLAIN_PIX2PIX["train"]["unroll"]),
                "--head", PLAIN_PIX2PIX["model"]["head"]]
        for name, extra, prefix in (("one_process", [], ""), ("two_workers", ["--local-workers", "2"], "[worker 0]")):
            out = subprocess.run([*base, "--run-dir", f"{runs}/{name}", *extra], capture_output=True, text=True,
                                 cwd=ROOT, env={**os.environ, "CI": "1"})
            if out.returncode:
                raise SystemExit(f"bench workers: {name} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
            rates[name] = _rate(out.stdout, prefix)
    for name, rate in rates.items():
        figures[f"{name}_steps_per_s"] = round(rate, 2)
        figures[f"{name}_windows_per_s"] = round(rate * 2, 2)
    figures["two_workers_vs_one_process"] = round(rates["two_workers"] / rates["one_process"], 2)
    figures["setup"] = (f"decode: bundled clip at 256x256, stride 6, hop 1, first epoch of the train split, whole vs "
                        f"each worker's block; training: demo preset on two-frame windows, global batch 2, {steps} "
                        "steps (rate over the run, start-up tracing included), one process vs 2 local workers on "
                        "loopback")
    return figures


SECTIONS = {"cli": cli, "pipeline": pipeline, "memory": memory, "training": training, "techniques": techniques,
            "converters": converters, "rollout": rollout, "workers": workers, "int8": int8, "precision": precision}


def main(names: list[str]) -> None:
    unknown = set(names) - set(SECTIONS)
    if unknown:
        sys.exit(f"error: unknown bench section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in names or list(SECTIONS):
        print(f"bench: {name} ...", flush=True)
        results[name] = {**SECTIONS[name](), "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
                         "date": time.strftime("%Y-%m-%d")}
        write_text_atomic(RESULTS, json.dumps(results, indent=2) + "\n")
    table = Table("section", "figure", "value")
    for section, figures in results.items():
        for key, value in figures.items():
            table.add_row(section, key, str(value))
    Console().print(table)
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main(sys.argv[1:])
