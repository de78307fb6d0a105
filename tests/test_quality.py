"""make quality's bookkeeping: which configs it trains, and an honest summary over seeds (no training here:
the yardstick and the training loop have their own tests)."""

import json

import pytest

from bench.quality import aggregate, config_for, merged, settings, table, videos
from infer.errors import UserError


def test_defaults_come_first_then_files_then_every_grid_point(tmp_path):
    toml = tmp_path / "sharper.toml"
    toml.write_text("[train]\nl1_weight = 10.0\n")
    found = settings([toml], ["train.l1_weight=10,100", "model.dropout=0.0,0.5"])
    assert [s.name for s in found] == ["defaults", "sharper", "l1_weight=10 dropout=0.0", "l1_weight=10 dropout=0.5",
                                       "l1_weight=100 dropout=0.0", "l1_weight=100 dropout=0.5"]
    assert found[1].overrides == {"train": {"l1_weight": 10.0}}
    assert found[2].overrides == {"train": {"l1_weight": 10}, "model": {"dropout": 0.0}}
    with pytest.raises(UserError, match="is not SECTION.FIELD=V1,V2"):
        settings([], ["l1_weight=10"])


def test_every_run_has_the_same_budget_and_only_the_seed_and_the_setting_differ(tmp_path):
    (film,) = videos(["bundled"], tmp_path)
    base, other = (config_for(s, film, seed) for s, seed in zip(settings([], ["train.l1_weight=10"]), (0, 1),
                                                                    strict=True))
    assert base.train.steps == other.train.steps and base.frame_size == other.frame_size == (64, 64)
    assert (base.train.seed, other.train.seed) == (0, 1)
    assert (base.train.l1_weight, other.train.l1_weight) == (100.0, 10)
    with pytest.raises(UserError, match="unknown video"):
        videos(["subway"], tmp_path)


def run(horizon: int, reason: str, ratio: float) -> dict:
    return {"l1_ratio_step1": ratio, "l1_ratio_mean_1_8": ratio, "alive_horizon": horizon, "ends_because": reason,
            "alive_fraction": horizon / 600, "motion_100_600": 1.0, "sharpness_100_600": 0.5, "colour_100_600": 1.0,
            "realism_32": 1.0, "realism_100": 2.0, "realism_600": 3.0}


def test_the_summary_shows_the_spread_over_seeds_and_the_worst_horizon():
    summary = aggregate([run(10, "blurs", 2.0), run(30, "blurs", 1.0), run(600, "-", 1.5)])
    assert summary["alive_horizon"]["median"] == 30 and summary["alive_horizon"]["worst"] == 10
    assert summary["l1_ratio_step1"] == {"mean": 1.5, "min": 1.0, "max": 2.0}
    assert summary["ends_because"] == "blurs"
    row = table({"defaults": {"window": summary}}, 3).splitlines()[2]
    assert row.startswith("| defaults | window | 1.50 [1.00, 2.00] | 1.50 [1.00, 2.00] | 30 (10) | blurs |")


def test_results_gather_across_comparisons_with_the_same_budget(tmp_path):
    out = tmp_path / "quality.json"
    first = merged(out, {"results": {"defaults": {"window": aggregate([run(5, "blurs", 2.0)])}}}, 3)
    out.write_text(json.dumps(first))
    second = merged(out, {"results": {"unroll": {"window": aggregate([run(50, "freezes", 1.0)])}}}, 3)
    assert list(second["results"]) == ["defaults", "unroll"]
    assert "| unroll | window |" in second["table"] and "| defaults | window |" in second["table"]
    assert list(merged(out, {"results": {"x": {}}}, 1)["results"]) == ["x"]  # another seed count starts afresh


def test_a_setting_measured_again_on_one_film_keeps_its_other_films_unless_it_changed(tmp_path):
    out = tmp_path / "quality.json"
    mask = {"model": {"head": "mask"}}
    both = {"window": aggregate([run(600, "-", 0.5)]), "street": aggregate([run(0, "freezes", 1.5)])}
    out.write_text(json.dumps(merged(out, {"settings": {"m": mask}, "results": {"m": both}}, 3)))
    again = merged(out, {"settings": {"m": mask}, "results": {"m": {"street": aggregate([run(26, "blurs", 1.2)])}}}, 3)
    assert list(again["results"]["m"]) == ["window", "street"]
    assert again["results"]["m"]["street"]["alive_horizon"]["median"] == 26  # the new figures replace the old
    warp = {"settings": {"m": {"model": {"head": "warp"}}}, "results": {"m": {"street": both["street"]}}}
    assert list(merged(out, warp, 3)["results"]["m"]) == ["street"]  # another model: its old films are gone


