"""Reading video: exact frame counts, true last frame, any pixel format, rotation, resizing."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import barcode_frame, read_barcode, write_video

from infer.errors import UserError
from infer.video import probe, read_frames


def test_bundled_clip_has_720_frames_though_its_container_says_0(bundled):
    with av.open(str(bundled)) as container:
        assert container.streams.video[0].frames == 0
    info = probe(bundled)
    assert (info.frames, info.fps, info.width, info.height) == (720, 24.0, 1280, 720)


def test_frames_carry_their_index_and_the_last_one_is_the_true_last(barcode_video):
    indices = [(i, read_barcode(f)) for i, f in read_frames(barcode_video, (64, 64))]
    assert [i for i, _ in indices] == list(range(120))
    assert all(i == code for i, code in indices)


def test_only_wanted_frames_before_stop_are_returned(barcode_video):
    got = [(i, read_barcode(f)) for i, f in read_frames(barcode_video, (64, 64), wanted={3, 50, 119}, stop=100)]
    assert got == [(3, 3), (50, 50)]


@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "gray", "yuv444p"])
def test_any_pixel_format_becomes_rgb(tmp_path, pix_fmt):
    path = tmp_path / "odd.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = 67, 45, pix_fmt  # odd size too
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(barcode_frame(i, 45, 67), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    frames = list(read_frames(path, (32, 32)))
    assert [read_barcode(f) for _, f in frames] == list(range(5))
    assert all(f.shape == (32, 32, 3) and f.dtype == np.uint8 for _, f in frames)


def test_rotation_metadata_is_honoured(tmp_path):
    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)  # counter-clockwise
        frame = np.zeros((32, 64, 3), np.uint8)
        frame[:, :16] = 255  # white on the left
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = probe(path)
    assert (info.width, info.height) == (32, 64)
    (_, shown), = read_frames(path)
    assert shown.shape == (64, 32, 3)
    assert shown[-8:].mean() > 200 and shown[:32].mean() < 50  # the left edge turned to the bottom


def test_crop_keeps_the_centre_and_squash_keeps_everything(tmp_path):
    wide = np.zeros((32, 96, 3), np.uint8)
    wide[:, :32] = 255  # the left third is white
    path = write_video(tmp_path / "wide.mp4", [wide] * 2)
    (_, squashed), _ = read_frames(path, (32, 32), "squash")
    (_, cropped), _ = read_frames(path, (32, 32), "crop")
    assert squashed[:, :8].mean() > 200  # the white third is still there, squeezed
    assert cropped.mean() < 30  # the centre square is all black


def test_a_truncated_mp4_gives_the_frames_before_the_cut_in_order(tmp_path, barcode_video):
    """Our MP4s keep their index in front (+faststart): cut in half, the file still opens."""
    data = barcode_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    info = probe(cut)
    assert 0 < info.frames < 120
    assert [read_barcode(f) for _, f in read_frames(cut, (64, 64))] == list(range(info.frames))


def test_truncated_mkv_gives_every_frame_before_the_break(tmp_path):
    frames = [barcode_frame(i) for i in range(60)]
    path = write_video(tmp_path / "full.mkv", frames, codec="ffv1")  # intra-only: a clean break
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    info = probe(cut)
    assert 10 < info.frames < 60
    got = [read_barcode(f) for _, f in read_frames(cut, (64, 64))]
    assert got == list(range(info.frames))


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p, "does not exist"),
    (lambda p: (p.mkdir(), p)[1], "is a directory"),
    (lambda p: (p.write_bytes(b""), p)[1], "is an empty file"),
    (lambda p: (p.write_text("not a video at all\n" * 50), p)[1], "can't be read as a video"),
])
def test_bad_files_are_one_clear_error(tmp_path, make, message):
    path = make(tmp_path / "clip.mp4")
    with pytest.raises(UserError, match=message):
        probe(Path(path))


def test_audio_only_file_is_a_clear_error(tmp_path):
    path = tmp_path / "sound.mka"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(UserError, match="has no video stream"):
        probe(path)


def test_a_video_without_a_frame_rate_is_taken_as_24_fps_and_says_so(tmp_path, capsys):
    path = tmp_path / "still.mkv"
    with av.open(str(path), "w") as container:  # one frame, no rate: FFmpeg guesses only the container's clock
        stream = container.add_stream("ffv1")
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.codec_context.framerate = Fraction(0, 1)
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        frame = av.VideoFrame.from_ndarray(barcode_frame(7), format="rgb24")
        frame.pts, frame.time_base = 0, Fraction(1, 1000)
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    assert probe(path).fps == 24.0
    assert capsys.readouterr().err == (f"warning: video {path} has no frame rate: taking 24 fps; if it is another, "
                                       "re-encode it with its rate (e.g. ffmpeg -i still.mkv -r 30 fixed.mp4)\n")


def test_a_video_with_a_frame_rate_says_nothing(tmp_path, capsys):
    path = write_video(tmp_path / "one.mkv", [barcode_frame(0)], fps=30, codec="ffv1")
    assert probe(path).fps == 30.0 and capsys.readouterr().err == ""
