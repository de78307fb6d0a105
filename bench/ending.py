"""Past the end of a film: does a model trained on every frame continue it better than one that held the end out?

    python -m bench.ending [--seeds 0,1,2] [--modes held_out,final] [--runs runs/ending] [--out bench/ending.json]

The film is the two-shot scene (`bench.scenes.two_shot`, 1200 frames at 128x128, 24 fps, cut at frame 900):
the train-window view, then another world at dusk moving the other way. Two models are trained on it with the
`quality` preset's budget and the presets' settings (`infer.config.ALIVE`), for each seed:

- held_out: today's splits (train, val, test = 0.7, 0.15, 0.15), exported at its best checkpoint; it trains on
  the first shot only, since the cut falls in its validation split;
- final: every frame (splits 1, 0, 0), exported at its last checkpoint, there being no validation to pick one.

Each rolls out 600 steps from the film's last frame, and the yardstick (`infer.yardstick`) judges the
continuation against the last shot alone: realism is distance to the last shot's frames, scaled by one real
step's distance (no real frame comes after the film), and the alive horizon says how long the continuation
stays film-like in that world. The real future (the scene rendered on past the film's end, encoded like the
film) is judged the same way: the ceiling, which stays in the last shot's world for all 600 steps. Each run's
filmstrip puts the real future above the continuation, at the start and steps 1, 8, 64, 300 and 600;
bench/ending.png shows them all, bench/ending.json has every number and the table (mean [min, max] over
seeds). Finished runs, exports and judgements are reused, so an interrupted measurement picks up where it
stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import trainer.quiet  # noqa: F401  (TensorFlow's log settings, before anything imports it)
from bench import scenes
from bench.quality import LONG, PRESET, ROOT, aggregate, montage, spread
from infer.config import ALIVE, FINAL_SPLITS, Config, apply, resolve
from infer.context import check_start
from infer.contract import Contract
from infer.errors import UserError, check_writable_dir, exit_on_user_error, write_text_atomic
from infer.evaluate import long_rollout, read_film
from infer.pictures import grid, save_png
from infer.runner import load
from infer.video import probe, read_frames
from infer.yardstick import Judge, Reference

FILM_FRAMES, FILM_SIZE, FILM_FPS = 1200, (128, 128), 24.0
REALISM_STEPS = (1, 32, 100, LONG)


@dataclass(frozen=True)
class Mode:
    """How a model is trained on the film, and which of its checkpoints is continued."""

    name: str
    overrides: dict[str, dict[str, Any]]  # on top of the preset and ALIVE
    checkpoint: str


MODES = {mode.name: mode for mode in (Mode("held_out", {}, "best"),
                                      Mode("final", {"data": {"splits": FINAL_SPLITS}}, "latest"))}


def render_media(media: Path) -> tuple[Path, Path]:
    """The two-shot film, and its real future: the scene rendered on for LONG steps past the film's end, encoded
    like the film so that it is judged like the film's own frames. Each is rendered once."""
    film, future = media / "two_shot.mp4", media / "two_shot_future.mp4"
    if not film.exists():
        scenes.write(film, FILM_FRAMES, FILM_SIZE, FILM_FPS, seed=0, scene="two_shot")
    count = LONG * base_config().data.stride
    if not future.exists():
        scenes.encode(future, lambda: past_the_end(count), count, FILM_SIZE, FILM_FPS, "two_shot_future")
    return film, future


def past_the_end(count: int) -> Iterator[np.ndarray]:
    """The film's scene rendered on for `count` frames after its last."""
    return (scenes.two_shot_at(FILM_FRAMES + i, FILM_FRAMES, FILM_SIZE) for i in range(count))


def base_config() -> Config:
    """The preset's budget with the presets' settings for staying alive: what both modes share."""
    return apply(resolve(PRESET, None, {}), ALIVE, "ALIVE")


def config_for(mode: Mode, film: Path, seed: int) -> Config:
    """The shared config with the mode's overrides, on the film with one seed."""
    values = apply(base_config(), mode.overrides, f"mode {mode.name}")
    return apply(values, {"data": {"videos": (str(film),)}, "train": {"seed": seed}}).validate()


