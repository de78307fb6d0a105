"""Progress for long work: a live bar on a terminal, plain periodic lines in CI and logs."""

from __future__ import annotations

import os
import sys
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def interactive() -> bool:
    return sys.stdout.isatty() and not os.environ.get("CI")


class Steps:
    """Counts steps from `start` to `total`; `update(step, **numbers)` shows rate, ETA and the numbers."""

    def __init__(self, what: str, total: int, start: int = 0, unit: str = "step", lines: int = 20):
        self.what, self.total, self.start, self.unit = what, total, start, unit
        self.every = max(1, (total - start) // lines)
        self.began = time.monotonic()
        self._bar = None
        if interactive():
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"),
                                 TimeRemainingColumn(), TextColumn("{task.fields[numbers]}"))
            self._task = self._bar.add_task(what, total=total, completed=start, rate="", numbers="")
            self._bar.start()

    def rate(self, step: int) -> float:
        return (step - self.start) / max(time.monotonic() - self.began, 1e-9)

    def update(self, step: int, **numbers: float) -> None:
        shown = "  ".join(f"{k} {v:.4g}" for k, v in numbers.items())
        rate = f"{self.rate(step):.2f} {self.unit}s/s"
        if self._bar is not None:
            self._bar.update(self._task, completed=step, rate=rate, numbers=shown)
        elif (step - self.start) % self.every == 0 or step == self.total:
            remaining = (self.total - step) / max(self.rate(step), 1e-9)
            print(f"{self.what}: {self.unit} {step}/{self.total}  {rate}  eta {remaining:.0f}s  {shown}",
                  flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
