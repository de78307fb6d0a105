"""epilogue-rollout: continue a film from its last frame, feeding every output back in.

The start frame is prepared exactly as in training, from the model's own metadata. Each step predicts
the frame `stride` source frames later; step k's input is step k-1's output (they share a device buffer).
Frames are scaled to the output size and encoded on a thread beside inference, every step is watched
for collapse, and a JSON beside the video says how it was made. `continue_film` is the continuation;
`run_per_frame` (--per-frame) runs each real frame through the model once instead. Both write through `Run`.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from fractions import Fraction
from itertools import chain, repeat
from pathlib import Path
from typing import Annotated

import av
import numpy as np
import typer

from infer import __version__
from infer.context import check_start, context_indices, future_indices, parse_frame, span
from infer.contract import Contract
from infer.errors import UserError, check_writable_dir, exit_on_user_error, write_text_atomic
from infer.frames import to_uint8
from infer.health import Monitor
from infer.pictures import save_png
from infer.progress import Steps
from infer.runner import Model, Stepper, load
from infer.video import (
    VideoInfo,
    VideoWriter,
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
    why: str  # how the start was chosen, in words

    @property
    def frame(self) -> np.ndarray:
        """The newest start frame: step 1 follows it."""
        return self.context[-1]


def find_start(model: Model, source: Path, start: str | None, end: str | None = None) -> Start:
    """The frame `start` asks for, or else the film's end: `end`; for the training film, the end it was trained
    to; else the true last decoded frame. With the context frames before it; or an image (a one-frame model)."""
    contract = model.contract
    if start is not None and end is not None:
        raise UserError("--start picks a frame to continue from, --end says where the film ends (and starts the "
                        "continuation there): give one of them")
    if source.suffix.lower() in IMAGE_SUFFIXES:
        return _image_start(model, source)
    if start not in (None, "last"):
        info = probe(source)
        return _video_start(model, info, parse_frame(start, info.frames, info.fps, source), f"--start {start}")
    if end is not None:
        info = probe(source)
        index = parse_frame(end, info.frames, info.fps, source, option="--end")
        return _video_start(model, info, index, f"the film's end (--end {end})")
    if _trained_end(contract, source):
        return _video_start(model, probe(source), contract.film_end,
                            f"the film's end as the model was trained (--end {contract.config.data.end})")
    if contract.context_frames == 1:  # the common case: count and take the last frame in one decoding pass
        info, frame = last_frame(source, contract.frame_size, contract.fit)
        return Start(source, info.frames - 1, [frame], info.fps, (info.width, info.height), info.frames,
                     "the video's last frame")
    info = probe(source)
    return _video_start(model, info, info.frames - 1, "the video's last frame")


def _video_start(model: Model, info: VideoInfo, index: int, why: str) -> Start:
    """Frame `index` of the video and the context frames before it, at model size."""
    contract, source = model.contract, Path(info.path)
    check_start(index, contract.context_frames, contract.stride)
    wanted = context_indices(index, contract.context_frames, contract.stride)
    frames = dict(read_frames(source, contract.frame_size, contract.fit, wanted=set(wanted), stop=index + 1))
    return Start(source, index, [frames[i] for i in wanted], info.fps, (info.width, info.height), info.frames, why)


def _trained_end(contract: Contract, source: Path) -> bool:
    """Whether the model was trained to an end before its film's last frame (`--end`) and `source` is that film:
    then the continuation starts there, not after the credits it was told to leave out."""
    return contract.film_end < contract.source_frames - 1 and file_sha256(source) == contract.source_sha256


def _image_start(model: Model, source: Path) -> Start:
    contract = model.contract
    if contract.context_frames > 1:
        raise UserError(f"model sees {contract.context_frames} frames {contract.stride} source frames apart; an "
                        "image gives one: start from a video (--from film.mp4)")
    if not source.is_file():
        raise UserError(f"image {source} does not exist")
    try:
        image = read_image(source)
    except (av.FFmpegError, StopIteration):
        raise UserError(f"image {source} can't be read as an image") from None
    return Start(source, 0, [resize(image, contract.frame_size, contract.fit)], contract.source_fps,
                 (image.shape[1], image.shape[0]), 1, "an image")


def start_index(start: str, frames: int, fps: float, source: Path) -> int:
    """epilogue-rollout's --start for --per-frame: a frame number or seconds (`infer.context.parse_frame`)."""
    index = parse_frame(start, frames, fps, source, word="last")
    return frames - 1 if index is None else index


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
    indices = [min(index, last) for index in future_indices(start.index, steps, stride)]
    frames = read_frames(start.source, size, fit, wanted=set(indices))
    index, frame = -1, None
    for wanted in indices:  # non-decreasing, as read_frames yields
        while index < wanted:
            index, frame = next(frames)
        yield frame