def run_one(mode: Mode, config: Config, film: Path, future: Path, run_dir: Path) -> dict:
    """Train, export and continue one run; each stage is skipped when its result is already there."""
    import keras

    from export.onnx_export import export
    from trainer.train import train

    model = run_dir / "export" / "generator.onnx"
    judged = run_dir / "ending" / "judged.json"
    if not (run_dir / "metrics.json").exists():
        train(config, run_dir)
        keras.backend.clear_session()
    if not model.exists():
        export(run_dir, mode.checkpoint, model)
    if not judged.exists():
        continue_film(model, film, future, judged.parent)
    return json.loads(judged.read_text())


def continue_film(model_path: Path, film: Path, future: Path, out: Path) -> dict:
    """LONG steps from the film's last frame, and the real future, each judged against the last shot; writes
    filmstrip.png, rollout.mp4 (the real future beside the continuation) and judged.json (last, so it is there
    only when the whole judgement is)."""
    model = load(model_path)
    contract, info = model.contract, probe(film)
    last, shot = info.frames - 1, (scenes.cut_frame(info.frames), info.frames)
    check_start(last, contract.context_frames, contract.stride)
    check_writable_dir(out, "output folder")
    real = read_film(film, contract, last, 0, last, shot, shot)
    start, truth = real.real[last], real_future(future, contract)
    real.real.update({last + k * contract.stride: frame for k, frame in enumerate(truth, start=1)})
    watched = long_rollout(model, real, last, 0, LONG, out)
    steps = sorted(watched.shown)
    strip = grid([[start, *(truth[k - 1] for k in steps)], [start, *(watched.shown[k] for k in steps)]],
                 labels=["start", *(f"step {k}" for k in steps)])
    save_png(out / "filmstrip.png", strip)
    judged = {"model": watched.judge.verdict(), "real_future": judged_alone(real.reference, start, truth),
              "start_frame": last, "cut": shot[0]}
    write_text_atomic(out / "judged.json", json.dumps(judged, indent=2))
    return judged


def real_future(future: Path, contract: Contract) -> list[np.ndarray]:
    """Steps 1..LONG past the film's last frame at the model's size and stride (`future`'s frame i is the film's
    frame `frames + i`)."""
    at = [k * contract.stride - 1 for k in range(1, LONG + 1)]
    frames = dict(read_frames(future, contract.frame_size, contract.fit, wanted=set(at)))
    if len(frames) < LONG:
        raise UserError(f"{future} holds the real future for {len(frames)} of {LONG} steps of {contract.stride} "
                        "frames; delete it to render it again")
    return [frames[i] for i in at]


def judged_alone(reference: Reference, start: np.ndarray, frames: list[np.ndarray]) -> dict:
    """The yardstick's verdict on frames that follow `start`, as on a continuation."""
    judge = Judge(reference, start)
    for frame in frames:
        judge.observe(frame)
    return judge.verdict()


def figures(verdict: dict) -> dict[str, Any]:
    """What one continuation contributes to the table: its alive horizon, why it ends, and its realism."""
    realism = verdict["ratios"]["realism"]
    return {"alive_horizon": verdict["alive_horizon"], "ends_because": verdict["ends_because"] or "-",
            **{f"realism_{k}": realism[k - 1] for k in REALISM_STEPS}}


def summarize(runs: list[dict]) -> dict[str, Any]:
    """bench.quality's mean [min, max] over seeds, and how many seeds stay in the last shot's world throughout."""
    return {**aggregate(runs), "in_world": sum(r["alive_horizon"] == LONG for r in runs), "seeds": len(runs)}


def table(results: dict[str, dict], checkpoints: dict[str, str]) -> str:
    """One row per mode, then the real future's, as markdown."""
    header = (f"| model | checkpoint | alive horizon | seeds alive all {LONG} steps | ends because (most seeds) | "
              "realism at " + " / ".join(map(str, REALISM_STEPS)) + " |")
    lines = [header, "|" + " --- |" * header.count(" |")]
    for name, agg in results.items():
        realism = " / ".join(spread(agg[f"realism_{k}"]) for k in REALISM_STEPS)
        lines.append(f"| {name} | {checkpoints.get(name, '-')} | {spread(agg['alive_horizon'], 0)} | "
                     f"{agg['in_world']} of {agg['seeds']} | {agg['ends_because']} | {realism} |")
    return "\n".join(lines) + (
        f"\n\nMean [min, max] over seeds of {LONG}-step continuations from the film's last frame, judged against "
        "its last shot: realism is the distance to the nearest frame of that shot over one real step's (film-like "
        "at 2 or less). real future: the scene itself, rendered on past the film's end.")


