"""epilogue-eval: did the model learn how the film moves, or did it freeze, fade or dissolve?

Starts from a real frame the model never trained on (by default the first frame of the test split
recorded in the model's metadata), rolls out, and compares step k with the real frame `k * stride`
later, beside two baselines computed in the same run: persistence (the start frame, repeated) and the
mean training frame. A long rollout (600 steps) is then judged by the yardstick (`infer.yardstick`): how
many steps it stays film-like, and why it stops; the runner's collapse flags are kept beside it.
"""

from __future__ import annotations

import html
import json
import os
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from infer import metrics
from infer.context import check_start, context_indices, future_indices, parse_frame
from infer.contract import Contract
from infer.errors import UserError, check_writable_dir, exit_on_user_error, warn, write_text_atomic
from infer.frames import to_uint8, to_unit
from infer.health import Monitor
from infer.pictures import grid, line_chart, save_png
from infer.progress import Steps
from infer.rollout import ORIGIN_STEP_RATE
from infer.runner import Model, Stepper, load
from infer.video import VideoInfo, encoding, file_sha256, probe, read_frames
from infer.yardstick import LIMIT, ROLLING, TRAVEL, Judge, Reference, ReferenceBuilder, short_horizon

METRICS = {"l1": "lower", "psnr": "higher", "ssim": "higher"}
FILMSTRIP_STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
LONG_STEPS = (1, 8, 64, 300, 600)  # the long rollout's filmstrip (and the last step)
VIDEO_HEIGHT = 128  # the report's video: the real future beside the rollout, at least this tall (shown at 2x)


@dataclass
class Film:
    """What one decoding pass over the video gives the evaluation, at model size."""

    real: dict[int, np.ndarray]  # uint8: the start frame, the context before it and the real future, by index
    mean_train: np.ndarray  # the mean training frame, in [0, 1]
    reference: Reference  # the real film's statistics the yardstick measures against


def start_frame(start: str, contract: Contract, info: VideoInfo, training: bool) -> int:
    """The test split's first frame (`test`; a --final model's film has none: its end), or the frame asked for;
    warns when it is not held out."""
    index = parse_frame(start, info.frames, info.fps, Path(info.path), word="test")
    if index is None:
        if not training:
            return _test_fraction_start(contract, info)
        return contract.splits["test"][0] if contract.held_out else contract.film_end
    train_start, train_stop = contract.splits["train"]
    if training and contract.held_out and train_start <= index < train_stop:
        warn(f"frame {index} is inside the training split (frames {train_start}-{train_stop - 1}): not held out")
    return index


def _test_fraction_start(contract: Contract, info: VideoInfo) -> int:
    """Another film has no recorded test split: start its last `test` fraction from the end, as the model's."""
    test = contract.config.data.splits[2]
    warn(f"video {info.path} is not the training film {contract.source_video} (another sha256): starting at its "
         f"last {100 * test:.0f}% (the model's test fraction), which may not be held out")
    return min(info.frames - 1, round(info.frames * (1 - test)))


def read_film(video: Path, contract: Contract, start: int, steps: int, last: int, train_span: tuple[int, int],
              stats_span: tuple[int, int]) -> Film:
    """One decoding pass up to the film's `last` frame: the real future, the mean training frame, the yardstick's
    reference."""
    wanted = {*context_indices(start, contract.context_frames, contract.stride),
              *future_indices(start, steps, contract.stride)}
    builder = ReferenceBuilder(contract.stride, stats_span, train_span, last + 1)
    real, total, count = {}, None, 0
    for index, frame in read_frames(video, contract.frame_size, contract.fit, stop=last + 1):
        if index in wanted:
            real[index] = frame
        if train_span[0] <= index < train_span[1]:
            total = frame.astype(np.float64) if total is None else total + frame
            count += 1
        builder.add(index, frame)
    if count == 0:
        raise UserError(f"video {video} has no frame in the training span {train_span}; it can't give baselines")
    return Film(real, to_unit(total / count), builder.finish())


