"""The one autoregressive loop: each output becomes the newest context frame of the next step.

Training previews, export parity and the tests roll a model with it; the runner's Stepper does the same on
device buffers (a ring of context + 1 buffers, no copies), and is checked against it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence

import numpy as np


def roll(step: Callable[[list[np.ndarray]], np.ndarray], context: Sequence[np.ndarray], steps: int
         ) -> Iterator[np.ndarray]:
    """Yields `steps` outputs; step k sees the last len(context) frames, oldest first (outputs of k-1, k-2...)."""
    window = deque(context, maxlen=len(context))
    for _ in range(steps):
        frame = step(list(window))
        window.append(frame)
        yield frame
