"""Which frame pairs (t, t + stride) each video gives, split in time into train, val and test.

Splits are contiguous stretches of each video and pairs never leave their stretch, so no frame is shared
between splits. A random split would put a frame's neighbours (nearly the same picture) on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infer.config import SPLIT_NAMES as SPLITS
from infer.config import Config
from infer.errors import UserError, warn
from infer.video import VideoInfo, probe

FEW_PAIRS = 20


@dataclass(frozen=True)
class Split:
    start: int  # first frame of the stretch
    stop: int  # one past its last frame
    starts: range  # input frame of each pair; its target is `stride` frames later

    def pairs(self, stride: int) -> list[tuple[int, int]]:
        return [(t, t + stride) for t in self.starts]


@dataclass(frozen=True)
class VideoPlan:
    info: VideoInfo
    stride: int
    splits: dict[str, Split]

    def frames_used(self, split: str) -> set[int]:
        starts = self.splits[split].starts
        return set(starts) | {t + self.stride for t in starts}

    def summary(self) -> dict:
        def describe(split: Split) -> dict:
            pairs = split.pairs(self.stride)
            return {"frames": [split.start, split.stop - 1] if split.stop > split.start else [],
                    "pairs": len(pairs), "first_pair": pairs[0] if pairs else None,
                    "last_pair": pairs[-1] if pairs else None}

        return {"video": self.info.path, "frames": self.info.frames, "fps": round(self.info.fps, 3),
                "size": [self.info.width, self.info.height],
                "splits": {name: describe(s) for name, s in self.splits.items()}}


def plan_video(info: VideoInfo, stride: int, hop: int, fractions: tuple[float, float, float]) -> VideoPlan:
    if info.frames < stride + 1:
        raise UserError(f"video {info.path} has {info.frames} frames; stride {stride} needs at least "
                        f"{stride + 1}")
    edges, total = [0], 0.0
    for fraction in fractions:
        total += fraction
        edges.append(round(info.frames * total))
    splits = {name: Split(a, b, range(a, b - stride, hop)) for name, a, b in zip(SPLITS, edges[:-1], edges[1:],
                                                                                   strict=True)}
    return VideoPlan(info, stride, splits)


def plan(config: Config) -> list[VideoPlan]:
    """Plan every video of the config; warn about thin splits, fail on ones training can't do without."""
    data = config.data
    if not data.videos:
        raise UserError("no video given; pass one or more video files")
    plans = [plan_video(probe(Path(v)), data.stride, config.hop, data.splits) for v in data.videos]
    for name in SPLITS:
        count = sum(len(p.splits[name].starts) for p in plans)
        if count == 0 and name != "test":
            frames = sum(p.splits[name].stop - p.splits[name].start for p in plans)
            raise UserError(f"the {name} split has no pairs: {frames} frames with stride {data.stride}; "
                            "lower --stride, or give more video")
        if count < FEW_PAIRS:
            warn(f"the {name} split has only {count} pairs (stride {data.stride}, hop {config.hop}); "
                 f"fewer than {FEW_PAIRS} makes its numbers noisy: lower --hop or give more video")
    return plans