def measure(seeds: list[int], modes: list[Mode], runs: Path, out: Path) -> dict:
    """Every mode with every seed, then the summary; the real future's row gathers its (identical) judgement from
    every run, so a spread there would show the runs were not judged alike."""
    film, future = render_media(runs / "media")
    plan = [(mode, seed) for mode in modes for seed in seeds]
    print(f"ending: {len(modes)} mode(s) x {len(seeds)} seed(s) = {len(plan)} runs with the {PRESET} preset and "
          f"ALIVE, continued {LONG} steps from the end of {film}; runs in {runs}", flush=True)
    judged: dict[str, list[tuple[int, dict]]] = {}
    for number, (mode, seed) in enumerate(plan, start=1):
        run_dir = runs / mode.name / f"seed-{seed}"
        print(f"\nending: run {number}/{len(plan)}: {mode.name}, seed {seed} ({run_dir})", flush=True)
        done = run_one(mode, config_for(mode, film, seed), film, future, run_dir)
        judged.setdefault(mode.name, []).append((seed, done))
    per_run = {name: [{"seed": seed, **figures(j["model"])} for seed, j in runs_] for name, runs_ in judged.items()}
    truth = [figures(j["real_future"]) for runs_ in judged.values() for _, j in runs_]
    results = {name: summarize(rows) for name, rows in per_run.items()} | {"real future": summarize(truth)}
    picture = out.with_suffix(".png")
    montage([(f"{name}, seed {r['seed']}: alive {r['alive_horizon']} steps (real future above)",
              runs / name / f"seed-{r['seed']}" / "ending" / "filmstrip.png")
             for name, rows in per_run.items() for r in rows], picture)
    checkpoints = {mode.name: mode.checkpoint for mode in modes}
    record = {"preset": PRESET, "config": base_config().to_dict(),
              "film": {"scene": "two_shot", "frames": FILM_FRAMES, "size": list(FILM_SIZE), "fps": FILM_FPS,
                       "cut": scenes.cut_frame(FILM_FRAMES)},
              "modes": {mode.name: {"overrides": mode.overrides, "checkpoint": mode.checkpoint} for mode in modes},
              "seeds": seeds, "long_steps": LONG, "results": results, "runs": per_run,
              "montage": str(picture.relative_to(ROOT) if picture.is_relative_to(ROOT) else picture),
              "table": table(results, checkpoints)}
    write_text_atomic(out, json.dumps(record, indent=2))
    print(f"\n{record['table']}\n\nnumbers: {out}\nfilmstrips: {picture}")
    return record


def parse_seeds(text: str) -> list[int]:
    """--seeds 0,1,2 as integers."""
    try:
        seeds = [int(item) for item in text.split(",") if item]
    except ValueError:
        seeds = []
    if not seeds:
        raise UserError(f"--seeds {text!r} is not a list of seeds, e.g. 0,1,2")
    return seeds


def parse_modes(text: str) -> list[Mode]:
    """--modes held_out,final as Modes."""
    names = [name for name in text.split(",") if name]
    if not names or any(name not in MODES for name in names):
        raise UserError(f"--modes {text!r}: give some of {', '.join(MODES)}, comma-separated")
    return [MODES[name] for name in names]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="Seeds, comma-separated.")
    parser.add_argument("--modes", default=",".join(MODES), help=f"Comma-separated: {', '.join(MODES)}.")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "ending")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "ending.json")
    args = parser.parse_args(argv)
    measure(parse_seeds(args.seeds), parse_modes(args.modes), args.runs, args.out)


if __name__ == "__main__":
    exit_on_user_error(lambda: main(sys.argv[1:]))
