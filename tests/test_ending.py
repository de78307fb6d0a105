"""bench.ending's bookkeeping: the two modes' configs and the summary over seeds (no training here: the
yardstick, the runner and the training loop have their own tests)."""

from pathlib import Path

import pytest

from bench.ending import MODES, config_for, figures, parse_modes, parse_seeds, summarize, table
from infer.config import Config
from infer.errors import UserError


def test_both_modes_share_the_budget_and_alive_settings_and_differ_only_in_their_splits():
    held_out, final = (config_for(MODES[name], Path("two_shot.mp4"), 1) for name in ("held_out", "final"))
    assert held_out.data.splits == Config().data.splits and final.data.splits == (1.0, 0.0, 0.0)
    assert final.to_dict() == {**held_out.to_dict(), "data": {**held_out.to_dict()["data"], "splits": (1.0, 0.0, 0.0)}}
    assert (held_out.data.jitter, held_out.model.head, held_out.train.unroll) == (0.0, "mask", 4)
    assert held_out.train.seed == 1 and held_out.data.videos == ("two_shot.mp4",)
    assert (MODES["held_out"].checkpoint, MODES["final"].checkpoint) == ("best", "latest")


def verdict(horizon: int, reason: str | None, realism: float) -> dict:
    realism_by_step = [realism * k for k in range(1, 601)]
    return {"alive_horizon": horizon, "ends_because": reason, "ratios": {"realism": realism_by_step}}


def test_a_run_gives_its_horizon_its_reason_and_its_realism_at_four_steps():
    assert figures(verdict(600, None, 0.001)) == {"alive_horizon": 600, "ends_because": "-", "realism_1": 0.001,
                                                  "realism_32": 0.032, "realism_100": 0.1, "realism_600": 0.6}


def test_the_table_shows_the_spread_over_seeds_and_how_many_stay_in_the_last_shot():
    runs = [figures(verdict(h, r, x)) for h, r, x in ((600, None, 0.001), (120, "blurs", 0.002), (600, None, 0.003))]
    summary = summarize(runs)
    assert summary["in_world"] == 2 and summary["seeds"] == 3
    assert summary["alive_horizon"]["min"] == 120 and summary["ends_because"] == "-"
    text = table({"held_out": summary, "real future": summarize(runs[:1])}, {"held_out": "best"})
    assert "| held_out | best | 440 [120, 600] | 2 of 3 | - | 0.00 [0.00, 0.00] / 0.06 [0.03, 0.10] / " in text
    assert "| real future | - | 600 [600, 600] | 1 of 1 |" in text


def test_seeds_and_modes_are_read_or_refused_in_one_line():
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_modes("final") == [MODES["final"]]
    for bad in ("", "a,1"):
        with pytest.raises(UserError, match="--seeds"):
            parse_seeds(bad)
    with pytest.raises(UserError, match="held_out, final"):
        parse_modes("held_out,nope")
