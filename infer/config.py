"""The one config that flows video -> windows -> model -> checkpoint -> ONNX -> rollout -> video.

It is saved as `config.json` in the run directory and inside the ONNX model's metadata, so every later
stage reads the same values instead of being told them again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infer.errors import UserError

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "mirrored", "multiworker")
FITS = ("squash", "crop")
UPSAMPLES = ("transpose", "resize")
HEADS = ("direct", "residual", "mask", "warp")
BEST_BY = ("l1", "continuation")
SPLIT_NAMES = ("train", "val", "test")
FINAL_SPLITS = (1.0, 0.0, 0.0)  # --final: every frame up to the film's end is trained on
END = re.compile(r"\d+|(\d+(\.\d*)?|\.\d+)s?")  # a frame number, or seconds (25, 25.5, 25.5s)


@dataclass(frozen=True)
class DataConfig:
    videos: tuple[str, ...] = ()
    height: int = 256
    width: int = 256
    fit: str = "squash"  # squash: stretch to the frame size (and back at rollout); crop: center-crop
    stride: int = 100  # source frames between a pair's input and its target: one rollout step
    hop: int = 0  # source frames between consecutive pair starts; 0 means `stride`
    # The film's last frame: a frame number or seconds (25.5s); "" is the video's own last frame. Frames after it
    # (credits, a fade to black) are not trained on, and a rollout from this film starts from it.
    end: str = ""
    # train, val, test: in time, never random, over the frames up to `end`. 1,0,0 (--final) holds nothing out: the
    # model that makes the continuation, trained on the film up to its end.
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15)
    jitter: float = 0.12  # upscale by this much, then random-crop back (same for both frames)
    mirror: bool = False  # mirroring reverses the motion to learn: off for video
    shuffle_buffer: int = 2048  # training windows held for shuffling: two blocks of half as many, in time


@dataclass(frozen=True)
class ModelConfig:
    filters: int = 64  # filters of the first U-Net block; doubles per block up to 8x
    depth: int = 8  # down blocks; frame height and width must be multiples of 2**depth
    dropout: float = 0.5  # in the first three up blocks, training only
    context: int = 1  # frames the generator sees, `stride` apart, oldest to newest; 1 is plain pix2pix
    # What the last layer's output means. direct: the next frame (pix2pix); residual: a change added to the newest
    # context frame, kept in [-1, 1]; mask: a drawn frame and a mask that keeps the newest frame's pixels where it is 1;
    # warp: per pixel, keep the newest frame, take it warped by a predicted flow, or take a drawn frame.
    head: str = "direct"
    keep_init: float = 0.5  # the mask or warp head's share of the newest frame kept everywhere before training
    upsample: str = "transpose"  # transpose: 4x4 transposed convolutions; resize: nearest 2x, then a 3x3 convolution


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 40_000
    batch_size: int = 1  # global, over all replicas
    learning_rate: float = 2e-4
    beta1: float = 0.5
    l1_weight: float = 100.0
    gradient_weight: float = 0.0  # gradient-difference loss: the prediction's edges against the target's (sharpness)
    noise: float = 0.0  # conditioning noise: std drawn per sample from [0, noise] on the input frames, [-1, 1] units
    unroll: int = 0  # train on its own outputs: inputs made by up to this many generator steps from real frames
    unroll_ramp: float = 1 / 3  # share of training over which the unroll depth grows from 0 to `unroll`
    unroll_grad: bool = False  # backpropagate through the unrolled steps too (default: they are fixed inputs)
    # A second discriminator judges this many consecutive generator steps from real frames against the real ones
    # (0: none). Its loss reaches every step of the chain, so a chain that stalls, fades or flickers is penalised.
    sequence_disc: int = 0
    sequence_weight: float = 1.0  # the sequence discriminator's loss against the one-step GAN loss (weight 1)
    # The warp head's flow against DIS flow between the real frames (pixels, L1; 0: none): a flow target that
    # says which way things go (trainer/flows.py).
    flow_weight: float = 0.0
    flow_floor: float = 0.0  # the flow target counts only where it moves at least this many pixels (0: everywhere)
    # The warp loss (0: none): the newest frame warped by the warp head's flow against the target, plus smoothness.
    warp_weight: float = 0.0
    lr_decay: bool = True  # linear decay to 0 over the second half (pix2pix)
    precision: str = "auto"  # auto: mixed_float16 on GPU, float32 on CPU
    strategy: str = "auto"  # auto: multiworker with TF_CONFIG, mirrored on >1 GPU, else default
    xla: bool = False
    seed: int = 0
    deterministic: bool = False
    eval_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3  # the latest checkpoints kept in checkpoints/ (best/ keeps its own)
    # What best/ keeps: l1, the lowest one-step validation L1; continuation, the lowest continuation score (a short
    # rollout from the validation split's first frames). make quality found them alike (README, Quality).
    best_by: str = "l1"
    eval_windows: int = 64  # validation windows scored at each eval (all of them at the end)
    preview_steps: int = 24


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def hop(self) -> int:
        return self.data.hop or self.data.stride

    @property
    def window(self) -> int:
        """Frames in one training example, `stride` apart: the context, then a target for each unrolled step (or
        each step of the sequence discriminator's chain, if longer)."""
        return self.model.context + max(self.train.unroll + 1, self.train.sequence_disc)

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.data.height, self.data.width

    @property
    def held_out(self) -> bool:
        """Whether frames of the film are held out to choose the checkpoint and to test; not for a --final model."""
        return self.data.splits[1] > 0

    def per_replica_batch(self, replicas: int) -> int:
        """The batch is global, split evenly over the replicas: each needs at least one window, and all the same
        number, or a replica's step would meet an empty or odd-sized batch."""
        batch = self.train.batch_size
        if batch % replicas:
            raise UserError(f"--batch-size {batch} is the global batch, split over {replicas} replicas: give a "
                            f"multiple of {replicas} (e.g. --batch-size {replicas * max(1, batch // replicas)})")
        return batch // replicas

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Short hash of everything that shapes the model and its data."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        return apply(cls(), values)

    def validate(self) -> Config:
        d, m, t = self.data, self.model, self.train
        if d.stride < 1 or d.hop < 0:
            raise UserError(f"stride must be >= 1 and hop >= 1, or 0 for the stride (got stride {d.stride}, "
                            f"hop {d.hop})")
        if d.jitter < 0 or d.shuffle_buffer < 1:
            raise UserError(f"jitter must be >= 0 and shuffle_buffer >= 1 (got {d.jitter}, {d.shuffle_buffer})")
        if len(d.splits) != 3 or any(f < 0 for f in d.splits) or abs(sum(d.splits) - 1) > 1e-6:
            raise UserError(
                f"split fractions {list(d.splits)} must be three non-negative numbers (train, val, test) "
                f"summing to 1, e.g. 0.7,0.15,0.15"
            )
        if d.splits[1] == 0 and d.splits[2] > 0:
            raise UserError(f"split fractions {list(d.splits)} hold out a test split but no validation split to "
                            "choose the checkpoint: give val a share (e.g. 0.7,0.15,0.15), or hold out nothing "
                            "with --final")
        if d.end and not END.fullmatch(d.end):
            raise UserError(f"end {d.end!r} is not a frame number or seconds (e.g. 600 or 25.5s)")
        if d.fit not in FITS:
            raise UserError(f"fit must be one of {', '.join(FITS)} (got {d.fit!r})")
        multiple = 2**m.depth
        if d.height % multiple or d.width % multiple or min(d.height, d.width) < multiple:
            raise UserError(
                f"frame size {d.height}x{d.width} can't be taken by a depth-{m.depth} U-Net: height and width "
                f"must be multiples of {multiple}; pick another size or depth"
            )
        if m.filters < 1 or not 0 <= m.dropout < 1:
            raise UserError(f"filters must be >= 1 and dropout in [0, 1) (got {m.filters}, {m.dropout})")
        if m.context < 1 or t.unroll < 0 or t.noise < 0 or t.gradient_weight < 0 or not 0 < t.unroll_ramp <= 1:
            raise UserError(f"context must be >= 1, unroll, noise and gradient_weight >= 0 and unroll_ramp in (0, 1] "
                            f"(got {m.context}, {t.unroll}, {t.noise}, {t.gradient_weight}, {t.unroll_ramp})")
        if t.sequence_disc == 1 or t.sequence_disc < 0 or t.sequence_weight < 0:
            raise UserError(f"sequence_disc is the number of generated frames judged together: 0 (none) or 2 or more, "
                            f"and sequence_weight >= 0 (got {t.sequence_disc}, {t.sequence_weight})")
        if t.flow_floor < 0 or (t.flow_floor and not t.flow_weight):
            raise UserError(f"flow_floor is where the flow target counts (pixels): give >= 0, and --flow-weight with "
                            f"it (got {t.flow_floor} with flow_weight {t.flow_weight})")
        if t.flow_weight < 0 or (t.flow_weight and m.head != "warp"):
            raise UserError(f"flow_weight weighs the warp head's flow against a flow target: give >= 0, and with it "
                            f"--head warp (got {t.flow_weight} with the {m.head} head)")
        if t.warp_weight < 0 or (t.warp_weight and m.head != "warp"):
            raise UserError(f"warp_weight weighs the warp head's flow by how well it warps: give >= 0, and with it "
                            f"--head warp (got {t.warp_weight} with the {m.head} head)")
        if t.flow_weight and (d.jitter or d.mirror):
            raise UserError("flow targets are computed on the frames as stored: give --jitter 0 and no --mirror with "
                            "flow_weight")
        if m.head not in HEADS:
            raise UserError(f"head must be one of {', '.join(HEADS)} (got {m.head!r})")
        if not 0 < m.keep_init < 1:
            raise UserError(f"keep_init is a share of pixels kept: give a number between 0 and 1, e.g. 0.95 (got "
                            f"{m.keep_init})")
        if m.keep_init != 0.5 and m.head not in ("mask", "warp"):
            raise UserError(f"keep_init is the mask and warp heads', and this model's head is {m.head}: add --head "
                            f"mask, or leave keep_init at 0.5")
        if m.upsample not in UPSAMPLES:
            raise UserError(f"upsample must be one of {', '.join(UPSAMPLES)} (got {m.upsample!r})")
        if t.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)} (got {t.precision!r})")
        if t.best_by not in BEST_BY:
            raise UserError(f"best_by must be one of {', '.join(BEST_BY)} (got {t.best_by!r})")
        if t.strategy not in STRATEGIES:
            raise UserError(f"strategy must be one of {', '.join(STRATEGIES)} (got {t.strategy!r})")
        counts = {"steps": t.steps, "batch_size": t.batch_size, "eval_every": t.eval_every,
                  "checkpoint_every": t.checkpoint_every, "keep_checkpoints": t.keep_checkpoints,
                  "eval_windows": t.eval_windows, "preview_steps": t.preview_steps}
        if bad := {k: v for k, v in counts.items() if v < 1}:
            raise UserError(f"these must be >= 1: {', '.join(f'{k} (got {v})' for k, v in bad.items())}")
        return self


