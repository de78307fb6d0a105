"""Video in and out with PyAV, shared by the trainer and the runner.

Frames are numbered by their position in decoding order, counted by decoding: container frame counts
lie (the bundled WebM says 0 frames and has 720).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections import deque
from collections.abc import Container, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation

from infer.errors import UserError, atomic_path, warn

DEFAULT_FPS = 24  # a video that says no frame rate is taken as film


@dataclass(frozen=True)
class VideoInfo:
    path: str
    frames: int  # counted by decoding
    fps: float
    width: int  # as displayed, after rotation metadata
    height: int


def open_video(path: Path) -> av.container.InputContainer:
    """Open a video for reading, or say in one line why it can't be."""
    if not path.exists():
        raise UserError(f"video {path} does not exist")
    if path.is_dir():
        raise UserError(f"video {path} is a directory; give a video file")
    if path.stat().st_size == 0:
        raise UserError(f"video {path} is an empty file")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as error:
        raise UserError(f"video {path} can't be read as a video ({error.__class__.__name__}); "
                        "is it really a video file?") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"video {path} has no video stream (audio or data only)")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container


def _decode(path: Path, container: av.container.InputContainer) -> Iterator[av.VideoFrame]:
    """Frames in presentation order; a broken file yields what decodes and warns where it broke."""
    index = 0
    try:
        for frame in container.decode(video=0):
            yield frame
            index += 1
    except av.FFmpegError as error:
        warn(f"video {path}: decoding stopped at frame {index} ({error.__class__.__name__}); "
             f"using the {index} frames before it")


def probe(path: Path) -> VideoInfo:
    """Count frames by decoding (no pixel conversion) and read rate and displayed size."""
    return _scan(path)[0]


def last_frame(path: Path, size: tuple[int, int], fit: str = "squash") -> tuple[VideoInfo, np.ndarray]:
    """The video's info and its true last decoded frame, resized: one decoding pass."""
    return _scan(path, size, fit)


def _scan(path: Path, size: tuple[int, int] | None = None, fit: str = "squash") -> tuple[VideoInfo, np.ndarray | None]:
    """Decode every frame without converting any; with `size`, convert the last one."""
    with open_video(path) as container:
        stream = container.streams.video[0]
        count, first, last = 0, None, None
        for frame in _decode(path, container):
            first, last = first or frame, frame
            count += 1
        if first is None:
            raise UserError(f"video {path} has a video stream but no frame could be decoded")
        width, height = first.width, first.height
        if _quarter_turns(first) % 2:
            width, height = height, width
        info = VideoInfo(str(path), count, _frame_rate(path, stream), width, height)
        return info, (to_rgb(last, size, fit) if size is not None else None)


def _frame_rate(path: Path, stream: av.video.stream.VideoStream) -> float:
    """The stream's average rate, else FFmpeg's guess unless that is only the container's clock (1000 for MKV,
    90000 for MPEG-TS: what it guesses when it knows nothing); else DEFAULT_FPS, said, since seconds (--start
    12.5s) and the per-frame video's rate are counted with it."""
    rate = stream.average_rate
    if not rate and stream.guessed_rate and stream.time_base and stream.guessed_rate != 1 / stream.time_base:
        rate = stream.guessed_rate
    if not rate:
        warn(f"video {path} has no frame rate: taking {DEFAULT_FPS} fps; if it is another, re-encode it with its "
             f"rate (e.g. ffmpeg -i {path.name} -r 30 fixed.mp4)")
        return float(DEFAULT_FPS)
    return float(rate)


