"""Where a model's one-step error goes: on pixels that move and on pixels that stay, against persistence's; how much
the mask or warp head keeps on each; and whether the warp head's flow points the way things moved.

    python -m bench.moves RUN_DIR [--checkpoint best|latest|STEP] [--windows 20]

The yardstick judges whole frames. On the street the warp head's first step is worse than persistence's, and a
whole-frame L1 can't say whether people move the wrong way or the still street is resampled: this splits it.
Windows are spread evenly over the run's held-out frames (its validation split). A pixel moves when the
truth differs from the newest frame by more than 0.2 (in [-1, 1], averaged over channels). A window's true shift
is the whole-pixel horizontal shift (within 4) of the newest frame that best matches the truth on its moving
pixels; the flow is backward (the newest frame is sampled at x + dx), so content moving right by s pixels reads
dx = -s, and a flow that follows the motion has its median at moving pixels near -shift.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import keras
import numpy as np

from export.onnx_export import find_checkpoint, load_generator
from infer.config import Config
from infer.errors import UserError, exit_on_user_error, write_text_atomic
from infer.frames import model_from_levels
from trainer import store
from trainer.plan import plan
from trainer.rundir import read_config

MOVES = 0.2  # a pixel moves when the truth differs from the newest frame by more than this, in [-1, 1]
SHIFTS = range(-4, 5)


def held_out_windows(run_dir: Path, config: Config, count: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Up to `count` of the run's own validation windows, spread evenly: the context (one [n, h, w, 3] array per
    frame, oldest first) and the frame `stride` after the newest, in [-1, 1]. They come from the trainer's frame
    store, reused where the run kept it and decoded once into the run directory where it did not."""
    held = store.open_store(config, plan(config), "val", run_dir / "frames")
    if not held.count:
        raise UserError(f"run {run_dir} holds no frame out (a --final run trains on them all); probe a run "
                        "trained with a validation split")
    rows = held.rows[np.linspace(0, held.count - 1, min(count, held.count)).round().astype(int)]
    frames, context = np.load(held.path, mmap_mode="r"), config.model.context
    return ([model_from_levels(frames[rows[:, j]].astype(np.float32)) for j in range(context)],
            model_from_levels(frames[rows[:, context]].astype(np.float32)))


def true_shift(newest: np.ndarray, truth: np.ndarray, moving: np.ndarray) -> int:
    """The horizontal shift (pixels, + right) that best carries `newest` onto `truth` where `moving`."""
    errors = {s: float(np.abs(np.roll(newest, s, axis=1) - truth).mean(-1)[moving].mean()) for s in SHIFTS}
    return min(errors, key=errors.get)


def head_weights(head: str, raw: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """The mask or warp head's per-pixel shares (as its layer computes them from the raw output) and their names."""
    if head == "mask":
        keep = 1 / (1 + np.exp(-raw[..., 3:]))
        return np.concatenate([keep, 1 - keep], -1), ("keep", "draw")
    weights = np.exp(raw[..., 3:] - raw[..., 3:].max(-1, keepdims=True))
    return weights / weights.sum(-1, keepdims=True), ("keep", "warp", "draw")


def split(generator: keras.Model, contexts: list[np.ndarray], truth: np.ndarray, head: str) -> dict:
    """The one-step L1 of the model and of persistence on moving and still pixels; the head's mean weights
    there; for the warp head, each window's true shift beside its flow's median at the moving pixels."""
    layer = generator.get_layer("next_frame") if head in ("mask", "warp") else None
    probe = keras.Model(generator.inputs, [generator.outputs[0], *(layer.input[:-1] if layer else [])])
    predicted, *inner = probe.predict(contexts, verbose=0)
    newest = contexts[-1]
    moving = np.abs(truth - newest).mean(-1) > MOVES
    report = {"windows": len(truth), "moving_share": float(moving.mean())}
    for region, mask in (("moving", moving), ("still", ~moving)):
        if not mask.any():
            report[region] = {"model_l1": None, "persistence_l1": None}
            continue
        report[region] = {"model_l1": float(np.abs(predicted - truth).mean(-1)[mask].mean()),
                          "persistence_l1": float(np.abs(newest - truth).mean(-1)[mask].mean())}
        if layer is not None:
            weights, names = head_weights(head, inner[0])
            report[region]["weights"] = dict(zip(names, (float(w) for w in weights[mask].mean(0)), strict=True))
    if head == "warp":
        dx = inner[1][..., 0]
        report["shift_and_flow"] = [(true_shift(newest[i], truth[i], moving[i]), float(np.median(dx[i][moving[i]])))
                                    for i in range(len(truth)) if moving[i].sum() >= 10]
    return report


def summary(report: dict) -> list[str]:
    lines = [f"{report['windows']} held-out windows; {report['moving_share']:.1%} of pixels move"]
    for region in ("moving", "still"):
        r = report[region]
        if r["model_l1"] is None:
            continue
        weights = "  ".join(f"{name} {w:.2f}" for name, w in r.get("weights", {}).items())
        lines.append(f"  {region:6s}: L1 {r['model_l1']:.4f} (persistence {r['persistence_l1']:.4f}, "
                     f"{r['model_l1'] / max(r['persistence_l1'], 1e-9):.2f}x)  {weights}")
    if "shift_and_flow" in report:
        pairs = report["shift_and_flow"]
        sides = [(side, [dx for shift, dx in pairs if np.sign(shift) == sign]) for side, sign in (("right", 1),
                                                                                                 ("left", -1))]
        lines.append("  flow's median dx at moving pixels, by the way they moved (following the motion reads "
                     "negative for right, positive for left): " + "; ".join(
                         f"{side} {np.mean(dxs):+.2f} ({len(dxs)} windows)" for side, dxs in sides if dxs))
    return lines


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checkpoint", default="best", help="best, latest or a step number.")
    parser.add_argument("--windows", type=int, default=20)
    args = parser.parse_args(argv)
    config = read_config(args.run_dir)
    generator, step = load_generator(args.run_dir, find_checkpoint(args.run_dir, args.checkpoint))
    report = {"step": step, **split(generator, *held_out_windows(args.run_dir, config, args.windows),
                                    config.model.head)}
    out = args.run_dir / f"moves-{args.checkpoint}.json"
    write_text_atomic(out, json.dumps(report, indent=2))
    print("\n".join([f"{args.run_dir} at step {step} ({config.model.head} head):", *summary(report),
                     f"numbers: {out}"]))


if __name__ == "__main__":
    exit_on_user_error(lambda: main(sys.argv[1:]))