# What `make quality` found keeps a continuation a film (README, Quality): no jitter, whose bilinear rescaling
# made every training target softer; training on up to 4 of its own steps; and the mask head, which keeps what
# stands still exactly. The dataclass defaults stay pix2pix's own training, which the `tiny` and `quality`
# presets keep: tests and the yardstick's baseline.
ALIVE: dict[str, dict[str, Any]] = {"data": {"jitter": 0.0}, "model": {"head": "mask"}, "train": {"unroll": 4}}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Seconds on a CPU: for tests.
    "tiny": {
        "data": {"height": 64, "width": 64, "stride": 2, "hop": 1, "shuffle_buffer": 256},
        "model": {"filters": 8, "depth": 6},
        "train": {"steps": 40, "eval_every": 20, "checkpoint_every": 20, "eval_windows": 8,
                  "preview_steps": 8},
    },
    # About ten minutes on two CPU cores with the bundled clip. Like `full` below,
    # it trains on the film's own pixels and on its own outputs (see `ALIVE`).
    "demo": {
        "data": {"height": 128, "width": 128, "stride": 6, "hop": 1, **ALIVE["data"]},
        "model": {"filters": 32, "depth": 7, **ALIVE["model"]},
        "train": {"steps": 4000, "eval_every": 500, "checkpoint_every": 500, "eval_windows": 32, **ALIVE["train"]},
    },
    # make quality: one training budget for comparing settings; 2 videos x 3 seeds in about 30 minutes on 2 cores.
    "quality": {
        "data": {"height": 64, "width": 64, "stride": 6, "hop": 1},
        "model": {"filters": 32, "depth": 6},
        "train": {"steps": 2000, "eval_every": 500, "checkpoint_every": 500, "eval_windows": 32},
    },
    # The full-size model: pix2pix's generator and discriminator at 256x256, trained to stay alive (which pix2pix's
    # own training does not: that is the dataclass defaults).
    "full": ALIVE,
}


