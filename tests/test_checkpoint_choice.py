"""The continuation score: a short rollout from the validation split's first frames, and what best/ keeps."""

import json

import keras
import numpy as np
import pytest
from conftest import square_frame

from infer import metrics
from infer.frames import to_unit
from trainer import validation


def frozen_model(context: int = 1) -> keras.Model:
    """A generator that repeats its newest frame: the continuation that freezes."""
    inputs = [keras.Input((64, 64, 3)) for _ in range(context)]
    return keras.Model(inputs, keras.layers.Identity()(inputs[-1]))


def test_a_frozen_continuation_of_a_moving_film_is_never_film_like_and_its_error_is_doubled():
    frames = np.stack([square_frame(i * 2) for i in range(20)])  # 19 steps of a moving square
    scored = validation.continuation(frozen_model(), frames)
    persistence = np.mean([metrics.l1(to_unit(frames[0]), to_unit(f)) for f in frames[1:1 + validation.EARLY_STEPS]])
    assert scored["rollout_steps"] == 19 and scored["film_like"] == 0.0
    assert scored["rollout_l1"] == pytest.approx(persistence, abs=1e-6)
    assert scored["continuation_score"] == pytest.approx(2 * persistence, abs=1e-6)


def test_a_frozen_continuation_of_a_still_film_is_film_like_with_no_error():
    frames = np.stack([square_frame(0)] * 12)
    scored = validation.continuation(frozen_model(), frames)
    assert scored == {"rollout_l1": 0.0, "film_like": 1.0, "continuation_score": 0.0, "rollout_steps": 11}


def test_the_continuation_starts_from_the_first_context_of_the_validation_split(barcode_video):
    from conftest import read_barcode

    from infer.config import resolve
    from trainer.plan import plan

    config = resolve("tiny", None, {"data": {"videos": (str(barcode_video),), "stride": 3},
                                    "model": {"context": 2}})
    first = plan(config)[0]
    frames = validation.continuation_frames(config, [first])
    val = first.splits["val"]
    expected = list(range(val.start, val.stop, 3))
    assert [read_barcode(f) for f in frames] == expected  # context of two, then every step the split holds


def test_every_eval_logs_the_continuation_and_best_is_the_lowest_one_step_l1_by_default(square_run):
    evals = [json.loads(line) for line in (square_run / "evals.jsonl").read_text().splitlines()]
    assert all({"rollout_l1", "film_like", "continuation_score", "rollout_steps"} <= set(e) for e in evals)
    best = json.loads((square_run / "best" / "best.json").read_text())
    assert best["step"] == min((e for e in evals if e["step"] > 0), key=lambda e: e["l1"])["step"]


def test_best_by_continuation_keeps_the_trained_eval_with_the_lowest_continuation_score(square_video, tmp_path):
    from infer.config import resolve
    from trainer.train import train

    config = resolve("tiny", None, {"data": {"videos": (str(square_video),)},
                                    "train": {"steps": 60, "eval_every": 20, "best_by": "continuation"}})
    run = train(config, tmp_path / "run")
    evals = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    best = json.loads((run / "best" / "best.json").read_text())
    assert [e["step"] for e in evals] == [0, 20, 40, 60]
    assert best["step"] == min(evals[1:], key=lambda e: e["continuation_score"])["step"]


def test_a_continuation_that_is_not_finite_is_never_the_best():
    inputs = keras.Input((64, 64, 3))
    broken = keras.Model([inputs], keras.layers.Lambda(lambda x: x * float("nan"))(inputs))
    scored = validation.continuation(broken, np.stack([square_frame(i * 2) for i in range(6)]))
    assert scored["continuation_score"] == float("inf") and scored["rollout_steps"] == 5