Item = tuple[np.ndarray, np.ndarray | None]  # a frame to encode, and the real frame to show on its left


@dataclass
class Run:
    """What both modes share: the model, how far a run got, and the one writer and finaliser of its video."""

    model_path: Path
    model: Model
    source: Path
    progress: Steps
    done: int = 0  # steps (or source frames) whose frames are all in the video
    model_seconds: float = 0.0
    stopped_by: str | None = None  # interrupt, a health flag, or None when it ran to the end
    began: float = 0.0  # when encoding began: the wall time counts from there

    @contextmanager
    def timing(self) -> Iterator[None]:
        """Count the seconds spent in the model apart from decoding and encoding."""
        began = time.perf_counter()
        yield
        self.model_seconds += time.perf_counter() - began

    def finished(self, count: int) -> None:
        self.done = count
        self.progress.update(count)

    def encode(self, items: Iterable[Item], out: Path, size: tuple[int, int], fps: float) -> VideoWriter:
        """Encode what the run yields beside inference. Ctrl-C ends the run and keeps a valid, shorter video under
        its name; an error drops it (`infer.video.encoding`)."""
        codec = pick_codec(("h264_nvenc", "libx264") if self.model.device == "cuda" and _nvenc_works()
                           else ("libx264",))
        print(f"encoder: {codec}{'' if codec != 'mpeg4' else ' (libx264 missing: MPEG-4 Part 2 instead)'}, "
              f"{size[1]}x{size[0]} at {fps:.3f} fps", flush=True)
        self.began = time.perf_counter()
        with encoding(out, size, fps, codec) as encoder, closing(self.progress):
            try:
                for frame, left in items:
                    encoder.put(frame, left)
            except KeyboardInterrupt:
                self.stopped_by = "interrupt"
        return encoder.writer

    def record(self, writer: VideoWriter, monitor: Monitor, *, mode: str, begun: int, chosen: str, source_fps: float,
               requested: int, rate: float, side_by_side: bool, blend: int = 0, with_source: float = 0.0) -> dict:
        """The JSON beside the video: how it was made."""
        contract, wall = self.model.contract, time.perf_counter() - self.began
        return {
            "video": str(writer.path), "made_by": f"epilogue-rollout {__version__}", "command": sys.argv,
            "model": {"path": str(self.model_path), "sha256": file_sha256(self.model_path),
                      "training_step": contract.training_step, "config_fingerprint": contract.config_fingerprint,
                      "stride": contract.stride, "frame_size": contract.frame_size},
            "provider": self.model.provider, "cuda_graphs": self.model.graphs, "codec": writer.codec, "mode": mode,
            "start": {"source": str(self.source), "frame": begun, "seconds": round(begun / source_fps, 3),
                      "chosen": chosen},
            "steps_requested": requested, "steps": self.done, "frames": writer.frames, "fps": writer_fps(rate, blend),
            "step_rate": rate, "size": list(writer.size[::-1]), "blend": blend, "with_source_s": with_source,
            "side_by_side": side_by_side, "stopped_by": self.stopped_by,
            "timing": {"wall_s": round(wall, 3), "model_s": round(self.model_seconds, 3),
                       "model_s_per_step": round(self.model_seconds / max(self.done, 1), 5)},
            "health": monitor.series(),
        }


def writer_fps(rate: float, blend: int) -> float:
    """Frames per second of video: each step shows `blend` in-between frames, then itself."""
    return rate * (blend + 1)


def continue_film(model_path: Path, source: Path, out: Path, *, start: str | None = None, end: str | None = None,
                  steps: int = 600,
                  size: str = "source", fps: float | None = None, duration: float | None = None,
                  with_source: float = 0.0, side_by_side: bool = False, frames_dir: Path | None = None,
                  provider: str = "auto", blend: int = 0, fail_on_collapse: bool = False) -> dict:
    """Continue the film `steps` steps past its end (or from `start`), each output fed back in; write the video
    and the JSON beside it, and return the JSON's content."""
    if steps < 1 or blend < 0 or with_source < 0:
        raise UserError("--steps must be >= 1, --blend and --with-source >= 0")
    check_output(out, frames_dir)
    model = load(model_path, provider)
    contract = model.contract
    origin = find_start(model, source, start, end)
    print(f"start: frame {origin.index} ({origin.index / origin.fps:.2f} s) of {source}, {origin.why}", flush=True)
    panel = output_size(size, origin, contract.fit, contract.frame_size)
    rate = step_rate(steps, fps, duration)
    run, monitor = Run(model_path, model, source, Steps("rollout", steps)), Monitor()
    stepper = Stepper(model)  # device buffers first: nothing to clean up if they can't be had
    real = real_future(origin, contract.stride, steps, panel, contract.fit) if side_by_side else repeat(None)
    prefix = source_prefix(origin, with_source, writer_fps(rate, blend), panel, contract.fit) if with_source else ()
    outputs = stepped(stepper, origin, steps, monitor, run, fail_on_collapse)
    items = chain(((frame, frame if side_by_side else None) for frame in prefix),
                  shown(outputs, origin.frame, real, blend, frames_dir))
    writer = run.encode(items, out, beside(panel, side_by_side), writer_fps(rate, blend))
    record = run.record(writer, monitor, mode="rollout", begun=origin.index, chosen=origin.why, source_fps=origin.fps,
                        requested=steps, rate=rate, side_by_side=side_by_side, blend=blend, with_source=with_source)
    return finish(record, monitor)


