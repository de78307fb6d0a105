"""The exported generator under ONNX Runtime, stepping on its own output.

`Stepper` keeps a ring of context + 1 device buffers: each step binds the K newest frames as inputs and the
oldest buffer, no longer needed, as the output; step k reads what steps k-1..k-K wrote, so the rollout is
autoregressive by construction, nothing is copied and, on CUDA, frames never leave the GPU except to be
encoded. The same IOBinding path runs on the CPU provider, so it is what the tests exercise.

On CUDA each rotation of the ring (two for a one-frame model: buffer 0 -> 1, 1 -> 0) is captured once as a
CUDA graph and replayed: a step is then one launch instead of one per layer. If the session can't be opened
with CUDA graphs, the runner says why and steps without them.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from infer.contract import Contract
from infer.errors import UserError
from infer.frames import to_model, to_uint8
from infer.video import file_sha256

try:
    import onnxruntime as ort
except ImportError:  # the lean install lets the user choose the CPU or the GPU build
    ort = None

PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}


@dataclass
class Model:
    session: ort.InferenceSession
    contract: Contract
    provider: str  # the execution provider that actually runs the model
    device: str  # "cuda" or "cpu": where the step buffers live
    graphs: bool = False  # steps replay captured CUDA graphs
    # A captured graph holds its buffers' addresses: each Stepper gets ids of its own (0 is ONNX Runtime's).
    graph_ids: itertools.count = field(default_factory=lambda: itertools.count(1))


def tensorrt_options(path: Path) -> dict[str, str]:
    """TensorRT builds an engine for a model for minutes before its first step: cache it in the user's cache
    folder, keyed by the model's sha256, so only the first run of a model pays. float16 kernels only for the
    float16 variant export writes (`*_fp16.onnx`), whose parity was checked in float16."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "epilogue" / "tensorrt"
    folder = cache / file_sha256(path)[:16]
    return {"trt_engine_cache_enable": "1", "trt_engine_cache_path": str(folder), "trt_timing_cache_enable": "1",
            "trt_timing_cache_path": str(cache), "trt_fp16_enable": "1" if path.stem.endswith("_fp16") else "0"}


def _session(path: Path, provider: str, graphs: bool = False) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 4  # a provider that can't start is reported by us, in one line
    first: str | tuple[str, dict[str, str]] = PROVIDERS[provider]
    if graphs:
        first = (PROVIDERS[provider], {"enable_cuda_graph": "1"})
    elif provider == "tensorrt":
        first = (PROVIDERS[provider], tensorrt_options(path))
        folder = Path(first[1]["trt_engine_cache_path"])
        folder.mkdir(parents=True, exist_ok=True)
        if not any(folder.iterdir()):
            print("building the TensorRT engine (first run only; cached in "
                  f"{folder})", flush=True)
    chain = [first] + ([PROVIDERS["cpu"]] if provider != "cpu" else [])
    return ort.InferenceSession(str(path), options, providers=chain)


def _cuda_graph_session(path: Path) -> tuple[ort.InferenceSession | None, str]:
    """A CUDA session that captures graphs, or None and why not (in words for the provider line)."""
    try:
        return _session(path, "cuda", graphs=True), "CUDA graphs on"
    except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own untyped errors
        return None, f"CUDA graphs off: {str(error).splitlines()[0][:100]}"


def _unreadable(path: Path, error: Exception) -> UserError | None:
    """The file itself can't be run: not an ONNX model, or one newer than this onnxruntime reads. Asked only of
    the CPU provider's error: a GPU provider that fails to start can say INVALID about itself, not the file."""
    text = str(error)
    if (newer := re.search(r"Unsupported model IR version: \d+, max supported IR version: \d+", text)):
        return UserError(f"model {path} is newer than onnxruntime {ort.__version__} reads ({newer[0]}); "
                         "upgrade onnxruntime or export the model again with this epilogue")
    if "protobuf" in text.lower() or "INVALID" in text:
        return UserError(f"model {path} is not an ONNX model ({text.splitlines()[0][:120]})")
    return None