def longest_runs(steps: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    runs: list[list[int]] = []
    for step in steps:
        if runs and step == runs[-1][1] + 1:
            runs[-1][1] = step
        else:
            runs.append([step, step])
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in runs) or "none"


def beats(model: list[float], baseline: list[float], better: str) -> list[int]:
    sign = 1 if better == "higher" else -1
    return [k + 1 for k, (m, b) in enumerate(zip(model, baseline, strict=True)) if sign * (m - b) > 0]


@dataclass
class Watched:
    """The long rollout as the report needs it."""

    predicted: list[np.ndarray]  # uint8: the steps compared with the real future
    shown: dict[int, np.ndarray]  # uint8: the long filmstrip's steps
    monitor: Monitor
    judge: Judge


def long_rollout(model: Model, film: Film, first: int, horizon: int, total: int, out: Path) -> Watched:
    """`total` steps from the real start, watched by the health monitor and the yardstick (motion measured once
    for both), and written beside the real future as rollout.mp4 (nothing of it is left if it is stopped)."""
    contract = model.contract
    stepper, monitor, judge = Stepper(model), Monitor(), Judge(film.reference, film.real[first])
    height, width = contract.frame_size
    scale = max(1, VIDEO_HEIGHT // height)  # small models are shown larger
    blank = np.full_like(film.real[first], 24)
    stepper.reset([film.real[i] for i in context_indices(first, contract.context_frames, contract.stride)])
    monitor.begin(film.real[first])
    watched = Watched([], {}, monitor, judge)
    with encoding(out / "rollout.mp4", (height * scale, 2 * width * scale), ORIGIN_STEP_RATE,
                  options={"crf": "23"}) as encoder, closing(Steps("eval rollout", total)) as progress:
        shared = True  # the monitor's last frame is the judge's: both measure change from it
        for k in range(1, total + 1):
            stepper.step()
            output = stepper.frame()
            frame = to_uint8(output)
            motion = judge.observe(frame)
            monitor.observe(k, output, motion=motion if shared else None)
            shared = bool(np.isfinite(output).all())  # the monitor keeps its last finite frame past a NaN
            encoder.put(frame, film.real.get(first + k * contract.stride, blank))
            if k <= horizon:
                watched.predicted.append(frame)
            if k in LONG_STEPS or k == total:
                watched.shown[k] = frame
            progress.update(k)
    return watched


def score(predicted: list[np.ndarray], film: Film, first: int, stride: int) -> dict[str, dict[str, list[float]]]:
    """Each metric at each compared step, for the model and the two baselines, against the real future."""
    truth = [to_unit(film.real[i]) for i in future_indices(first, len(predicted), stride)]
    baselines = {"persistence": to_unit(film.real[first]), "mean_frame": film.mean_train}
    frames = {"model": [to_unit(p) for p in predicted], **{name: [f] * len(truth) for name, f in baselines.items()}}
    return {name: {metric: [round(getattr(metrics, metric)(p, t), 6) for p, t in zip(shown, truth, strict=True)]
                   for metric in METRICS}
            for name, shown in frames.items()}


def evaluate(model_path: Path, video: Path, start: str = "test", steps: int | None = None, long: int = 600,
             out: Path | None = None, provider: str = "auto", rollout_video: Path | None = None) -> dict:
    if (steps is not None and steps < 1) or long < 1:
        raise UserError(f"--steps and --long must be >= 1 (got {steps}, {long})")
    if rollout_video is not None and not rollout_video.is_file():
        raise UserError(f"--video {rollout_video} does not exist; give the continuation epilogue-rollout wrote")
    model = load(model_path, provider)
    contract = model.contract
    info = probe(video)
    out = out or model_path.parent / "eval"
    check_writable_dir(out, "output directory")
    (out / "eval.json").unlink(missing_ok=True)  # written last: there only when the whole report is this run's
    training = file_sha256(video) == contract.source_sha256
    first = start_frame(start, contract, info, training)
    check_start(first, contract.context_frames, contract.stride)
    last = contract.film_end if training else info.frames - 1  # the credits left out by --end are not the future
    seen_all = training and not contract.held_out
    available = 0 if seen_all else (last - first) // contract.stride
    if available < 1 and not seen_all:
        raise UserError(f"video {video} ends at frame {last}: from frame {first} not one step of {contract.stride} "
                        "frames is left to compare with; start earlier")
    horizon = min(steps or available, available)
    train_span = tuple(contract.splits["train"]) if training else (0, first)
    stats_span = train_span if training else (0, info.frames)
    film = read_film(video, contract, first, horizon, last, train_span, stats_span)
    watched = long_rollout(model, film, first, horizon, max(horizon, long), out)
    report = {
        "model": str(model_path), "video": str(video), "start_frame": first, "stride": contract.stride,
        "steps_compared": horizon, "long_steps": max(horizon, long), "training_step": contract.training_step,
        "held_out": not seen_all, "film_end": last, "alive": watched.judge.verdict(),
        "health": watched.monitor.series(),
        "rollout_video": os.path.relpath(rollout_video, out) if rollout_video else None,
    }
    if not seen_all:
        report.update(compared(watched.predicted, film, first, contract.stride))
    report["summary"] = summarize(report)
    draw_report(report, out, watched.predicted, watched.shown, film.real)
    write_text_atomic(out / "eval.json", json.dumps(report, indent=2))
    for line in report["summary"]:
        print(line)
    print(f"report: {out / 'index.html'}\nnumbers: {out / 'eval.json'}\nnext: open {out / 'index.html'} in a browser")
    return report


def compared(predicted: list[np.ndarray], film: Film, first: int, stride: int) -> dict:
    """The continuation against the real future and the two baselines, step by step."""
    scored = score(predicted, film, first, stride)
    model_m, persist = scored["model"], scored["persistence"]
    return {"short_horizon": short_horizon(model_m["l1"], persist["l1"], model_m["ssim"], persist["ssim"]),
            "metrics": scored,
            "model_beats": {baseline: {metric: beats(scored["model"][metric], scored[baseline][metric], better)
                                       for metric, better in METRICS.items()}
                            for baseline in ("persistence", "mean_frame")}}


def summarize(report: dict) -> list[str]:
    """Plain sentences, the verdict first: how long it stays a film and why it stops, then the short horizon (or,
    for a --final model on its own film, that there is no held-out truth to compare with)."""
    alive = report["alive"]
    lines = [f"{alive['summary']} (inside the film's band at {100 * alive['alive_fraction']:.0f}% of steps)"]
    if not report["held_out"]:
        lines.append(f"every frame of {report['video']} up to its end (frame {report['film_end']}) was trained on "
                     "(a --final model): its continuation from the end is judged by the film's own measures only "
                     "(motion, sharpness, colour, realism against its frames, scaled by one real step's distance); "
                     "no held-out truth to compare with")
    else:
        lines += _compared_lines(report)
    flags = report["health"]["flags"]
    lines.append(f"{report['long_steps']}-step rollout health: "
                 + (f"flags: {', '.join(f'{k} from step {v}' for k, v in flags.items())}" if flags else "no flags"))
    return lines


def _compared_lines(report: dict) -> list[str]:
    n, m, short = report["steps_compared"], report["metrics"], report["short_horizon"]
    lines = [f"step 1: L1 {short['l1_ratio_step1']:.2f}x persistence's (mean over steps 1-{short['steps']}: "
             f"{short['l1_ratio_mean']:.2f}x, 1-SSIM {short['dssim_ratio_mean']:.2f}x): "
             + ("beats persistence" if short["beats_persistence"] else "does not beat persistence"),
             f"held-out start frame {report['start_frame']}, {n} steps of {report['stride']} frames compared "
             f"with the real film"]
    for baseline, label in (("persistence", "persistence (repeat the start frame)"),
                            ("mean_frame", "the mean training frame")):
        won = report["model_beats"][baseline]["l1"]
        where = f"at steps {longest_runs(won)} ({len(won)} of {n})" if won else f"at no step of {n}"
        lines.append(f"L1: model beats {label} {where}; step 1: model {m['model']['l1'][0]:.4f} vs "
                     f"{m[baseline]['l1'][0]:.4f}")
    return lines


def _clipped(values: list[float | None], top: float = 4.0) -> list[float | None]:
    return [None if v is None else min(v, top) for v in values]


def long_strip(report: dict, shown: dict[int, np.ndarray], real: dict[int, np.ndarray]) -> tuple[str, np.ndarray]:
    """The long rollout's filmstrip and its caption: under the real future, or, for a --final model on its own
    film (no real future), after the film's end it starts from."""
    steps, first, stride = sorted(shown), report["start_frame"], report["stride"]
    listed = ", ".join(map(str, steps))
    if not report["held_out"]:
        return (f"The film's end (frame {first}, trained on) and the long rollout from it at steps {listed}",
                grid([[real[first], *(shown[k] for k in steps)]], labels=["the end", *(f"step {k}" for k in steps)]))
    blank = np.full_like(shown[steps[0]], 24)
    return (f"The long rollout at steps {listed}: real future (top, dark where the video ends) and the model "
            "(bottom)", grid([[real.get(first + k * stride, blank) for k in steps], [shown[k] for k in steps]],
                             labels=[f"step {k}" for k in steps]))


def draw_report(report: dict, out: Path, predicted: list[np.ndarray], shown: dict[int, np.ndarray],
                real: dict[int, np.ndarray]) -> None:
    """PNG plots and filmstrips (uint8 frames), and a self-contained index.html that puts the verdict first."""
    m, ratios = report.get("metrics", {}), report["alive"]["ratios"]
    first, stride = report["start_frame"], report["stride"]
    pictures = {"long.png": long_strip(report, shown, real)}
    if predicted:
        close = [k for k in FILMSTRIP_STEPS if k <= len(predicted)]
        pictures["filmstrip.png"] = (f"Real (top) and predicted (bottom) at steps {', '.join(map(str, close))}",
                                     grid([[real[first + k * stride] for k in close],
                                           [predicted[k - 1] for k in close]], labels=[f"step {k}" for k in close]))
    bands = report["alive"]["reference"]
    for name, what in (("motion", "Motion per step"), ("sharpness", "Sharpness (variance of the Laplacian)")):
        pictures[f"{name}.png"] = (f"{what} of the rollout over the real film's median (rolling median of "
                                   f"{ROLLING} steps; film-like inside the band; drawn at most 4)",
                                   line_chart({f"{name} ratio": _clipped(ratios[name])}, f"{name} / real film",
                                              "ratio", band=tuple(bands[f"{name}_band"]), band_label="film-like"))
    pictures["travel.png"] = (f"Travel of the rollout over the real film's: how far its per-pixel range moves from "
                              f"{TRAVEL} steps to the next {TRAVEL} (0 when things change in place but go nowhere; "
                              f"rolling median of {ROLLING} steps; film-like above the floor; drawn at most 4)",
                              line_chart({"travel ratio": _clipped(ratios["travel"])}, "travel / real film", "ratio",
                                         band=(bands["travel_floor"], 4.0), band_label="film-like"))
    pictures["realism.png"] = ("Distance to the nearest training frame (realism) and colour-histogram distance, "
                               "each over real held-out frames' (film-like below 2; drawn at most 4)",
                               line_chart({"realism": _clipped(ratios["realism"]),
                                           "colour": _clipped(ratios["colour"])},
                                          "realism and colour / real held-out frames", "ratio", band=(0.0, LIMIT),
                                          band_label="film-like"))
    for metric, better in METRICS.items() if predicted else ():
        pictures[f"{metric}.png"] = (f"{metric.upper()} against the real future ({better} is better)",
                                     line_chart({name: m[name][metric] for name in m},
                                                f"{metric.upper()} vs step", metric))
    for name, (_, image) in pictures.items():
        save_png(out / name, image)
    figures = "\n".join(f'<figure><img src="{name}" alt="{html.escape(caption)}">'
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                        for name, (caption, _) in pictures.items())
    verdict, *details = report["summary"]
    linked = (f' The rollout video: <a href="{html.escape(report["rollout_video"])}">'
              f'{html.escape(report["rollout_video"])}</a>.') if report.get("rollout_video") else ""
    summary = "\n".join(f"<li>{html.escape(line)}</li>" for line in details)
    scale = "real held-out frames" if report["held_out"] else "one real step of the film (no frame was held out)"
    left = "real future (left, dark where the video ends)" if report["held_out"] else \
        "left panel stays dark (a --final model continues past all it was shown)"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>epilogue evaluation</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}}
