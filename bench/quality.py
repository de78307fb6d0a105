"""`make quality`: compare training settings on equal terms, by how long their continuations stay a film.

    python -m bench.quality [--config FILE.toml ...] [--grid train.l1_weight=10,100 ...] [--seeds 3]
                            [--videos bundled,window,street] [--checkpoint best|latest|continuation]
                            [--without-defaults] [--runs runs/quality]
                            [--out bench/quality.json]

Every config (today's defaults first, then each TOML file, then each point of the grid) is trained with the
`quality` preset's budget on each video with each seed, exported, and judged by `epilogue-eval` from the
test split: the bundled clip (its future ends with the clip), and two procedural scenes, the window scene and
the street (`bench/street.py`: a still place with people, cyclists and cars crossing it), whose long renders
give the true future for all 600 steps. Nothing is picked: every seed counts, and the table shows
the mean with the spread [min, max] over seeds. Finished runs, exports and evaluations are reused, so an
interrupted comparison picks up where it stopped. `--checkpoint latest` judges the same runs' last checkpoints
instead of their best (lowest one-step validation L1), as rows named `CONFIG@latest`; `--checkpoint
continuation` the one with the lowest continuation score (what `--best-by continuation` keeps), as rows
`CONFIG@continuation`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

import trainer.quiet  # noqa: F401  (TensorFlow's log settings, before anything imports it)
from bench import scenes
from infer.config import Config, apply, as_today, resolve
from infer.errors import UserError, exit_on_user_error, write_text_atomic
from infer.pictures import save_png

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "assets" / "big_buck_bunny_0_30.webm"
PRESET = "quality"
LONG = 600
SCENE_FRAMES, SCENE_SIZE, SCENE_FPS = 1200, (128, 128), 24.0  # each procedural scene's training video
SCENES = ("window", "street")
CHECKPOINTS = ("best", "latest", "continuation")  # which checkpoint of a run is judged


@dataclass(frozen=True)
class Setting:
    """A named set of config overrides, applied on top of the preset."""

    name: str
    overrides: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Video:
    name: str
    train: Path  # what the model learns from
    judge: Path  # what its continuation is compared with
    start: str  # epilogue-eval --start


def settings(config_files: list[Path], grid: list[str], defaults: bool = True) -> list[Setting]:
    """Today's defaults (unless told not to), each TOML file, then every combination of the grid's values."""
    found = [Setting("defaults", {})] if defaults else []
    for path in config_files:
        try:
            found.append(Setting(path.stem, tomllib.loads(path.read_text())))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise UserError(f"can't read config file {path}: {error}") from None
    axes = []
    for item in grid:
        key, _, values = item.partition("=")
        section, _, field = key.partition(".")
        if not (section and field and values):
            raise UserError(f"--grid {item!r} is not SECTION.FIELD=V1,V2 (e.g. train.l1_weight=10,100)")
        axes.append([(section, field, _value(v)) for v in values.split(",")])
    for point in itertools.product(*axes) if axes else []:
        overrides: dict[str, dict[str, Any]] = {}
        for section, field, value in point:
            overrides.setdefault(section, {})[field] = value
        found.append(Setting(" ".join(f"{f}={v}" for _, f, v in point), overrides))
    return found


def _value(text: str) -> Any:
    """A grid value as TOML would read it: 10 -> int, 0.5 -> float, true -> bool, else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def videos(names: list[str], media: Path) -> list[Video]:
    """The bundled clip, and each procedural scene rendered once: a training video, and a long render of the same
    scene that holds the true future for all LONG steps after the training video's test split."""
    found = []
    for name in names:
        if name == "bundled":
            found.append(Video("bundled", CLIP, CLIP, "test"))
        elif name in SCENES:
            stride = resolve(PRESET, None, {}).data.stride
            test_start = round(SCENE_FRAMES * 0.85)
            train = _render(media / f"{name}.mp4", SCENE_FRAMES, name)
            judge = _render(media / f"{name}_long.mp4", test_start + LONG * stride + 1, name)
            found.append(Video(name, train, judge, f"{test_start / SCENE_FPS}"))
        else:
            raise UserError(f"unknown video {name!r} for --videos; choose from bundled, {', '.join(SCENES)}")
    return found