def read_frames(
    path: Path,
    size: tuple[int, int] | None = None,
    fit: str = "squash",
    wanted: Container[int] | None = None,
    stop: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """(index, RGB uint8 HxWx3) for the frames in `wanted` (all if None) before `stop`.

    Only wanted frames are converted; `size` (height, width) resizes with an anti-aliasing filter. Conversion (the
    resize most of all) costs more than decoding: it runs on a few threads (FFmpeg's scaler releases the GIL) while
    the next frames decode, and frames come out in order.
    """
    threads = min(4, os.cpu_count() or 1)
    with open_video(path) as container, ThreadPoolExecutor(threads) as pool:
        converting: deque[tuple[int, Future]] = deque()
        for index, frame in enumerate(_decode(path, container)):
            if stop is not None and index >= stop:
                break
            if wanted is None or index in wanted:
                converting.append((index, pool.submit(to_rgb, frame, size, fit)))
            if len(converting) > 2 * threads:
                done, rgb = converting.popleft()
                yield done, rgb.result()
        for done, rgb in converting:
            yield done, rgb.result()


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns the display matrix asks for."""
    return round((frame.rotation or 0) / 90) % 4


def to_rgb(frame: av.VideoFrame, size: tuple[int, int] | None, fit: str = "squash") -> np.ndarray:
    """An RGB uint8 array as displayed (rotation applied), resized to `size` by squashing or center-cropping."""
    turns = _quarter_turns(frame)
    if size is None:
        rgb = frame.to_ndarray(format="rgb24")
    else:
        height, width = size if turns % 2 == 0 else size[::-1]
        if fit == "crop":
            scale = max(width / frame.width, height / frame.height)
            scaled = max(width, round(frame.width * scale)), max(height, round(frame.height * scale))
        else:
            scaled = width, height
        # Scaling in YUV 4:2:0, then converting the small picture, is about 1.4x faster than scaling RGB.
        scaled_format = "yuv420p" if scaled[0] % 2 == 0 and scaled[1] % 2 == 0 else "rgb24"
        small = frame.reformat(*scaled, format=scaled_format, interpolation=_filter(frame, scaled))
        rgb = small.to_ndarray(format="rgb24")
        top, left = (rgb.shape[0] - height) // 2, (rgb.shape[1] - width) // 2
        rgb = rgb[top : top + height, left : left + width]
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _filter(frame: av.VideoFrame, size: tuple[int, int]) -> Interpolation:
    """Area averaging when shrinking (anti-aliased), Lanczos when enlarging."""
    return Interpolation.AREA if size[0] * size[1] < frame.width * frame.height else Interpolation.LANCZOS


def resize(rgb: np.ndarray, size: tuple[int, int], fit: str = "squash") -> np.ndarray:
    """Resize an RGB uint8 array to (height, width) with the same filters and fit as decoding."""
    if rgb.shape[:2] == tuple(size):
        return rgb
    return to_rgb(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24"), size, fit)


def read_image(path: Path) -> np.ndarray:
    """A still image (PNG, JPEG, ...) as RGB uint8, through the same decoder as videos."""
    frames = read_frames(path)
    return next(frames)[1]


def file_sha256(path: Path) -> str:
    """A file's sha256: runs tell when their video changed, videos' JSON names the model that made them."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def pick_codec(preferred: tuple[str, ...] = ("libx264",)) -> str:
    """The first available encoder of `preferred`, else MPEG-4 Part 2 (always in PyAV's FFmpeg)."""
    for name in preferred:
        if name in av.codecs_available:
            return name
    return "mpeg4"


class VideoWriter:
    """Writes RGB frames to a video file atomically: under a temporary name until `close()`."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, codec: str | None = None,
                 options: dict[str, str] | None = None):
        self.path, self.frames = path, 0
        self.codec = codec or pick_codec()
        self._tmp = atomic_path(path)
        muxer = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov") else {}
        self._container = av.open(str(self._tmp), "w", options=muxer)
        self._stream = self._container.add_stream(self.codec, rate=Fraction(fps).limit_denominator(1001))
        self._stream.height, self._stream.width = size
        self._stream.pix_fmt = "yuv420p"
        if self.codec == "libx264":
            # veryfast: 2.5x the speed of medium at about the same size for upscaled, smooth frames.
            self._stream.options = {"crf": "18", "preset": "veryfast", **(options or {})}
        elif options:
            self._stream.options = options

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the video."""
        return self._stream.height, self._stream.width

    def write(self, rgb: np.ndarray) -> None:
        """Encode one RGB frame, scaled to the video's size with the quality filters (GIL released)."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        size = self._stream.width, self._stream.height
        frame = frame.reformat(*size, format="yuv420p", interpolation=_filter(frame, size))
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path:
        """Flush, then move the finished file under its final name."""
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file: nothing is left under the final name."""
        with contextlib.suppress(av.FFmpegError):
            self._container.close()
        self._tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def encoding(path: Path, size: tuple[int, int], fps: float, codec: str | None = None,
             options: dict[str, str] | None = None) -> Iterator[BackgroundEncoder]:
    """A video written on a thread beside the caller's work: finalised under `path` when the block ends, dropped
    when it raises (Ctrl-C included), so nothing half-written stays and the container is closed either way. A
    command that keeps what it made on Ctrl-C catches the interrupt inside the block."""
    encoder = BackgroundEncoder(VideoWriter(path, size, fps, codec, options))
    try:
        yield encoder
    except BaseException:
        encoder.abort()
        raise
    encoder.close()


class BackgroundEncoder:
    """Scales and encodes on a thread beside inference; a bounded queue keeps memory flat.

    Each item is a model-size frame, optionally with a full-size frame to show on its left.
    """

    def __init__(self, writer: VideoWriter, depth: int = 8):
        self.writer = writer
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name="encoder", daemon=True)
        self._thread.start()

    def put(self, frame: np.ndarray, left: np.ndarray | None = None) -> None:
        if self.error is not None:
            self._fail()
        self._queue.put((frame, left))

    def _fail(self) -> None:
        """Stop, drop the partial file, and report a write failure in one line."""
        self.abort()
        if isinstance(self.error, OSError):
            raise UserError(f"can't write {self.writer.path} ({self.error}); nothing left under that name")
        raise self.error

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is not None:
                continue  # drain, so put() never blocks forever
            frame, left = item
            try:
                if left is not None:
                    frame = np.hstack([left, resize(frame, left.shape[:2])])
                self.writer.write(frame)
            except BaseException as error:  # noqa: BLE001 - re-raised in the main thread
                self.error = error

    def close(self) -> Path:
        """Wait for every queued frame, then finalize the file under its name."""
        self._queue.put(None)
        self._thread.join()
        if self.error is None:
            try:
                return self.writer.close()
            except OSError as error:
                self.error = error
        self._fail()

    def abort(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self.writer.abort()
