"""What an exported model promises its runner, stored in the ONNX file's metadata_props.

Every value is JSON (read with json.loads, never eval). The runner needs nothing else: the training config
(typed, `infer.config.Config`: frame size, how source frames were fitted, how many source frames one step
spans, how many frames the model sees), the value range, the source's rate and which film it was.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from infer.config import Config
from infer.errors import UserError

CONTRACT_KEY = "epilogue"  # marks the file as ours; the other keys sit beside it
FORMAT = 3  # 2: `inputs` lists the context frames' inputs, oldest first; 3: the config once, typed; the film's sha256


def input_names(context: int) -> list[str]:
    """The generator's inputs, oldest first: `frame` is the newest, `frame_minus_j` the frame j steps earlier."""
    return [f"frame_minus_{context - 1 - j}" for j in range(context - 1)] + ["frame"]


@dataclass(frozen=True)
class Contract:
    inputs: tuple[str, ...]  # one per context frame, oldest first
    output: str
    layout: str  # NHWC
    value_range: tuple[float, float]
    source_fps: float
    source_size: tuple[int, int]  # width, height of the training video, as displayed
    training_step: int
    checkpoint: str  # which checkpoint export took: best, latest or a step number
    config_fingerprint: str
    epilogue_version: str
    source_video: str
    source_sha256: str  # the training film's file: evaluation knows it by this, not by its length
    source_frames: int
    splits: dict[str, list[int]]  # [start, stop) frames of the first video's train, val and test splits, up to its end
    config: Config
    parity: dict[str, float] | None = None
    parity_provider: str | None = None

    @property
    def frame_size(self) -> tuple[int, int]:
        """Height, width of the model's frames."""
        return self.config.frame_size

    @property
    def fit(self) -> str:
        """squash | crop: how source frames became model frames."""
        return self.config.data.fit

    @property
    def stride(self) -> int:
        """Source frames per step."""
        return self.config.data.stride

    @property
    def context_frames(self) -> int:
        """Frames the model sees, `stride` apart; a rollout starts from this many real frames."""
        return self.config.model.context

    @property
    def held_out(self) -> bool:
        """False for a --final model: every frame of its film up to the end was trained on."""
        return self.config.held_out

    @property
    def film_end(self) -> int:
        """The training film's last frame as training saw it (`--end`, else the video's last frame)."""
        return max(stop for _, stop in self.splits.values()) - 1

    def with_parity(self, parity: dict[str, float] | None, provider: str | None) -> Contract:
        return dataclasses.replace(self, parity=parity, parity_provider=provider)

    def to_metadata(self) -> dict[str, str]:
        values = {k: json.dumps(v) for k, v in dataclasses.asdict(self).items()}
        # Said plainly for whoever reads the file's metadata; the runner derives it from the config.
        plain = {"held_out": json.dumps(self.held_out), "film_end": json.dumps(self.film_end)}
        return {CONTRACT_KEY: json.dumps({"format": FORMAT}), **values, **plain}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], where: Path) -> Contract:
        if CONTRACT_KEY not in metadata:
            raise UserError(f"{where} has no epilogue metadata; export it with epilogue-export")
        try:
            made = json.loads(metadata[CONTRACT_KEY]).get("format")
        except (json.JSONDecodeError, AttributeError):
            made = None
        if made != FORMAT:
            raise UserError(f"{where} was exported by another epilogue (contract format {made}, this one reads "
                            f"{FORMAT}); export it again with epilogue-export")
        try:
            values = {f.name: json.loads(metadata[f.name]) for f in dataclasses.fields(cls) if f.name in metadata}
            for name in ("inputs", "value_range", "source_size"):
                values[name] = tuple(values[name])
            values["config"] = Config.from_dict(values["config"])
            return cls(**values)
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError, UserError) as error:
            raise UserError(f"{where} has incomplete epilogue metadata ({error}); export it again") from None
