"""Where a model's one-step error goes: on pixels that move and on pixels that stay, against persistence's; how much
the mask or warp head keeps on each; and whether the warp head's flow points the way things moved.

    python -m bench.moves RUN_DIR [--checkpoint best|latest|STEP] [--windows 20] [--split val|train] [--fit-flow]

The yardstick judges whole frames. On the street the warp head's first step is worse than persistence's, and a
whole-frame L1 can't say whether people move the wrong way or the still street is resampled: this splits it.
Windows are spread evenly over the run's held-out frames (its validation split; `--split train`: the frames it
trained on, to tell what training asks for from what fails to carry over). A pixel moves when the
truth differs from the newest frame by more than 0.2 (in [-1, 1], averaged over channels). A window's true shift
is the whole-pixel horizontal shift (within 4) of the newest frame that best matches the truth on its moving
pixels; the flow is backward (the newest frame is sampled at x + dx), so content moving right by s pixels reads
dx = -s. A flow's direction is read at the moving pixels the shift carries (where the newest frame shifted by it
matches the truth): there a flow that follows the motion reads -shift. The other moving pixels are mostly
background a mover uncovered, which no flow from the newest frame holds; a median over all moving pixels mixes
them in and reads a following flow as nearly still.

`--fit-flow` asks what a flow that sees the answer does: each window's true shift, flows per pixel fitted to the
truth by gradient descent from still and from that shift, and OpenCV's DIS flow between the newest frame and the
truth, read the same way. A loss that teaches the warp head's flow by warping is this fit, learned: where the fit
from still does not follow the movers, that loss would not teach the head to either. DIS flow is the target the
issue proposed for teaching it directly: where DIS does not follow them, that target would not either. Writes
RUN_DIR/moves-<checkpoint>.json (moves-<checkpoint>-train.json for --split train).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from export.onnx_export import find_checkpoint, load_generator
from infer.config import Config
from infer.errors import UserError, exit_on_user_error, write_text_atomic
from infer.frames import model_from_levels
from trainer import flows, model, store
from trainer.plan import plan
from trainer.rundir import read_config
from trainer.train import warp_error

FIT_STEPS, FIT_RATE = 300, 0.05  # Adam steps and rate of the fitted flow: enough to travel 15 pixels
MOVES = 0.2  # a pixel moves when the truth differs from the newest frame by more than this, in [-1, 1]
SHIFTS = range(-4, 5)
SOME = 10  # carried pixels a window needs before its shift and a flow's median there are read
CARRIED = 0.1  # a moving pixel is carried by a shift when the shifted newest frame is this close to the truth
DIS_SCALES = (1, flows.SCALE)  # DIS flow on the frames as stored, and as the flow targets see them


Windows = tuple[list[np.ndarray], np.ndarray]  # the context (one [n, h, w, 3] array per frame), the truth


def stored_windows(run_dir: Path, config: Config, count: int, split: str = "val") -> Windows:
    """Up to `count` of the run's own windows of `split`, spread evenly: the context (oldest first) and the frame
    `stride` after the newest, in [-1, 1]. They come from the trainer's frame store, reused where the run kept it
    and decoded once into the run directory where it did not (the whole split, however few windows are asked)."""
    stored = store.open_store(config, plan(config), split, run_dir / "frames")
    if not stored.count:
        hint = ("a --final run holds no frame out: probe a run trained with a validation split, or give --split "
                "train") if split == "val" else "its film is shorter than one window"
        raise UserError(f"run {run_dir} has no {split} windows ({hint})")
    rows = stored.rows[np.linspace(0, stored.count - 1, min(count, stored.count)).round().astype(int)]
    frames, context = np.load(stored.path, mmap_mode="r"), config.model.context
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


def split(generator: keras.Model, contexts: list[np.ndarray], truth: np.ndarray, head: str,
          fit_flow: bool = False) -> dict:
    """The one-step L1 of the model and of persistence on moving and still pixels; the head's mean weights
    there; for the warp head, each window's true shift beside its flow's median at the carried pixels; with
    `fit_flow`, the same for a flow fitted to the truth."""
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
    shifted, carried = shifts(newest, truth, moving)
    report["carried_share"] = float(carried.sum() / max(moving.sum(), 1))
    if head == "warp":
        report["shift_and_flow"] = shift_and_flow(shifted, carried, inner[1])
    if fit_flow and shifted:
        report["fitted"] = fitted(newest, truth, moving, carried, shifted)
    return report


def shifts(newest: np.ndarray, truth: np.ndarray, moving: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """(window, true shift) of each window whose shift carries at least `SOME` of its moving pixels, and the
    carried pixels of every window (none where the window is left out)."""
    shifted, carried = [], np.zeros_like(moving)
    for i in range(len(truth)):
        if moving[i].sum() < SOME:  # too few to carry
            continue
        shift = true_shift(newest[i], truth[i], moving[i])
        carries = moving[i] & (np.abs(np.roll(newest[i], shift, axis=1) - truth[i]).mean(-1) < CARRIED)
        if carries.sum() >= SOME:
            shifted.append((i, shift))
            carried[i] = carries
    return shifted, carried


def shift_and_flow(shifted: list[tuple[int, int]], carried: np.ndarray, flow: np.ndarray) -> list[tuple[int, float]]:
    """(true shift, the flow's median dx at the carried pixels) of each of the `shifted` windows."""
    return [(shift, float(np.median(flow[i][..., 0][carried[i]]))) for i, shift in shifted]


def fitted(newest: np.ndarray, truth: np.ndarray, moving: np.ndarray, carried: np.ndarray,
           shifted: list[tuple[int, int]]) -> dict:
    """What flows that see the answer do on the moving pixels of the `shifted` windows: each window's true shift
    as a flow, and flows fitted to the truth from still (as the warp head starts) and from that shift. The L1 each
    leaves (persistence's there too, to compare) and where each one's median at the carried pixels points. If the
    fit from the shift stays there and leaves less, following the movers is the better flow and descent from still
    misses it; if it wanders off too, a flow that borrows colour from neighbours explains more. DIS flow, read the
    same way, says whether a target from it would point the way movers go."""
    some = [i for i, _ in shifted]
    newest, truth, moving, carried = newest[some], truth[some], moving[some], carried[some]
    shifted = [(j, shift) for j, (_, shift) in enumerate(shifted)]  # the same windows, numbered among themselves
    follow = np.zeros((*newest.shape[:3], 2), np.float32)
    follow[..., 0] = -np.array([shift for _, shift in shifted], np.float32)[:, None, None]

    def moving_l1(flow: np.ndarray) -> float:
        return float(np.abs(np.asarray(model.warp(newest, flow)) - truth).mean(-1)[moving].mean())

    report = {"persistence_l1": moving_l1(np.zeros_like(follow)), "shift_l1": moving_l1(follow)}
    found = {"from_still": fitted_flow(newest, truth, np.zeros_like(follow)),
             "from_shift": fitted_flow(newest, truth, follow),
             **{f"dis_{scale}x": flows.dis_flow(newest, truth, scale) for scale in DIS_SCALES}}
    for name, flow in found.items():
        report[name] = {"moving_l1": moving_l1(flow), "shift_and_flow": shift_and_flow(shifted, carried, flow)}
    return report


def fitted_flow(newest: np.ndarray, truth: np.ndarray, start: np.ndarray) -> np.ndarray:
    """A flow per pixel that carries `newest` onto `truth` as well as gradient descent from `start` finds under the
    trainer's warp loss (`--warp-weight`: L1 of the warp at three sizes, plus a little smoothness)."""
    frame, target = tf.constant(newest), tf.constant(truth)
    flow = tf.Variable(start)
    optimizer = keras.optimizers.Adam(FIT_RATE)

    @tf.function
    def step() -> None:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(warp_error(frame, tf.convert_to_tensor(flow), target))
        optimizer.apply([tape.gradient(loss, flow)], [flow])

    for _ in range(FIT_STEPS):
        step()
    return flow.numpy()


def summary(report: dict) -> list[str]:
    lines = [f"{report['windows']} windows; {report['moving_share']:.1%} of pixels move, {report['carried_share']:.0%} "
             "of those carried by their window's shift"]
    for region in ("moving", "still"):
        r = report[region]
        if r["model_l1"] is None:
            continue
        weights = "  ".join(f"{name} {w:.2f}" for name, w in r.get("weights", {}).items())
        lines.append(f"  {region:6s}: L1 {r['model_l1']:.4f} (persistence {r['persistence_l1']:.4f}, "
                     f"{r['model_l1'] / max(r['persistence_l1'], 1e-9):.2f}x)  {weights}")
    if "shift_and_flow" in report:
        lines.append("  flow's median dx at carried pixels, by the way they moved (following the motion reads "
                     "negative for right, positive for left): " + by_direction(report["shift_and_flow"]))
    if fits := report.get("fitted"):
        def ratio(l1: float) -> str:
            return f"{l1 / max(fits['persistence_l1'], 1e-9):.2f}x"

        lines.append(f"  flows that see the answer, L1 on moving pixels against persistence's: the true shift "
                     f"{ratio(fits['shift_l1'])}")
        for name in ("from_still", "from_shift", *(f"dis_{scale}x" for scale in DIS_SCALES)):
            fit = fits[name]
            label = f"DIS at {name[4:]} size" if name.startswith("dis") else f"fitted {name.replace('_', ' ')}"
            lines.append(f"    {label}: {ratio(fit['moving_l1'])}; median dx " + by_direction(fit["shift_and_flow"]))
    return lines


def by_direction(pairs: list[tuple[int, float]]) -> str:
    """The mean flow median (and the mean true shift) of the windows that moved right, and of those that moved
    left."""
    sides = [(side, [pair for pair in pairs if np.sign(pair[0]) == sign]) for side, sign in (("right", 1),
                                                                                            ("left", -1))]
    return "; ".join(f"{side} {np.mean([dx for _, dx in chosen]):+.2f} (shift "
                     f"{np.mean([shift for shift, _ in chosen]):+.1f}, {len(chosen)} windows)"
                     for side, chosen in sides if chosen) or "no window moved sideways"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checkpoint", default="best", help="best, latest or a step number.")
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--split", choices=("val", "train"), default="val",
                        help="The held-out windows, or those the run trained on.")
    parser.add_argument("--fit-flow", action="store_true", help="Also fit flows to each window's truth (from still "
                        "and from its true shift): do they follow the movers, and what is left?")
    args = parser.parse_args(argv)
    config = read_config(args.run_dir)
    generator, step = load_generator(args.run_dir, find_checkpoint(args.run_dir, args.checkpoint))
    report = {"step": step, "split": args.split,
              **split(generator, *stored_windows(args.run_dir, config, args.windows, args.split), config.model.head,
                      args.fit_flow)}
    out = args.run_dir / f"moves-{args.checkpoint}{'-train' if args.split == 'train' else ''}.json"
    write_text_atomic(out, json.dumps(report, indent=2))
    print("\n".join([f"{args.run_dir} at step {step} ({config.model.head} head), {args.split} windows:",
                     *summary(report), f"numbers: {out}"]))


if __name__ == "__main__":
    exit_on_user_error(lambda: main(sys.argv[1:]))
