"""epilogue-eval: did the model learn how the film moves, or did it freeze, fade or dissolve?

Starts from a real frame the model never trained on (by default the first frame of the test split
recorded in the model's metadata), rolls out, and compares step k with the real frame `k * stride`
later, beside two baselines computed in the same run: persistence (the start frame, repeated) and the
mean training frame. A long rollout is then checked for health: motion per step against the real film's
motion at the same stride, colour drift from the training frames, and the runner's collapse flags.
"""

from __future__ import annotations

import html
import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from infer import metrics
from infer.contract import Contract
from infer.errors import UserError, check_writable_dir, exit_on_user_error, warn, write_text_atomic
from infer.health import Monitor
from infer.pictures import grid, line_chart, save_png
from infer.progress import Steps
from infer.runner import Stepper, load, to_uint8
from infer.video import probe, read_frames

METRICS = {"l1": "lower", "psnr": "higher", "ssim": "higher"}
FILMSTRIP_STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass
class Film:
    """What one decoding pass over the video gives the evaluation, all at model size in [0, 1]."""

    real: dict[int, np.ndarray]  # the start frame and the real future, by frame index
    mean_train: np.ndarray  # the mean training frame
    train_histogram: np.ndarray
    motion: list[float]  # mean |frame t+stride - frame t| over the film


def start_frame(start: str, contract: Contract, frames: int, fps: float, video: Path) -> int:
    """The test split's first frame, or the frame at SECONDS; warns when it is not held out."""
    train_start, train_stop = contract.splits["train"]
    if start == "test":
        if frames != contract.source_frames:
            warn(f"video {video} has {frames} frames, the training video had {contract.source_frames}: "
                 f"starting at its last 15%, which may not be held out")
            return min(frames - 1, round(frames * 0.85))
        return contract.splits["test"][0]
    try:
        index = round(float(start.rstrip("s")) * fps)
    except (ValueError, OverflowError):
        raise UserError(f"--from {start!r} is not 'test' or seconds (e.g. 21.5)") from None
    if not 0 <= index < frames:
        raise UserError(f"--from {start} is frame {index}, but video {video} has {frames} frames")
    if train_start <= index < train_stop and frames == contract.source_frames:
        warn(f"frame {index} is inside the training split (frames {train_start}-{train_stop - 1}): not held out")
    return index


def read_film(video: Path, contract: Contract, start: int, steps: int, train_span: tuple[int, int]) -> Film:
    """One decoding pass: the real future, the mean training frame and histogram, the film's motion."""
    stride = contract.stride
    wanted = {start + k * stride for k in range(steps + 1)}
    real, recent = {}, deque(maxlen=stride + 1)
    total, histogram, count, motion = None, None, 0, []
    for index, frame in read_frames(video, contract.frame_size, contract.fit):
        pixels = frame.astype(np.float32) / 255.0
        if index in wanted:
            real[index] = pixels
        if train_span[0] <= index < train_span[1]:
            total = pixels.astype(np.float64) if total is None else total + pixels
            histogram = metrics.histogram(pixels) if histogram is None else histogram + metrics.histogram(pixels)
            count += 1
        recent.append(pixels)
        if len(recent) == stride + 1:
            motion.append(float(np.abs(recent[-1] - recent[0]).mean()))
    if count == 0:
        raise UserError(f"video {video} has no frame in the training span {train_span}; it can't give baselines")
    return Film(real, (total / count).astype(np.float32), histogram / count, motion)


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


def evaluate(model_path: Path, video: Path, start: str = "test", steps: int | None = None, long: int = 600,
             out: Path | None = None, provider: str = "auto") -> dict:
    if (steps is not None and steps < 1) or long < 1:
        raise UserError(f"--steps and --long must be >= 1 (got {steps}, {long})")
    model = load(model_path, provider)
    contract = model.contract
    info = probe(video)
    out = out or model_path.parent / "eval"
    check_writable_dir(out, "output directory")
    first = start_frame(start, contract, info.frames, info.fps, video)
    available = (info.frames - 1 - first) // contract.stride
    if available < 1:
        raise UserError(f"video {video} has {info.frames} frames: from frame {first} not one step of "
                        f"{contract.stride} frames is left to compare with; start earlier")
    horizon = min(steps or available, available)
    train_span = tuple(contract.splits["train"]) if info.frames == contract.source_frames else (0, first)
    film = read_film(video, contract, first, horizon, train_span)
    truth = [film.real[first + k * contract.stride] for k in range(1, horizon + 1)]
    start_pixels = film.real[first]

    stepper, monitor = Stepper(model), Monitor()
    stepper.reset(np.rint(start_pixels * 255).astype(np.uint8))
    monitor.begin(start_pixels * 2 - 1)
    predicted, motion, drift = [], [], []
    previous = start_pixels
    progress = Steps("eval rollout", max(horizon, long))
    for k in range(1, max(horizon, long) + 1):
        stepper.step()
        output = stepper.frame()
        monitor.observe(k, output)
        pixels = to_uint8(output).astype(np.float32) / 255.0
        if k <= horizon:
            predicted.append(pixels)
        motion.append(float(np.abs(pixels - previous).mean()))
        drift.append(metrics.histogram_distance(metrics.histogram(pixels), film.train_histogram))
        previous = pixels
        progress.update(k)
    progress.close()

    scored = {name: {metric: [round(getattr(metrics, metric)(p, t), 6) for p, t in zip(frames, truth, strict=True)]
                     for metric in METRICS}
              for name, frames in {"model": predicted, "persistence": [start_pixels] * horizon,
                                   "mean_frame": [film.mean_train] * horizon}.items()}
    verdicts = {baseline: {metric: beats(scored["model"][metric], scored[baseline][metric], better)
                           for metric, better in METRICS.items()}
                for baseline in ("persistence", "mean_frame")}
    band = (float(np.percentile(film.motion, 5)), float(np.percentile(film.motion, 95)))
    real_drift = float(np.mean([metrics.histogram_distance(metrics.histogram(t), film.train_histogram)
                                for t in truth]))
    in_band = float(np.mean([band[0] <= m <= band[1] for m in motion]))
    report = {
        "model": str(model_path), "video": str(video), "start_frame": first, "stride": contract.stride,
        "steps_compared": horizon, "long_steps": len(motion), "training_step": contract.training_step,
        "metrics": scored, "model_beats": verdicts,
        "long": {"motion": [round(m, 6) for m in motion], "real_motion_band_p5_p95": band,
                 "fraction_of_steps_with_real_motion": round(in_band, 4),
                 "colour_drift": [round(d, 6) for d in drift], "real_frames_colour_drift": round(real_drift, 6),
                 "health": monitor.series()},
    }
    report["summary"] = summarize(report)
    draw_report(report, out, truth, predicted)
    write_text_atomic(out / "eval.json", json.dumps(report, indent=2))
    for line in report["summary"]:
        print(line)
    print(f"report: {out / 'index.html'}\nnumbers: {out / 'eval.json'}")
    return report


