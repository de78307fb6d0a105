"""epilogue-train's command line: everything a user can get wrong is answered before TensorFlow loads.

`--help`, `--dry-run` and the checks of the videos, the options and the run directory need no TensorFlow,
so they answer at once and a mistake is exactly one line. Then TensorFlow loads with its start-up
chatter dropped (`trainer.quiet`), the distribution strategy is made first (multi-worker training needs it
before anything lists devices), and the effective config is the first thing a run prints.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from infer.config import FINAL_SPLITS, Config, resolve
from infer.errors import UserError, exit_on_user_error
from trainer import cluster, ending, rundir
from trainer.extras import training_extra
from trainer.plan import VideoPlan, plan
from trainer.quiet import quiet

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _size(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        height, width = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise UserError(f"--size {value!r} is not HEIGHTxWIDTH, e.g. 256x256") from None
    return height, width


def _splits(value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise UserError(f"--splits {value!r} is not three fractions, e.g. 0.7,0.15,0.15") from None


@app.command()
def cli(
    videos: Annotated[list[Path], typer.Argument(help="Video files to learn from.")],
    run_dir: Annotated[Path | None, typer.Option(help="Run directory (default runs/PRESET).")] = None,
    preset: Annotated[str, typer.Option(help="tiny | demo | quality | full")] = "full",
    config_file: Annotated[Path | None, typer.Option("--config", help="TOML file: [data] [model] [train].")] = None,
    steps: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option(help="Global batch, over all replicas.")] = None,
    stride: Annotated[int | None, typer.Option(help="Source frames from input to target.")] = None,
    hop: Annotated[int | None, typer.Option(help="Source frames between window starts (default: stride).")] = None,
    size: Annotated[str | None, typer.Option(help="Frame size HEIGHTxWIDTH.")] = None,
    fit: Annotated[str | None, typer.Option(help="squash | crop")] = None,
    splits: Annotated[str | None, typer.Option(help="train,val,test fractions in time.")] = None,
    final: Annotated[bool, typer.Option("--final", help="Train on every frame up to the film's end, holding none "
                                        "out (splits 1,0,0): the model that makes the continuation, once a "
                                        "held-out run has chosen the settings.")] = False,
    end: Annotated[str | None, typer.Option(help="The film's last frame, a frame number (600) or seconds (25.5s): "
                                            "frames after it (credits, a fade) are not trained on, and the "
                                            "rollout starts from it.")] = None,
    jitter: Annotated[float | None, typer.Option(help="Upscale windows by this much, then crop back (0: the "
                                                 "film's own pixels).")] = None,
    mirror: Annotated[bool | None, typer.Option("--mirror/--no-mirror", help="Mirror windows (reverses motion).")]
    = None,
    context: Annotated[int | None, typer.Option(help="Frames the generator sees, `stride` apart.")] = None,
    head: Annotated[str | None, typer.Option(help="direct | residual (a change added to the newest frame) | mask (a "
                                             "drawn frame, and a mask that keeps the newest frame's pixels) | warp "
                                             "(each pixel keeps the newest frame, moves it by a flow, or draws)")]
    = None,
    keep_init: Annotated[float | None, typer.Option(help="The mask or warp head's share of the newest frame kept "
                                                    "before training (0.5: no lean).")] = None,
    upsample: Annotated[str | None, typer.Option(help="transpose | resize")] = None,
    noise: Annotated[float | None, typer.Option(help="Max std of conditioning noise on inputs, [-1, 1] units.")]
    = None,
    unroll: Annotated[int | None, typer.Option(help="Train on up to this many of its own steps.")] = None,
    unroll_grad: Annotated[bool | None, typer.Option("--unroll-grad/--no-unroll-grad", help="Backpropagate "
                                                     "through the unrolled steps.")] = None,
    sequence_disc: Annotated[int | None, typer.Option(help="Judge this many consecutive generated steps against the "
                                                      "real ones with a second discriminator (0: none).")] = None,
    sequence_weight: Annotated[float | None, typer.Option(help="Weight of the sequence discriminator's loss.")]
    = None,
    flow_weight: Annotated[float | None, typer.Option(help="Weight of the warp head's flow against DIS flow "
                                                      "between the real frames (0: none).")] = None,
    flow_floor: Annotated[float | None, typer.Option(help="With --flow-weight: the flow target counts only where it "
                                                     "moves at least this many pixels, across or down (0: "
                                                     "everywhere).")] = None,
    warp_weight: Annotated[float | None, typer.Option(help="Weight of the warp loss: the newest frame warped by "
                                                      "the warp head's flow against the target (0: none).")] = None,
    l1_weight: Annotated[float | None, typer.Option(help="Weight of the L1 loss against the GAN loss.")] = None,
    gradient_weight: Annotated[float | None, typer.Option(help="Weight of a gradient-difference (edge) loss.")]
    = None,
    best_by: Annotated[str | None, typer.Option(help="What best/ keeps: l1 (lowest one-step validation L1) | "
                                                "continuation (lowest continuation score)")] = None,
    precision: Annotated[str | None, typer.Option(help="auto | float32 | mixed_float16 | mixed_bfloat16")] = None,
    strategy: Annotated[str | None, typer.Option(help="auto | default | mirrored | multiworker")] = None,
    xla: Annotated[bool | None, typer.Option("--xla/--no-xla", help="jit-compile the step.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    deterministic: Annotated[bool | None, typer.Option("--deterministic", help="Repeatable CPU runs.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the window plan as JSON and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show TensorFlow's own log lines too.")] = False,
    local_workers: Annotated[int, typer.Option(help="Start this many workers on this machine (multi-worker "
                                               "training on loopback ports).")] = 0,
) -> None:
    """Learn how the videos move: pix2pix on windows of frames (the last frames -> the frame `stride` later)."""
    frame = _size(size)
    if final and splits is not None:
        raise UserError(f"--final means --splits 1,0,0 (every frame trained on); give --final or --splits {splits}, "
                        "not both")
    config = resolve(preset, config_file, {
        "data": {"videos": tuple(str(v) for v in videos), "stride": stride, "hop": hop, "fit": fit,
                 "height": frame and frame[0], "width": frame and frame[1], "end": end,
                 "splits": FINAL_SPLITS if final else _splits(splits),
                 "jitter": jitter, "mirror": mirror},
        "model": {"context": context, "head": head, "keep_init": keep_init, "upsample": upsample},
        "train": {"steps": steps, "batch_size": batch_size, "precision": precision, "strategy": strategy,
                  "xla": xla, "seed": seed, "deterministic": deterministic, "noise": noise, "unroll": unroll,
                  "unroll_grad": unroll_grad, "sequence_disc": sequence_disc, "sequence_weight": sequence_weight,
                  "flow_weight": flow_weight, "flow_floor": flow_floor, "warp_weight": warp_weight,
                  "l1_weight": l1_weight, "gradient_weight": gradient_weight, "best_by": best_by},
    })
    plans = plan(config)
    for planned in plans:
        ending.check(planned)
    if dry_run:
        print(json.dumps({"config": config.to_dict(), "videos": [p.summary() for p in plans]}, indent=2))
        return
    _start(config, plans, run_dir or Path("runs") / preset, local_workers, verbose)


def _start(config: Config, plans: list[VideoPlan], run_dir: Path, local_workers: int, verbose: bool) -> None:
    """Train the config in `run_dir`: here, or in a cluster of workers on this machine."""
    rundir.check_fits(run_dir, config, plans)
    if local_workers:
        raise SystemExit(_local_cluster(config, local_workers, run_dir))
    try:
        with quiet(verbose):
            with training_extra("epilogue-train"):
                from trainer import train
            strategy = train.pick_strategy(config.train.strategy)
            train.train(config, run_dir, strategy, plans)
    except (cluster.PeerLost, cluster.ClusterStopped) as stopped:
        # Every checkpoint is written. TensorFlow's own shutdown would wait on the other workers (8-60 s
        # measured) and then print their heartbeats failing.
        if isinstance(stopped, cluster.PeerLost):
            print(f"error: {stopped}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(stopped.code)


def _local_cluster(config: Config, workers: int, run_dir: Path) -> int:
    """The same command, once per worker, each with the cluster's TF_CONFIG."""
    if workers < 1 or config.train.strategy not in ("auto", "multiworker"):
        raise UserError(f"--local-workers {workers} needs a count >= 1 and --strategy auto or multiworker")
    config.per_replica_batch(workers)  # said once here, before any worker starts
    code = cluster.launch(_without(sys.argv[1:], "--local-workers"), workers)
    if code == 0:
        print(f"local cluster: all {workers} workers done\nrun: {run_dir}\nnext: epilogue-export {run_dir}")
    elif code == cluster.RESTART:
        print(f"local cluster: stopped (exit {code}); resume: run the same command again")
    else:
        print(f"local cluster: a worker failed (exit {code}); its lines above say why")
    return code


def _without(argv: list[str], option: str) -> list[str]:
    """`argv` less `option VALUE` and `option=VALUE`."""
    kept, skip = [], False
    for arg in argv:
        if not skip and arg != option and not arg.startswith(f"{option}="):
            kept.append(arg)
        skip = arg == option
    return kept


def main() -> None:
    exit_on_user_error(app)


if __name__ == "__main__":
    main()