def load(path: Path, provider: str = "auto") -> Model:
    """Open an epilogue ONNX model on the first provider that really starts: TensorRT, CUDA, then CPU."""
    if ort is None:
        raise UserError("onnxruntime is not installed; pip install 'epilogue[cpu]' (or 'epilogue[runner-gpu]' on a GPU "
                        "machine)")
    if provider != "auto" and provider not in PROVIDERS:
        raise UserError(f"--provider must be auto, {', '.join(PROVIDERS)} (got {provider!r})")
    if not path.is_file():
        raise UserError(f"model {path} does not exist" if not path.exists() else f"model {path} is not a file")
    available = ort.get_available_providers()
    wanted = list(PROVIDERS) if provider == "auto" else [provider]
    tried = []
    for name in wanted:
        if PROVIDERS[name] not in available:
            tried.append(f"{name}: not in this onnxruntime build")
            continue
        graph_session, graphs_note = _cuda_graph_session(path) if name == "cuda" else (None, "")
        try:
            session = graph_session or _session(path, name)
        except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own untyped errors
            if name == "cpu" and (refusal := _unreadable(path, error)):
                raise refusal from None
            tried.append(f"{name}: {str(error).splitlines()[0][:80]}")
            continue
        if session.get_providers()[0] != PROVIDERS[name]:  # onnxruntime-gpu without CUDA falls back silently
            tried.append(f"{name}: could not start (no driver or libraries)")
            continue
        contract = Contract.from_metadata(session.get_modelmeta().custom_metadata_map, path)
        if contract.layout != "NHWC" or tuple(contract.value_range) != (-1.0, 1.0) \
                or len(contract.inputs) != contract.context_frames:
            raise UserError(f"model {path} wants {contract.layout} frames in {contract.value_range} through "
                            f"{len(contract.inputs)} inputs for {contract.context_frames} context frames; this runner "
                            "feeds NHWC in [-1, 1], one input per context frame")
        device = "cpu" if name == "cpu" else "cuda"
        note = f" ({'; '.join(tried)})" if tried else ""
        if name == "tensorrt" and contract.config.model.head == "warp":
            note += ("; the warp head runs GridSample, which some TensorRT versions compute wrong "
                     "(NVIDIA/TensorRT#4646): if the picture slides or smears, run with --provider cuda")
        print(f"provider: {PROVIDERS[name]}{', ' + graphs_note if graphs_note else ''}{note}", flush=True)
        return Model(session, contract, PROVIDERS[name], device, graphs=graph_session is not None)
    if "cpu" not in wanted and (refusal := _cpu_refusal(path, available)):  # a GPU provider asked by name
        raise refusal
    raise UserError(f"no execution provider could run {path}: {'; '.join(tried)}")


def _cpu_refusal(path: Path, available: list[str]) -> UserError | None:
    """Whether the file itself is at fault, asked of the CPU provider when only a GPU one was tried."""
    if PROVIDERS["cpu"] not in available:
        return None
    try:
        _session(path, "cpu")
    except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own untyped errors
        return _unreadable(path, error)
    return None


class Stepper:
    """A ring of context + 1 device buffers: each step writes the buffer whose frame just left the context."""

    def __init__(self, model: Model):
        height, width = model.contract.frame_size
        self.session, self.contract = model.session, model.contract
        self.context = model.contract.context_frames
        self.buffers = [ort.OrtValue.ortvalue_from_shape_and_type((1, height, width, 3), np.float32, model.device, 0)
                        for _ in range(self.context + 1)]
        self.binding = model.session.io_binding()
        self.newest = self.context - 1  # the buffer holding the latest frame
        # One captured CUDA graph per rotation of the ring; the id is ignored without graphs.
        self.rotations = [ort.RunOptions() for _ in self.buffers]
        for options in self.rotations:
            options.add_run_config_entry("gpu_graph_id", str(next(model.graph_ids)))

    def reset(self, frames: list[np.ndarray]) -> None:
        """Fill the context with uint8 start frames, oldest first."""
        if len(frames) != self.context:
            raise UserError(f"this model continues from {self.context} frames {self.contract.stride} source "
                            f"frames apart; got {len(frames)}")
        self.newest = self.context - 1
        for buffer, frame in zip(self.buffers, frames, strict=False):
            buffer.update_inplace(to_model(frame))

    def step(self) -> None:
        ring = len(self.buffers)
        inputs = [self.buffers[(self.newest - self.context + 1 + j) % ring] for j in range(self.context)]
        target = (self.newest + 1) % ring
        for name, buffer in zip(self.contract.inputs, inputs, strict=True):
            self.binding.bind_ortvalue_input(name, buffer)
        self.binding.bind_ortvalue_output(self.contract.output, self.buffers[target])
        self.session.run_with_iobinding(self.binding, self.rotations[target])
        self.newest = target

    def frame(self) -> np.ndarray:
        """The latest frame, copied to the host as float32 1xHxWx3."""
        return self.buffers[self.newest].numpy()

    def apply(self, frames: list[np.ndarray]) -> np.ndarray:
        """One step on given uint8 context frames, oldest first (per-frame mode); returns the output as uint8."""
        self.reset(frames)
        self.step()
        return to_uint8(self.frame())
