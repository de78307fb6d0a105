"""Runs a command's module as `python -m MODULE ARGS` would, then says whether TensorFlow got loaded: the command
line's help, dry runs and mistakes, and the runner, must answer without it. Tests run it by path.

    python tests/programs/tensorflow_loaded.py MODULE [ARGS ...]      last line: tensorflow loaded: True|False
"""

import runpy
import sys


def main(module: str, args: list[str]) -> None:
    """The report comes last, after whatever the command printed, even when it exits (a mistake's 2, Ctrl-C's 130:
    its exit status is kept)."""
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__")
    finally:
        print("tensorflow loaded:", "tensorflow" in sys.modules, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