def run_per_frame(model_path: Path, source: Path, out: Path, *, start: str | None = None, steps: int | None = None,
                  size: str = "source", fps: float | None = None, duration: float | None = None,
                  side_by_side: bool = False, provider: str = "auto") -> dict:
    """Run each source frame from `start` (the first) through the model once, `steps` of them (all), with its
    real context: a video of one-step predictions at the source's rate (or `fps`/`duration`); its JSON too."""
    if steps is not None and steps < 1:
        raise UserError("--steps must be >= 1")
    check_output(out, None)
    model = load(model_path, provider)
    contract = model.contract
    origin = find_start(model, source, "last")
    first = start_index(start, origin.frames, origin.fps, source) if start else 0
    total = min(steps or origin.frames, origin.frames - first)
    panel = output_size(size, origin, contract.fit, contract.frame_size)
    rate = step_rate(total, fps, duration, default=origin.fps)
    run, monitor = Run(model_path, model, source, Steps("frames", total, unit="frame")), Monitor()
    stepper = Stepper(model)  # device buffers first: nothing to clean up if they can't be had
    real = (frame for _, frame in read_frames(source, panel, contract.fit, stop=first + total)) if side_by_side \
        else repeat(None)
    items = predicted(stepper, source, first, total, real, run)
    writer = run.encode(items, out, beside(panel, side_by_side), rate)
    chosen = f"--start {start}" if start else "the video's first frame"
    record = run.record(writer, monitor, mode="per-frame", begun=first, chosen=chosen, source_fps=origin.fps,
                        requested=total, rate=rate, side_by_side=side_by_side)
    return finish(record, monitor)


def check_output(out: Path, frames_dir: Path | None) -> None:
    """Before any long work: the video's format, and folders that can hold what is written."""
    if out.suffix.lower() not in (".mp4", ".mov", ".mkv"):
        raise UserError(f"--out {out} should end in .mp4, .mov or .mkv")
    check_writable_dir(out.parent, "output directory")
    if frames_dir is not None:
        check_writable_dir(frames_dir, "frames directory")


def beside(panel: tuple[int, int], side_by_side: bool) -> tuple[int, int]:
    """The video's (height, width): one panel, or the real film and the model's side by side."""
    return panel[0], panel[1] * (2 if side_by_side else 1)


def stepped(stepper: Stepper, origin: Start, steps: int, monitor: Monitor, run: Run, fail_on_collapse: bool
            ) -> Iterator[np.ndarray]:
    """Each step's output as uint8, fed back in as the next step's newest frame, watched for collapse. A step
    counts as done once its frames are written (when asked for the next)."""
    stepper.reset(origin.context)
    monitor.begin(origin.frame)
    for k in range(1, steps + 1):
        with run.timing():
            stepper.step()
            output = stepper.frame()
        flagged = monitor.observe(k, output)
        yield to_uint8(output)
        run.finished(k)
        if flagged and fail_on_collapse:
            run.stopped_by = flagged
            return


def shown(outputs: Iterator[np.ndarray], start: np.ndarray, real: Iterator[np.ndarray | None], blend: int,
          frames_dir: Path | None) -> Iterator[Item]:
    """What the video shows of each step: crossfaded in from the step before, beside its real frame; each step
    also saved as a PNG in `frames_dir` (the start as step 0)."""
    if frames_dir is not None:
        save_png(frames_dir / "step_0000.png", start)
    previous = start
    for k, current in enumerate(outputs, start=1):
        left = next(real)
        for frame in blended(previous, current, blend):
            yield frame, left
        if frames_dir is not None:
            save_png(frames_dir / f"step_{k:04d}.png", current)
        previous = current


