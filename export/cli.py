"""epilogue-export's command line: `--help` and the checks of its options answer before TensorFlow loads,
and TensorFlow's start-up chatter stays off the terminal (`trainer.quiet`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from export import CONVERTERS
from infer.errors import UserError, exit_on_user_error
from trainer.extras import training_extra
from trainer.quiet import quiet

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def cli(
    run_dir: Annotated[Path, typer.Argument(help="A run directory made by epilogue-train.")],
    checkpoint: Annotated[str, typer.Option(help="best | latest | a step number.")] = "best",
    out: Annotated[Path | None, typer.Option(help="Output .onnx (default RUN_DIR/export/generator.onnx).")] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write a float16 variant for GPU providers.")] = False,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
    converter: Annotated[str, typer.Option(help="auto (native, tf2onnx for layers it lacks) | native | tf2onnx")]
    = "auto",
    verbose: Annotated[bool, typer.Option("--verbose", help="Show TensorFlow's own log lines too.")] = False,
) -> None:
    """Export a run's generator to ONNX, with its contract in the metadata and parity checked."""
    if out is not None and out.suffix != ".onnx":
        raise UserError(f"--out {out} should end in .onnx")
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.json); train one with epilogue-train")
    if converter not in CONVERTERS:
        raise UserError(f"--converter must be one of {', '.join(CONVERTERS)} (got {converter!r})")
    if checkpoint not in ("best", "latest") and not checkpoint.isdigit():
        raise UserError(f"--checkpoint must be best, latest or a step number (got {checkpoint!r})")
    with quiet(verbose), training_extra("epilogue-export"):
        import tensorflow as tf

        from export.onnx_export import export

        tf.config.list_logical_devices()  # the devices start here, under the quiet
    export(run_dir, checkpoint, out, fp16, opset, converter)


def main() -> None:
    exit_on_user_error(app)


if __name__ == "__main__":
    main()
