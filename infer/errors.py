"""One-line errors for users: what went wrong, where, and what to do. Never a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code `code`."""

    code = 2


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def exit_on_user_error(command: Callable[[], object]) -> None:
    """Run a CLI entry point, turning UserError into one line on stderr and its exit code (2 unless it says)."""
    try:
        command()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(error.code)
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside the loops that finish cleanly
        print("interrupted", file=sys.stderr, flush=True)
        sys.exit(130)


def atomic_path(final: Path) -> Path:
    """A temporary sibling of `final` with the same suffix, so writers can infer the format.

    Write there, then `os.replace` it onto `final`: a crash never leaves half a file under the final name.
    """
    return final.with_name(f".{final.stem}.partial-{os.getpid()}{final.suffix}")


def write_text_atomic(path: Path, text: str) -> None:
    tmp = atomic_path(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def check_writable_dir(directory: Path, what: str) -> None:
    """Fail before any long work when `directory` can't hold our output."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UserError(f"{what} {directory} is not writable ({error.strerror}); choose another path") from None
