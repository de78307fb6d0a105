"""epilogue-rollout: continue a film from its last frame, feeding every output back in.

The start frame is prepared exactly as in training, from the model's own metadata. Each step predicts
the frame `stride` source frames later; step k's input is step k-1's output (they share a device buffer).
Frames are scaled to the output size and encoded on a thread beside inference, every step is watched
for collapse, and a JSON beside the video says how it was made.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import av
import numpy as np
import typer

from infer import __version__
from infer.context import check_start, context_indices, span
from infer.errors import UserError, check_writable_dir, exit_on_user_error, write_text_atomic
from infer.frames import to_uint8
from infer.health import Monitor
from infer.pictures import save_png
from infer.progress import Steps
from infer.runner import Model, Stepper, load
from infer.video import (
    encoding,
    file_sha256,
    last_frame,
    pick_codec,
    probe,
    read_frames,
    read_image,
    resize,
)

ORIGIN_STEP_RATE = 600 / 90  # the origin story: 600 steps stretched over 90 seconds
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Start:
    """Where the continuation begins."""

    source: Path
    index: int  # frame index in the source of the newest context frame (0 for an image)
    context: list[np.ndarray]  # uint8, at model size, prepared as in training, `stride` apart, oldest first
    fps: float  # the source's rate (the model's source rate for an image)
    size: tuple[int, int]  # source width, height as displayed
    frames: int  # frames in the source


    @property
    def frame(self) -> np.ndarray:
        """The newest start frame: step 1 follows it."""
        return self.context[-1]


def find_start(model: Model, source: Path, start: str) -> Start:
    """The true last decoded frame of a video (or the one asked for) and the context frames before it, or an
    image (for a one-frame model)."""
    contract = model.contract
    k, stride = contract.context_frames, contract.stride
    if source.suffix.lower() in IMAGE_SUFFIXES:
        if k > 1:
            raise UserError(f"model sees {k} frames {stride} source frames apart; an image gives one: start from "
                            "a video (--from film.mp4)")
        if not source.is_file():
            raise UserError(f"image {source} does not exist")
        try:
            image = read_image(source)
        except (av.FFmpegError, StopIteration):
            raise UserError(f"image {source} can't be read as an image") from None
        return Start(source, 0, [resize(image, contract.frame_size, contract.fit)], contract.source_fps,
                     (image.shape[1], image.shape[0]), 1)
    if start == "last" and k == 1:  # the common case: count and take the last frame in one decoding pass
        info, frame = last_frame(source, contract.frame_size, contract.fit)
        return Start(source, info.frames - 1, [frame], info.fps, (info.width, info.height), info.frames)
    info = probe(source)
    index = _start_index(start, info.frames, info.fps, source)
    check_start(index, k, stride)
    wanted = context_indices(index, k, stride)
    frames = dict(read_frames(source, contract.frame_size, contract.fit, wanted=set(wanted), stop=index + 1))
    return Start(source, index, [frames[i] for i in wanted], info.fps, (info.width, info.height), info.frames)


def _start_index(start: str, frames: int, fps: float, source: Path) -> int:
    """last, a frame number (300), or seconds (12.5 or 12.5s)."""
    if start == "last":
        return frames - 1
    try:
        index = int(start) if start.isdigit() else round(float(start.rstrip("s")) * fps)
    except (ValueError, OverflowError):
        raise UserError(f"--start {start!r} is not last, a frame number or seconds (e.g. 12.5s)") from None
    if not 0 <= index < frames:
        raise UserError(f"--start {start} is frame {index}, but video {source} has {frames} frames (0-{frames - 1})")
    return index


def output_size(size: str, start: Start, fit: str, frame_size: tuple[int, int]) -> tuple[int, int]:
    """(height, width), even (H.264 in yuv420p needs even sides)."""
    if size == "source":
        width, height = start.size
        if fit == "crop":  # a cropped model frame keeps its own aspect, at the source's height
            width = round(height * frame_size[1] / frame_size[0])
    else:
        try:
            width, height = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise UserError(f"--size {size!r} is not 'source' or WIDTHxHEIGHT, e.g. 1920x1080") from None
    if width < 2 or height < 2:
        raise UserError(f"--size {size!r} is too small")
    return height - height % 2, width - width % 2


def step_rate(steps: int, fps: float | None, duration: float | None, default: float = ORIGIN_STEP_RATE) -> float:
    """Steps per second of output: --fps, or --duration for all steps, or the default (the origin story's 600
    steps in 90 s for a rollout, the source's rate for per-frame mode)."""
    if fps is not None and duration is not None:
        raise UserError("give --fps or --duration, not both")
    if fps is not None:
        if fps <= 0:
            raise UserError(f"--fps must be positive (got {fps})")
        return fps
    if duration is not None:
        if duration <= 0:
            raise UserError(f"--duration must be positive (got {duration})")
        return steps / duration
    return default


def blended(previous: np.ndarray, current: np.ndarray, blend: int) -> Iterator[np.ndarray]:
    """`blend` crossfaded in-between frames, then the step itself."""
    for i in range(1, blend + 1):
        weight = i / (blend + 1)
        yield np.rint(previous * (1 - weight) + current * weight).astype(np.uint8)
    yield current


def source_prefix(start: Start, seconds: float, fps: float, size: tuple[int, int], fit: str) -> Iterator[np.ndarray]:
    """The source's last `seconds` up to the start frame, resampled to the output rate, at output size."""
    count = max(1, round(seconds * fps))
    times = [start.index / start.fps - (count - 1 - j) / fps for j in range(count)]
    indices = [max(0, min(start.index, round(t * start.fps))) for t in times]
    frames = dict(read_frames(start.source, size, fit, wanted=set(indices), stop=start.index + 1))
    for index in indices:
        yield frames[index]


def real_future(start: Start, stride: int, steps: int, size: tuple[int, int], fit: str) -> Iterator[np.ndarray]:
    """For side-by-side: the real frame `k * stride` after the start for each step k, held at the film's end."""
    last = start.index + (start.frames - 1 - start.index) // stride * stride
    indices = [min(start.index + k * stride, last) for k in range(1, steps + 1)]
    frames = read_frames(start.source, size, fit, wanted=set(indices))
    index, frame = -1, None
    for wanted in indices:  # non-decreasing, as read_frames yields
        while index < wanted:
            index, frame = next(frames)
        yield frame


def rollout(model_path: Path, source: Path, out: Path, *, start: str | None = None, steps: int | None = None,
            size: str = "source", fps: float | None = None, duration: float | None = None,
            with_source: float = 0.0, side_by_side: bool = False, frames_dir: Path | None = None,
            provider: str = "auto", per_frame: bool = False, blend: int = 0,
            fail_on_collapse: bool = False) -> dict:
    """Write the continuation video and its JSON; returns the JSON's content.

    A rollout starts at the last frame (or `start`) and makes `steps` steps (600). Per-frame mode runs the
    source's frames from `start` (the first frame), `steps` of them (all), at the source's rate unless
    `fps` or `duration` say otherwise; `with_source`, `blend` and `frames_dir` shape a rollout only."""
    if (steps is not None and steps < 1) or blend < 0 or with_source < 0:
        raise UserError("--steps must be >= 1, --blend and --with-source >= 0")
    if per_frame and (with_source or blend or frames_dir is not None or fail_on_collapse):
        raise UserError("--per-frame makes one frame per source frame: --with-source, --blend, --frames-dir and "
                        "--fail-on-collapse shape a rollout only; drop them (--start, --steps, --fps, --duration and "
                        "--side-by-side work)")
    if out.suffix.lower() not in (".mp4", ".mov", ".mkv"):
        raise UserError(f"--out {out} should end in .mp4, .mov or .mkv")
    check_writable_dir(out.parent, "output directory")
    if frames_dir is not None:
        check_writable_dir(frames_dir, "frames directory")
    model = load(model_path, provider)
    contract = model.contract
    origin = find_start(model, source, "last" if per_frame else start or "last")
    height, width = output_size(size, origin, contract.fit, contract.frame_size)
    if per_frame:
        first = _start_index(start, origin.frames, origin.fps, source) if start else 0
        total = min(steps or origin.frames, origin.frames - first)
        rate = video_fps = step_rate(total, fps, duration, default=origin.fps)
    else:
        steps = steps or 600
        rate = step_rate(steps, fps, duration)
        video_fps, total = rate * (blend + 1), steps
    stepper = Stepper(model)  # device buffers first: nothing to clean up if they can't be had
    codec = pick_codec(("h264_nvenc", "libx264") if model.device == "cuda" and _nvenc_works() else ("libx264",))
    print(f"encoder: {codec}{'' if codec != 'mpeg4' else ' (libx264 missing: MPEG-4 Part 2 instead)'}, "
          f"{width * (2 if side_by_side else 1)}x{height} at {video_fps:.3f} fps", flush=True)
    monitor = Monitor()
    progress = Steps("frames" if per_frame else "rollout", total, unit="frame" if per_frame else "step")
    began, model_seconds, done, stopped_by = time.perf_counter(), 0.0, 0, None
    with encoding(out, (height, width * (2 if side_by_side else 1)), video_fps, codec) as encoder:
        writer = encoder.writer
        try:
            if with_source and not per_frame:
                left = source_prefix(origin, with_source, video_fps, (height, width), contract.fit)
                for frame in left:
                    encoder.put(frame, frame if side_by_side else None)
            if per_frame:
                frames = read_frames(source, contract.frame_size, contract.fit, stop=first + total)
                real = read_frames(source, (height, width), contract.fit, stop=first + total) if side_by_side else None
                recent: deque[np.ndarray] = deque(maxlen=span(contract.context_frames, contract.stride) + 1)
                for index, frame in frames:
                    recent.append(frame)
                    left = next(real)[1] if real else None
                    if index < first:  # still gathering the context of the first frame shown
                        continue
                    # The real frames `stride` apart before this one; the first frame stands in before the film starts.
                    context = [recent[max(0, len(recent) - 1 - j * contract.stride)]
                               for j in range(contract.context_frames - 1, -1, -1)]
                    t = time.perf_counter()
                    output = stepper.apply(context)
                    model_seconds += time.perf_counter() - t
                    encoder.put(output, left)
                    done += 1
                    progress.update(done)
            else:
                stepper.reset(origin.context)
                monitor.begin(origin.frame)
                previous = origin.frame
                if frames_dir is not None:
                    save_png(frames_dir / "step_0000.png", origin.frame)
                real = real_future(origin, contract.stride, steps, (height, width), contract.fit) if side_by_side \
                    else None
                for k in range(1, steps + 1):
                    t = time.perf_counter()
                    stepper.step()
                    output = stepper.frame()
                    model_seconds += time.perf_counter() - t
                    flagged = monitor.observe(k, output)
                    current = to_uint8(output)
                    left = next(real) if real else None
                    for frame in blended(previous, current, blend):
                        encoder.put(frame, left)
                    if frames_dir is not None:
                        save_png(frames_dir / f"step_{k:04d}.png", current)
                    previous, done = current, k
                    progress.update(k)
                    if flagged and fail_on_collapse:
                        stopped_by = flagged
                        break
        except KeyboardInterrupt:
            stopped_by = "interrupt"
        finally:
            progress.close()
    path = writer.path
    wall = time.perf_counter() - began
    begun = first if per_frame else origin.index
    record = {
        "video": str(path), "made_by": f"epilogue-rollout {__version__}", "command": sys.argv,
        "model": {"path": str(model_path), "sha256": file_sha256(model_path), "training_step": contract.training_step,
                  "config_fingerprint": contract.config_fingerprint, "stride": contract.stride,
                  "frame_size": contract.frame_size},
        "provider": model.provider, "cuda_graphs": model.graphs, "codec": codec,
        "mode": "per-frame" if per_frame else "rollout",
        "start": {"source": str(source), "frame": begun, "seconds": round(begun / origin.fps, 3)},
        "steps_requested": total, "steps": done, "frames": writer.frames, "fps": video_fps,
        "step_rate": rate, "size": list(writer.size[::-1]), "blend": blend, "with_source_s": with_source,
        "side_by_side": side_by_side, "stopped_by": stopped_by,
        "timing": {"wall_s": round(wall, 3), "model_s": round(model_seconds, 3),
                   "model_s_per_step": round(model_seconds / max(done, 1), 5)},
        "health": monitor.series(),
    }
    write_text_atomic(path.with_suffix(".json"), json.dumps(record, indent=2))
    _report(record, path, stopped_by, monitor)
    return record


def _nvenc_works() -> bool:
    """h264_nvenc is in PyAV's FFmpeg everywhere, but opens only where a GPU and driver are. The test encoder
    is closed before the real one opens (PyAV closes a codec context when it is deleted): a GPU runs only a few
    NVENC sessions at once."""
    context = None
    try:
        context = av.CodecContext.create("h264_nvenc", "w")
        context.width, context.height, context.pix_fmt = 256, 256, "yuv420p"
        context.time_base = Fraction(1, 25)
        context.open()
        return True
    except (av.FFmpegError, ValueError):
        return False
    finally:
        del context


def _report(record: dict, path: Path, stopped_by: str | None, monitor: Monitor) -> None:
    timing = record["timing"]
    unit = "source frames" if record["mode"] == "per-frame" else "steps"
    print(f"{record['steps']} {unit} in {timing['wall_s']:.1f} s (model {timing['model_s']:.1f} s), "
          f"{record['frames']} frames at {record['fps']:.3f} fps = {record['frames'] / record['fps']:.1f} s of video")
    if monitor.flags:
        print(f"health: flagged {', '.join(f'{k} from step {v}' for k, v in monitor.flags.items())} "
              f"(per-step series in {path.with_suffix('.json')})")
    if stopped_by == "interrupt":
        print(f"interrupted: {path} is a valid video holding {record['steps']} steps")
    elif stopped_by:
        print(f"stopped at step {record['steps']}: the continuation {stopped_by} (--fail-on-collapse)")
    print(f"video: {path}\nabout it: {path.with_suffix('.json')}")


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def cli(
    model: Annotated[Path, typer.Argument(help="An .onnx model made by epilogue-export.")],
    source: Annotated[Path, typer.Option("--from", help="The video (or an image) to continue.")],
    start: Annotated[str | None, typer.Option(help="last (default), a frame number (300) or seconds (12.5s); "
                                              "with --per-frame the first source frame (default 0).")] = None,
    steps: Annotated[int | None, typer.Option(help="Steps (600), each `stride` source frames; with --per-frame "
                                              "the source frames to run (all).")] = None,
    out: Annotated[Path, typer.Option(help="The video to write.")] = Path("continuation.mp4"),
    size: Annotated[str, typer.Option(help="source, or WIDTHxHEIGHT.")] = "source",
    fps: Annotated[float | None, typer.Option(help="Steps per second of video.")] = None,
    duration: Annotated[float | None, typer.Option(help="Seconds of video for all steps.")] = None,
    with_source: Annotated[float, typer.Option(help="Seconds of the real film to show first.")] = 0.0,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Real film | continuation.")] = False,
    frames_dir: Annotated[Path | None, typer.Option(help="Also save every step as PNG here.")] = None,
    provider: Annotated[str, typer.Option(help="auto | tensorrt | cuda | cpu")] = "auto",
    per_frame: Annotated[bool, typer.Option("--per-frame", help="Each source frame through the model once.")]
    = False,
    blend: Annotated[int, typer.Option(help="Crossfaded in-between frames per step.")] = 0,
    fail_on_collapse: Annotated[bool, typer.Option("--fail-on-collapse", help="Stop when the video dies.")]
    = False,
) -> None:
    """Continue a film past its last frame with an exported epilogue model."""
    record = rollout(model, source, out, start=start, steps=steps, size=size, fps=fps, duration=duration,
                     with_source=with_source, side_by_side=side_by_side, frames_dir=frames_dir,
                     provider=provider, per_frame=per_frame, blend=blend, fail_on_collapse=fail_on_collapse)
    if record["stopped_by"] == "interrupt":
        raise SystemExit(130)
    if record["stopped_by"]:
        raise SystemExit(3)


def main() -> None:
    exit_on_user_error(app)


if __name__ == "__main__":
    main()
