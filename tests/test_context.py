"""Windows beyond the pair: context frames, training on its own outputs, conditioning noise, the residual and
mask heads and resize upsampling, through train, export, rollout and evaluation."""

import json

import numpy as np
import onnxruntime as ort
import pytest

from infer.config import resolve
from infer.contract import input_names
from infer.errors import UserError
from infer.evaluate import evaluate
from infer.roll import roll
from infer.rollout import continue_film, run_per_frame
from infer.video import read_frames, read_image

OPTIONS = {  # (context, unroll): the rest of the techniques spread over the cases
    (3, 2): {"model": {"head": "residual", "upsample": "resize"}, "train": {"noise": 0.05}},
    (2, 0): {"model": {"head": "mask"}},
    (1, 2): {"model": {"head": "mask"}, "train": {"unroll_grad": True, "gradient_weight": 10.0}},
}


def train_tiny(video, run_dir, context: int, unroll: int, steps: int = 12):
    from trainer.train import train

    extra = OPTIONS[(context, unroll)]
    config = resolve("tiny", None, {"data": {"videos": (str(video),)},
                                    "model": {"context": context, **extra.get("model", {})},
                                    "train": {"unroll": unroll, "steps": steps, "eval_every": steps,
                                              "checkpoint_every": steps, **extra.get("train", {})}})
    return train(config, run_dir)


@pytest.fixture(scope="module")
def context_model(square_video, tmp_path_factory):
    """Three context frames, unroll 2, noise, residual head, resize upsampling: every technique but the mask head
    (the other head) at once."""
    from export.onnx_export import export

    return export(train_tiny(square_video, tmp_path_factory.mktemp("runs") / "k3", 3, 2))


@pytest.mark.parametrize(("context", "unroll"), [(2, 0), (1, 2)])
def test_other_windows_train_and_export_with_parity(square_video, tmp_path, context, unroll):
    from export.onnx_export import export

    path = export(train_tiny(square_video, tmp_path / "run", context, unroll, steps=6))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == input_names(context)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["step"] == 6 and np.isfinite(metrics["val"]["l1"])
    columns = 4 if OPTIONS[(context, unroll)]["model"]["head"] == "mask" else 3  # the mask head shows its mask
    samples = read_image(tmp_path / "run" / "samples" / "step_000006.png")
    assert samples.shape[1] == columns * (64 + 4) + 4


def test_the_ring_feeds_step_k_the_outputs_of_steps_k_1_to_k_3_exactly(context_model, square_video, tmp_path):
    record = continue_film(context_model, square_video, tmp_path / "c.mp4", steps=8, frames_dir=tmp_path / "frames")
    assert record["start"]["frame"] == 159
    saved = [read_image(tmp_path / "frames" / f"step_{k:04d}.png") for k in range(1, 9)]
    start = dict(read_frames(square_video, (64, 64), wanted={155, 157, 159}))  # 3 frames, stride 2
    session = ort.InferenceSession(str(context_model), providers=["CPUExecutionProvider"])

    def step(frames):
        return session.run(None, dict(zip(input_names(3), frames, strict=True)))[0]

    context = [start[i][None].astype(np.float32) / 127.5 - 1 for i in (155, 157, 159)]
    for k, frame in enumerate(roll(step, context, 8)):
        expected = np.clip(np.rint((frame[0] + 1) * 127.5), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(saved[k], expected)


def test_evaluation_and_per_frame_mode_feed_the_context(context_model, square_video, tmp_path):
    report = evaluate(context_model, square_video, steps=4, long=12, out=tmp_path / "eval")
    assert report["steps_compared"] == 4 and report["alive"]["steps"] == 12
    record = run_per_frame(context_model, square_video, tmp_path / "p.mp4")
    assert record["frames"] == 160


def test_what_cannot_feed_a_context_model_says_so_in_one_line(context_model, square_video, tmp_path):
    image = tmp_path / "start.png"
    from infer.pictures import save_png

    save_png(image, np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(UserError, match="an image gives one: start from a video"):
        continue_film(context_model, image, tmp_path / "c.mp4", steps=2)
    with pytest.raises(UserError, match=r"the start \(frame 2\) needs 4 frames before it"):
        continue_film(context_model, square_video, tmp_path / "c.mp4", steps=2, start="2")
    with pytest.raises(UserError, match=r"the start \(frame 0\) needs 4 frames before it"):
        evaluate(context_model, square_video, start="0", steps=2, long=2, out=tmp_path / "e")


def test_the_unroll_depth_ramps_up_and_is_a_function_of_the_step(square_video, tmp_path):
    from trainer.train import Trainer

    config = resolve("tiny", None, {"data": {"videos": (str(square_video),)},
                                    "train": {"unroll": 2, "steps": 300, "unroll_ramp": 0.5}})
    trainer = Trainer(config, tmp_path, __import__("tensorflow").distribute.get_strategy(), "float32")
    depths = {step: int(trainer.unroll_depth(step)) for step in range(300)}
    assert {depths[s] for s in range(50)} == {0}  # r = 0 for the first third of the ramp (150 steps)
    assert {depths[s] for s in range(50, 100)} == {0, 1}
    assert {depths[s] for s in range(150, 300)} == {0, 1, 2}
    assert all(int(trainer.unroll_depth(s)) == depths[s] for s in (0, 77, 299))  # a resume draws the same