RENAMED = {"pix2pix": "full"}  # it trains to stay alive now, which pix2pix's own training does not


def as_today(values: dict[str, Any]) -> dict[str, Any]:
    """A recorded config as it reads today, in JSON's types: an option added since reads as its default, which
    is what the record was made with."""
    return json.loads(json.dumps(Config.from_dict(values).to_dict()))


def _heads_as_today(model: dict[str, Any], head: str, where: str) -> dict[str, Any]:
    """Before `head`, the head was two switches, `residual` and `mask`: run directories, config files and `make
    quality` records made then read as today's field. A switch turned off ends only its own head (`head` is the
    one in force so far, e.g. a preset's)."""
    switches = {k: model[k] for k in ("residual", "mask") if k in model}
    if not switches:
        return model
    if "head" in model or all(switches.get(k) for k in ("residual", "mask")):
        raise UserError(f"{where}: residual and mask are the old spelling of head, and they say two things here; "
                        f"give only head (direct, residual or mask)")
    model = {k: v for k, v in model.items() if k not in switches}
    on = [name for name, value in switches.items() if value]
    model["head"] = on[0] if on else "direct" if head in switches else head
    return model


# Fields renamed since: run directories, config files and `make quality` records that use the old name read as today's.
RENAMED_FIELDS = {("train", "eval_pairs"): "eval_windows"}

