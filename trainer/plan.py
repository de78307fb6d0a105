"""Which windows of frames each video gives, split in time into train, val and test.

A window is `size` frames `stride` apart: the context frames the generator sees, then the frame each
(unrolled) step should predict. Plain pix2pix is a window of 2, the pair (t, t + stride). Splits are
contiguous stretches of each video and windows never leave their stretch, so no frame is shared between
splits. A random split would put a frame's neighbours (nearly the same picture) on both sides. The
splits cover the film up to its end (`--end`, else the video's last frame); a --final model's train split is
all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from infer.config import SPLIT_NAMES as SPLITS
from infer.config import Config
from infer.context import context_indices, parse_frame, span
from infer.errors import UserError, warn
from infer.video import VideoInfo, probe

FEW_WINDOWS = 20


@dataclass(frozen=True)
class Split:
    start: int  # first frame of the stretch
    stop: int  # one past its last frame
    starts: range  # first (oldest) frame of each window

    def windows(self, stride: int, size: int) -> list[tuple[int, ...]]:
        return [tuple(context_indices(t + span(size, stride), size, stride)) for t in self.starts]


@dataclass(frozen=True)
class VideoPlan:
    info: VideoInfo
    stride: int
    size: int  # frames per window
    splits: dict[str, Split]
    end: int  # the film's last frame (`--end`, else the video's): nothing after it is read


    def frames_used(self, split: str) -> set[int]:
        return {i for window in self.splits[split].windows(self.stride, self.size) for i in window}

    def summary(self) -> dict:
        def describe(split: Split) -> dict:
            windows = split.windows(self.stride, self.size)
            return {"frames": [split.start, split.stop - 1] if split.stop > split.start else [],
                    "windows": len(windows), "first_window": windows[0] if windows else None,
                    "last_window": windows[-1] if windows else None}

        return {"video": self.info.path, "frames": self.info.frames, "end": self.end, "fps": round(self.info.fps, 3),
                "size": [self.info.width, self.info.height],
                "splits": {name: describe(s) for name, s in self.splits.items()}}


def plan_video(info: VideoInfo, config: Config) -> VideoPlan:
    """The video's windows up to the film's end, split in time by the config's fractions."""
    size, stride, end = config.window, config.data.stride, film_end(info, config)
    reach = span(size, stride)  # source frames from a window's first frame to its last
    if end < reach:
        cut = f" up to --end {config.data.end} (frame {end})" if config.data.end else ""
        raise UserError(f"video {info.path} has {end + 1} frames{cut}; windows of {size} frames {stride} apart "
                        f"need at least {reach + 1}")
    edges, total = [0], 0.0
    for fraction in config.data.splits:
        total += fraction
        edges.append(round((end + 1) * total))
    splits = {name: Split(a, b, range(a, b - reach, config.hop))
              for name, a, b in zip(SPLITS, edges[:-1], edges[1:], strict=True)}
    return VideoPlan(info, stride, size, splits, end)


def film_end(info: VideoInfo, config: Config) -> int:
    """The last frame of the film as the config sees it: `--end`, or the video's last frame."""
    if not config.data.end:
        return info.frames - 1
    return parse_frame(config.data.end, info.frames, info.fps, Path(info.path), option="--end")


def plan(config: Config) -> list[VideoPlan]:
    """Plan every video of the config; warn about thin splits, fail on ones training can't do without."""
    data = config.data
    if not data.videos:
        raise UserError("no video given; pass one or more video files")
    plans = [plan_video(probe(Path(v)), config) for v in data.videos]
    for name, fraction in zip(SPLITS, data.splits, strict=True):
        if fraction == 0:  # held out on purpose: nothing (--final), or no test split
            continue
        count = sum(len(p.splits[name].starts) for p in plans)
        if count == 0 and name != "test":
            frames = sum(p.splits[name].stop - p.splits[name].start for p in plans)
            raise UserError(f"the {name} split has no windows: {frames} frames with stride {data.stride} and "
                            f"{config.window} frames a window; lower --stride, --context or --unroll, or give "
                            "more video")
        if count < FEW_WINDOWS:
            warn(f"the {name} split has only {count} windows (stride {data.stride}, hop {config.hop}); "
                 f"fewer than {FEW_WINDOWS} makes its numbers noisy: lower --hop or give more video")
    return plans


def shard(plans: list[VideoPlan], split: str, index: int, count: int) -> list[VideoPlan]:
    """Input pipeline `index` of `count`'s share of a split: a contiguous block of its windows, counted video
    after video in time order. Blocks differ by one window at most and together hold every window once; being
    contiguous, each reads and converts only the frames of its own stretch of film."""
    total = sum(len(p.splits[split].starts) for p in plans)
    low, high = total * index // count, total * (index + 1) // count
    mine, before = [], 0
    for p in plans:
        starts = p.splits[split].starts
        block = starts[max(0, low - before):max(0, high - before)]
        before += len(starts)
        if block:
            stretch = Split(block[0], block[-1] + span(p.size, p.stride) + 1, block)
            mine.append(replace(p, splits={**p.splits, split: stretch}))
    return mine