def _render(path: Path, frames: int, scene: str) -> Path:
    if not path.exists():
        scenes.write(path, frames, SCENE_SIZE, SCENE_FPS, seed=0, scene=scene)
    return path


def config_for(setting: Setting, video: Video, seed: int) -> Config:
    """The preset with the setting's overrides, on one video with one seed; every eval's checkpoint is kept, so
    each rule (`--checkpoint`) can judge the same run."""
    values = apply(resolve(PRESET, None, {}), setting.overrides, f"setting {setting.name}")
    t = values.train
    return apply(values, {"data": {"videos": (str(video.train),)},
                          "train": {"seed": seed, "keep_checkpoints": -(-t.steps // t.checkpoint_every)}}).validate()


def lowest_continuation_step(run_dir: Path) -> str:
    """The trained eval with the lowest continuation score (what `--best-by continuation` keeps in best/), as a
    checkpoint step."""
    evals = [json.loads(line) for line in (run_dir / "evals.jsonl").read_text().splitlines()]
    return str(min((e for e in evals if e["step"] > 0), key=lambda e: e["continuation_score"])["step"])


def run_one(config: Config, video: Video, run_dir: Path, checkpoint: str = "best") -> dict:
    """Train, export and evaluate one run; each stage is skipped when its result is already there (a report made
    before the yardstick measured travel is judged again, from the stored model)."""
    import keras

    from export.onnx_export import export
    from infer.evaluate import evaluate
    from trainer.train import train

    suffix = "" if checkpoint == "best" else f"-{checkpoint}"
    model = run_dir / f"export{suffix}" / "generator.onnx"
    report = run_dir / f"eval{suffix}" / "eval.json"
    if not (run_dir / "metrics.json").exists():
        train(config, run_dir)
        keras.backend.clear_session()
    if not model.exists():
        export(run_dir, lowest_continuation_step(run_dir) if checkpoint == "continuation" else checkpoint, model)
    if not report.exists() or "travel" not in json.loads(report.read_text())["alive"]["ratios"]:
        evaluate(model, video.judge, start=video.start, long=LONG, out=report.parent)  # judged before travel: again
    return json.loads(report.read_text())


def figures(report: dict) -> dict[str, Any]:
    """What one run contributes to the table."""
    alive, short = report["alive"], report["short_horizon"]
    ratios = alive["ratios"]
    late = slice(99, LONG)  # steps 100-600
    compared = report["metrics"]
    return {
        "l1_ratio_step1": short["l1_ratio_step1"], "l1_ratio_mean_1_8": short["l1_ratio_mean"],
        "alive_horizon": alive["alive_horizon"], "ends_because": alive["ends_because"] or "-",
        "alive_fraction": alive["alive_fraction"],
        "motion_100_600": float(np.median(ratios["motion"][late])),
        "travel_100_600": float(np.median(ratios["travel"][late])),
        "sharpness_100_600": float(np.median(ratios["sharpness"][late])),
        "colour_100_600": float(np.median(ratios["colour"][late])),
        **{f"realism_{k}": ratios["realism"][k - 1] for k in (32, 100, 600)},
        "l1_last_compared": compared["model"]["l1"][-1],
        "persistence_l1_last_compared": compared["persistence"]["l1"][-1],
        "steps_compared": report["steps_compared"],
    }


def aggregate(runs: list[dict]) -> dict[str, Any]:
    """Mean, min and max over seeds of every number; the worst horizon and the most common reason."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, str):
            continue
        values = [r[key] for r in runs]
        out[key] = {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values))}
    horizons = [r["alive_horizon"] for r in runs]
    out["alive_horizon"].update(median=float(np.median(horizons)), worst=int(min(horizons)))
    out["ends_because"] = Counter(r["ends_because"] for r in runs).most_common(1)[0][0]
    return out


def spread(stat: dict[str, float], digits: int = 2) -> str:
    return f"{stat['mean']:.{digits}f} [{stat['min']:.{digits}f}, {stat['max']:.{digits}f}]"


def table(results: dict[str, dict[str, dict]], seeds: int) -> str:
    header = ("| config | video | step-1 L1 / persistence | mean 1-8 | alive horizon: median (worst) | "
              "ends because (most seeds) | alive fraction | motion 100-600 | travel 100-600 | sharpness 100-600 | "
              "colour 100-600 | realism at 32 / 100 / 600 |")
    lines = [header, "|" + " --- |" * header.count(" |")]
    for name, by_video in results.items():
        for video, agg in by_video.items():
            h = agg["alive_horizon"]
            realism = " / ".join(f"{agg[f'realism_{k}']['mean']:.1f}" for k in (32, 100, 600))
            travel = spread(agg["travel_100_600"]) if "travel_100_600" in agg else "not measured"
            lines.append(f"| {name} | {video} | {spread(agg['l1_ratio_step1'])} | {spread(agg['l1_ratio_mean_1_8'])} "
                         f"| {h['median']:.0f} ({h['worst']}) | {agg['ends_because']} | "
                         f"{spread(agg['alive_fraction'])} | {spread(agg['motion_100_600'])} | {travel} | "
                         f"{spread(agg['sharpness_100_600'])} | {spread(agg['colour_100_600'])} | {realism} |")
    return "\n".join(lines) + (
        f"\n\nMean [min, max] over {seeds} seeds; ratios are to persistence (step-1, 1-8) or to the real film "
        "(motion, travel, sharpness, colour, realism: 1 is film-like; motion and sharpness bands are [0.5, 2], "
        "travel's floor 0.5, wider where the real held-out frames go further; colour and realism end above 2; "
        "travel was added after some rows were measured: their runs are gone, so they read 'not measured').")


def montage(strips: list[tuple[str, Path]], path: Path) -> None:
    """Each run's long-rollout filmstrip (steps 1, 8, 64, 300, 600), one under another, each with its name."""
    images = [(label, np.asarray(Image.open(p).convert("RGB"))) for label, p in strips]
    width = max(image.shape[1] for _, image in images)
    rows = []
    for label, image in images:
        caption = Image.new("RGB", (width, 16), (24, 24, 24))
        ImageDraw.Draw(caption).text((4, 2), label, fill=(230, 230, 230))
        padded = np.full((image.shape[0], width, 3), 24, np.uint8)
        padded[:, :image.shape[1]] = image
        rows += [np.asarray(caption), padded]
    save_png(path, np.concatenate(rows))


def compare(config_files: list[Path], grid: list[str], seeds: int, video_names: list[str], runs: Path,
            out: Path, checkpoint: str = "best", defaults: bool = True) -> dict:
    chosen = settings(config_files, grid, defaults)
    if not chosen:
        raise UserError("nothing to compare: --without-defaults needs a --config or a --grid")
    label = {s.name: s.name if checkpoint == "best" else f"{s.name}@{checkpoint}" for s in chosen}
    films = videos(video_names, runs / "media")
    plan = [(s, v, seed) for s in chosen for v in films for seed in range(seeds)]
    print(f"quality: {len(chosen)} config(s) x {len(films)} video(s) x {seeds} seed(s) = {len(plan)} runs "
          f"with the {PRESET} preset, judged at their {checkpoint} checkpoint; runs in {runs}", flush=True)
    reports: dict[str, dict[str, list[tuple[int, dict]]]] = {}
    for number, (setting, video, seed) in enumerate(plan, start=1):
        run_dir = runs / _slug(setting.name) / video.name / f"seed-{seed}"
        print(f"\nquality: run {number}/{len(plan)}: {setting.name} on {video.name}, seed {seed} ({run_dir})",
              flush=True)
        report = run_one(config_for(setting, video, seed), video, run_dir, checkpoint)
        reports.setdefault(label[setting.name], {}).setdefault(video.name, []).append((seed, report))

    record = merged(out, {
        "settings": {label[s.name]: s.overrides for s in chosen},
        "results": {name: {video: aggregate([figures(r) for _, r in runs_]) for video, runs_ in by_video.items()}
                    for name, by_video in reports.items()},
        "runs": {name: {video: [{"seed": seed, **figures(r)} for seed, r in runs_] for video, runs_ in by_video.items()}
                 for name, by_video in reports.items()},
    }, seeds)
    evals = "eval" if checkpoint == "best" else f"eval-{checkpoint}"
    for setting in chosen:
        name = label[setting.name]
        strips = [(video, f"{name}, {video}, seed {run['seed']}",
                   runs / _slug(setting.name) / video / f"seed-{run['seed']}" / evals / "long.png")
                  for video, runs_ in record["runs"][name].items() for run in runs_]
        drawn = [(video, text, path) for video, text, path in strips if video in reports[name] or path.exists()]
        films = list(dict.fromkeys(video for video, _, _ in drawn))
        whole = films == list(record["runs"][name])  # else a picture of its own, beside the one of the films gone
        picture = out.parent / "quality" / f"{_slug(name)}{'' if whole else '-' + '-'.join(films)}.png"
        montage([(text, path) for _, text, path in drawn], picture)
        record["montages"][name] = str(picture.relative_to(ROOT) if picture.is_relative_to(ROOT) else picture)
    write_text_atomic(out, json.dumps(record, indent=2))
    print(f"\n{record['table']}\n\nnumbers: {out}\nfilmstrips: "
          f"{', '.join(record['montages'][label[s.name]] for s in chosen)}")
    return record


def merged(out: Path, new: dict[str, dict], seeds: int) -> dict:
    """This comparison's configs over those already in `out` from earlier ones with the same budget: results
    gather across sessions, and a config measured again replaces its old figures on the films it ran on (all of
    them when its overrides changed)."""
    budget = json.loads(json.dumps(resolve(PRESET, None, {}).to_dict()))
    old = json.loads(out.read_text()) if out.exists() else {}
    if "budget" not in old or _recorded(old["budget"]) != budget or old.get("seeds") != seeds:
        old = {}
    record = {"preset": PRESET, "budget": budget, "seeds": seeds, "long_steps": LONG}
    recorded = old.get("settings", {})
    same = {name for name, overrides in new.get("settings", {}).items() if recorded.get(name) == overrides}
    for key in ("settings", "results", "runs", "montages"):
        record[key] = {**old.get(key, {}), **new.get(key, {})}
    for key in ("results", "runs"):  # a film not measured again keeps its figures while the setting is unchanged
        for name in same:
            record[key][name] = {**old.get(key, {}).get(name, {}), **new.get(key, {}).get(name, {})}
    record["table"] = table(record["results"], seeds)
    return record


def _recorded(budget: dict[str, Any]) -> dict[str, Any]:
    """A recorded budget as it reads today; one naming a field that no longer exists is not today's."""
    try:
        return as_today(budget)
    except UserError:
        return {}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=@" else "_" for c in name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, action="append", default=[], help="A TOML file of overrides.")
    parser.add_argument("--grid", action="append", default=[], help="SECTION.FIELD=V1,V2 (repeatable).")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--videos", default="bundled,window,street", help="Any of bundled, window, street.")
    parser.add_argument("--checkpoint", choices=CHECKPOINTS, default="best",
                        help="Judge each run's best checkpoint (lowest one-step validation L1), its last, or the one "
                             "with the lowest continuation score.")
    parser.add_argument("--without-defaults", action="store_true",
                        help="Leave out today's defaults (their row in --out stays as it was recorded).")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "quality")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "quality.json")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        raise UserError(f"--seeds must be >= 1 (got {args.seeds})")
    compare(args.config, args.grid, args.seeds, [v for v in args.videos.split(",") if v], args.runs, args.out,
            args.checkpoint, not args.without_defaults)


if __name__ == "__main__":
    exit_on_user_error(lambda: main(sys.argv[1:]))