def summarize(report: dict) -> list[str]:
    """Plain sentences: where the model beats each baseline, and whether the long rollout stays alive."""
    n, m = report["steps_compared"], report["metrics"]
    lines = [f"held-out start frame {report['start_frame']}, {n} steps of {report['stride']} frames compared "
             f"with the real film"]
    for baseline, label in (("persistence", "persistence (repeat the start frame)"),
                            ("mean_frame", "the mean training frame")):
        won = report["model_beats"][baseline]["l1"]
        where = f"at steps {longest_runs(won)} ({len(won)} of {n})" if won else f"at no step of {n}"
        lines.append(f"L1: model beats {label} {where}; step 1: model {m['model']['l1'][0]:.4f} vs "
                     f"{m[baseline]['l1'][0]:.4f}")
    long = report["long"]
    flags = long["health"]["flags"]
    lines.append(f"{report['long_steps']}-step rollout: motion within the real film's 5-95% band at "
                 f"{100 * long['fraction_of_steps_with_real_motion']:.0f}% of steps; colour drift from the training "
                 f"frames {long['colour_drift'][0]:.3f} at step 1, {long['colour_drift'][-1]:.3f} at the end (real "
                 f"held-out frames: {long['real_frames_colour_drift']:.3f}); "
                 + (f"flags: {', '.join(f'{k} from step {v}' for k, v in flags.items())}" if flags else "no flags"))
    return lines


def draw_report(report: dict, out: Path, truth: list[np.ndarray], predicted: list[np.ndarray]) -> None:
    """PNG plots, a filmstrip and a self-contained index.html that shows them."""
    m = report["metrics"]
    pictures = {}
    for metric, better in METRICS.items():
        pictures[f"{metric}.png"] = (f"{metric.upper()} against the real future ({better} is better)",
                                     line_chart({name: m[name][metric] for name in m},
                                                f"{metric.upper()} vs step", metric))
    long = report["long"]
    pictures["motion.png"] = ("Motion per step (mean absolute change) against the real film's 5-95% band",
                              line_chart({"model": long["motion"]}, "motion per step", "mean |change|",
                                         band=tuple(long["real_motion_band_p5_p95"]), band_label="real film"))
    pictures["drift.png"] = ("Colour-histogram distance to the training frames (0 = same colours)",
                             line_chart({"model": long["colour_drift"]}, "colour drift", "distance",
                                        band=(long["real_frames_colour_drift"],) * 2, band_label="real frames"))
    shown = [k for k in FILMSTRIP_STEPS if k <= len(predicted)]
    pictures["filmstrip.png"] = (f"Real (top) and predicted (bottom) at steps {', '.join(map(str, shown))}",
                                 grid([[truth[k - 1] for k in shown], [predicted[k - 1] for k in shown]],
                                      labels=[f"step {k}" for k in shown]))
    for name, (_, image) in pictures.items():
        save_png(out / name, image)
    figures = "\n".join(f'<figure><img src="{name}" alt="{html.escape(caption)}">'
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                        for name, (caption, _) in pictures.items())
    summary = "\n".join(f"<li>{html.escape(line)}</li>" for line in report["summary"])
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>epilogue evaluation</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}}
img{{max-width:100%;border:1px solid #ddd}}figure{{margin:1.5em 0}}figcaption{{color:#555}}
code{{background:#f4f4f4;padding:0 .3em}}</style></head><body>
<h1>epilogue evaluation</h1>
<p>Model <code>{html.escape(report['model'])}</code> (training step {report['training_step']}) on
<code>{html.escape(report['video'])}</code>, from frame {report['start_frame']}, {report['stride']} frames a step.</p>
<ul>{summary}</ul>
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
    start: Annotated[str, typer.Option("--from", help="test (the held-out split) or seconds.")] = "test",
    steps: Annotated[int | None, typer.Option(help="Steps compared (default: as far as the video goes).")] = None,
    long: Annotated[int, typer.Option(help="Steps of the long health rollout.")] = 600,
    out: Annotated[Path | None, typer.Option(help="Report folder (default: eval/ beside the model).")] = None,
    provider: Annotated[str, typer.Option(help="auto | tensorrt | cuda | cpu")] = "auto",
) -> None:
    """Score a model's continuation against the real film and two baselines; write a visual report."""
    evaluate(model, video, start, steps, long, out, provider)


def main() -> None:
    exit_on_user_error(app)


if __name__ == "__main__":
    main()