img{{max-width:100%;border:1px solid #ddd}}figure{{margin:1.5em 0}}figcaption{{color:#555}}
code{{background:#f4f4f4;padding:0 .3em}}h2{{font-size:1.3em}}</style></head><body>
<h1>epilogue evaluation</h1>
<h2>{html.escape(verdict)}</h2>
<ul>{summary}</ul>
<p>Model <code>{html.escape(report['model'])}</code> (training step {report['training_step']}) on
<code>{html.escape(report['video'])}</code>, from frame {report['start_frame']}, {report['stride']} frames a step.
A continuation is film-like while its motion and sharpness stay within half and twice the real film's, what
changes goes somewhere (its travel over {TRAVEL} steps is at least half the film's), and its
distance to the film's nearest training frame and its colour distance stay within twice that of {scale} (each a
rolling median over {ROLLING} steps).</p>
<figure><video controls preload="metadata" src="rollout.mp4" width="{4 * VIDEO_HEIGHT}"></video>
<figcaption>The {left} and the model's continuation (right), all
{report['long_steps']} steps at {ORIGIN_STEP_RATE:.2f} steps a second.{linked}</figcaption></figure>
{figures}
<p>Every number is in <a href="eval.json">eval.json</a>.</p>
</body></html>
"""
    write_text_atomic(out / "index.html", page)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def cli(
    model: Annotated[Path, typer.Argument(help="An .onnx model made by epilogue-export.")],
    video: Annotated[Path, typer.Argument(help="The video to compare with (usually the training video).")],
    start: Annotated[str, typer.Option(help="test (the held-out split), a frame number (300) or seconds (12.5s).")]
    = "test",
    steps: Annotated[int | None, typer.Option(help="Steps compared (default: as far as the video goes).")] = None,
    long: Annotated[int, typer.Option(help="Steps of the long health rollout.")] = 600,
    out: Annotated[Path | None, typer.Option(help="Report folder (default: eval/ beside the model).")] = None,
    provider: Annotated[str, typer.Option(help="auto | tensorrt | cuda | cpu")] = "auto",
    rollout_video: Annotated[Path | None, typer.Option("--video", help="A continuation to link from the page.")]
    = None,
    old_from: Annotated[str | None, typer.Option("--from", hidden=True)] = None,
) -> None:
    """Score a model's continuation against the real film and two baselines; write a visual report."""
    if old_from is not None:  # the spelling of before: said in one line instead of "no such option"
        raise UserError(f"epilogue-eval's --from is now --start, read as epilogue-rollout reads it (a frame number, "
                        f"or seconds: --start {old_from.rstrip('s')}s)")
    try:
        evaluate(model, video, start, steps, long, out, provider, rollout_video)
    except KeyboardInterrupt:
        print("interrupted: the report is incomplete (its eval.json, written last, is not there; no file is left "
              "half-written); run the command again", file=sys.stderr, flush=True)
        raise SystemExit(130) from None


def main() -> None:
    exit_on_user_error(app)


if __name__ == "__main__":
    main()