def predicted(stepper: Stepper, source: Path, first: int, total: int, real: Iterator[np.ndarray | None], run: Run
              ) -> Iterator[Item]:
    """Per-frame mode: each source frame from `first` on, `total` of them, predicted from the real frames
    `stride` apart before it (the film's first frame stands in before the film starts)."""
    contract = stepper.contract
    recent: deque[np.ndarray] = deque(maxlen=span(contract.context_frames, contract.stride) + 1)
    for index, frame in read_frames(source, contract.frame_size, contract.fit, stop=first + total):
        recent.append(frame)
        left = next(real)
        if index < first:  # still gathering the context of the first frame shown
            continue
        context = [recent[max(0, len(recent) - 1 - j * contract.stride)]
                   for j in range(contract.context_frames - 1, -1, -1)]
        with run.timing():
            output = stepper.apply(context)
        yield output, left
        run.finished(index - first + 1)


def finish(record: dict, monitor: Monitor) -> dict:
    """Write the JSON beside the video and say what was made and what to do next."""
    path = Path(record["video"])
    write_text_atomic(path.with_suffix(".json"), json.dumps(record, indent=2))
    _report(record, monitor)
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


def _report(record: dict, monitor: Monitor) -> None:
    timing, path = record["timing"], Path(record["video"])
    unit = "source frames" if record["mode"] == "per-frame" else "steps"
    print(f"{record['steps']} {unit} in {timing['wall_s']:.1f} s (model {timing['model_s']:.1f} s), "
          f"{record['frames']} frames at {record['fps']:.3f} fps = {record['frames'] / record['fps']:.1f} s of video")
    if monitor.flags:
        print(f"health: flagged {', '.join(f'{k} from step {v}' for k, v in monitor.flags.items())} "
              f"(per-step series in {path.with_suffix('.json')})")
    if record["stopped_by"] == "interrupt":
        print(f"interrupted: {path} is a valid video holding {record['steps']} {unit}")
    elif record["stopped_by"]:
        print(f"stopped at step {record['steps']}: the continuation {record['stopped_by']} (--fail-on-collapse)")
    print(f"video: {path}\nabout it: {path.with_suffix('.json')}\nnext: {next_command(record)}")


def next_command(record: dict) -> str:
    """Score the model against the film it continued (linking a continuation from the report); an image has no
    real future to score against: watch the video."""
    model, source = record["model"]["path"], record["start"]["source"]
    if Path(source).suffix.lower() in IMAGE_SUFFIXES:
        return f"watch {record['video']}"
    linked = f" --video {record['video']}" if record["mode"] == "rollout" else ""
    return f"epilogue-eval {model} {source}{linked}"


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def cli(
    model: Annotated[Path, typer.Argument(help="An .onnx model made by epilogue-export.")],
    source: Annotated[Path, typer.Option("--from", help="The video (or an image) to continue.")],
    start: Annotated[str | None, typer.Option(help="last (default: the film's end), a frame number (300) or seconds "
                                              "(12.5s); with --per-frame the first source frame (default 0).")]
    = None,
    end: Annotated[str | None, typer.Option(help="The film's end, a frame number or seconds, where the "
                                            "continuation starts (default: for the training film, the end the "
                                            "model was trained to; else the last frame).")] = None,
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
    if per_frame:
        refuse_rollout_options(with_source, blend, frames_dir, fail_on_collapse, end)
        record = run_per_frame(model, source, out, start=start, steps=steps, size=size, fps=fps, duration=duration,
                               side_by_side=side_by_side, provider=provider)
    else:
        record = continue_film(model, source, out, start=start, end=end, steps=600 if steps is None else steps,
                               size=size, fps=fps, duration=duration, with_source=with_source,
                               side_by_side=side_by_side, frames_dir=frames_dir, provider=provider, blend=blend,
                               fail_on_collapse=fail_on_collapse)
    if record["stopped_by"] == "interrupt":
        raise SystemExit(130)
    if record["stopped_by"]:
        raise SystemExit(3)


def refuse_rollout_options(with_source: float, blend: int, frames_dir: Path | None, fail_on_collapse: bool,
                           end: str | None) -> None:
    """--per-frame runs no continuation: the options that shape one would be silently ignored."""
    if with_source or blend or frames_dir is not None or fail_on_collapse or end is not None:
        raise UserError("--per-frame makes one frame per source frame: --with-source, --blend, --frames-dir, "
                        "--fail-on-collapse and --end shape a rollout only; drop them (--start, --steps, --fps, "
                        "--duration and --side-by-side work)")


def main() -> None:
    exit_on_user_error(app)


if __name__ == "__main__":
    main()