# What a field's type takes, in words for the one line that says a value does not fit.
KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
LISTS = {float: "a list of numbers", str: "a list of strings"}


def _fits(value: Any, kind: type) -> bool:
    """A float field takes an integer too; a bool is never taken for a number, nor a number for a bool."""
    return type(value) is kind or (kind is float and type(value) is int)


def _typed(value: Any, kind: Any, label: str) -> Any:
    """`value` as a field of type `kind` holds it (a float for an integer, a tuple for a list), or one line naming
    the field (`label`: where it came from and its name), the type it takes and the value."""
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        if isinstance(value, list | tuple) and all(_fits(v, item) for v in value):
            return tuple(item(v) for v in value)
        raise UserError(f"{label} must be {LISTS[item]} (got {value!r})")
    if _fits(value, kind):
        return kind(value)
    raise UserError(f"{label} must be {KINDS[kind]} (got {value!r})")


def apply(config: Config, values: dict[str, Any], where: str = "config") -> Config:
    """A copy of `config` with `values` ({section: {field: value}}) applied; unknown keys are errors."""
    sections = {f.name: f for f in dataclasses.fields(config)}
    updated = {}
    for name, fields_ in values.items():
        if name not in sections or not isinstance(fields_, dict):
            raise UserError(f"{where}: unknown section {name!r}; expected one of {', '.join(sections)}")
        if name == "model":
            fields_ = _heads_as_today(fields_, config.model.head, where)
        fields_ = {RENAMED_FIELDS.get((name, k), k): v for k, v in fields_.items()}
        section = getattr(config, name)
        known = {f.name: f for f in dataclasses.fields(section)}
        for key in fields_:
            if key not in known:
                raise UserError(f"{where}: unknown option {name}.{key}; known: {', '.join(known)}")
        types = typing.get_type_hints(type(section))
        typed = {k: _typed(v, types[k], f"{where}: {name}.{k}") for k, v in fields_.items()}
        updated[name] = dataclasses.replace(section, **typed)
    return dataclasses.replace(config, **updated)


def resolve(preset: str, config_file: Path | None, overrides: dict[str, dict[str, Any]]) -> Config:
    """Preset, then the TOML file, then command-line options: each later one wins."""
    if preset in RENAMED:
        raise UserError(f"preset {preset} is now called {RENAMED[preset]}: --preset {RENAMED[preset]}")
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    config = apply(Config(), PRESETS[preset], f"preset {preset}")
    if config_file is not None:
        try:
            values = tomllib.loads(config_file.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise UserError(f"can't read config file {config_file}: {error}") from None
        config = apply(config, values, str(config_file))
    given = {s: {k: v for k, v in fs.items() if v is not None} for s, fs in overrides.items()}
    config = apply(config, {s: fs for s, fs in given.items() if fs}, "command line")
    return config.validate()