def test_an_option_added_since_keeps_the_results_and_a_changed_budget_drops_them(tmp_path):
    out = tmp_path / "quality.json"
    first = merged(out, {"results": {"defaults": {"window": aggregate([run(5, "blurs", 2.0)])}}}, 3)
    del first["budget"]["model"]["upsample"]  # recorded before upsampling had a choice: trained without it
    out.write_text(json.dumps(first))
    assert list(merged(out, {"results": {"mask": {}}}, 3)["results"]) == ["defaults", "mask"]
    del first["budget"]["model"]["head"]
    first["budget"]["model"] |= {"residual": False, "mask": False}  # the head when it was two switches
    out.write_text(json.dumps(first))
    assert list(merged(out, {"results": {"mask": {}}}, 3)["results"]) == ["defaults", "mask"]
    first["budget"]["model"]["heads"] = 2  # a field that no longer exists: not today's budget
    out.write_text(json.dumps(first))
    assert list(merged(out, {"results": {"mask": {}}}, 3)["results"]) == ["mask"]
    del first["budget"]["model"]["heads"]
    first["budget"]["train"]["steps"] = 1000  # another budget: not comparable
    out.write_text(json.dumps(first))
    assert list(merged(out, {"results": {"mask": {}}}, 3)["results"]) == ["mask"]


def test_the_last_checkpoint_is_judged_from_the_same_runs_in_rows_of_its_own(tmp_path, monkeypatch):
    import bench.quality as quality

    judged, strips = [], []
    monkeypatch.setattr(quality, "run_one", lambda config, video, run_dir, checkpoint: judged.append(
        (run_dir, checkpoint)) or {})
    monkeypatch.setattr(quality, "figures", lambda report: run(40, "freezes", 1.5))
    monkeypatch.setattr(quality, "montage", lambda rows, path: strips.append((rows, path)))
    record = quality.compare([], [], 1, ["bundled"], tmp_path / "runs", tmp_path / "quality.json", "latest")
    assert judged == [(tmp_path / "runs" / "defaults" / "bundled" / "seed-0", "latest")]
    assert list(record["results"]) == ["defaults@latest"] and "| defaults@latest | bundled |" in record["table"]
    [(rows, picture)] = strips
    assert rows == [("defaults@latest, bundled, seed 0", tmp_path / "runs" / "defaults" / "bundled" / "seed-0" /
                     "eval-latest" / "long.png")]
    assert picture == tmp_path / "quality" / "defaults@latest.png"


def test_a_film_kept_from_an_earlier_comparison_whose_runs_are_gone_gets_a_picture_of_the_new_films(tmp_path,
                                                                                                   monkeypatch):
    import bench.quality as quality

    out, strips = tmp_path / "quality.json", []
    window = {"settings": {"defaults": {}}, "results": {"defaults": {"window": aggregate([run(600, "-", 0.5)])}},
              "runs": {"defaults": {"window": [{"seed": 0, **run(600, "-", 0.5)}]}}}
    out.write_text(json.dumps(merged(out, window, 1)))
    monkeypatch.setattr(quality, "run_one", lambda config, video, run_dir, checkpoint: {})
    monkeypatch.setattr(quality, "figures", lambda report: run(40, "freezes", 1.5))
    monkeypatch.setattr(quality, "montage", lambda rows, path: strips.append((rows, path)))
    record = quality.compare([], [], 1, ["bundled"], tmp_path / "runs", out)
    assert list(record["results"]["defaults"]) == ["window", "bundled"]
    [(rows, picture)] = strips
    assert [text for text, _ in rows] == ["defaults, bundled, seed 0"]  # the window's runs are gone: not drawn
    assert picture == tmp_path / "quality" / "defaults-bundled.png" and record["montages"]["defaults"] == str(picture)
