"""Progress reporting for long steps: numbered steps on a terminal, silence when piped."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["Steps"]


class Steps:
    """Print ``[2/5] Loading network ... 3.1 s`` lines to a terminal; nothing when piped.

    Parameters
    ----------
    total
        Number of steps expected (for the ``[i/total]`` counter).
    stream
        Where to write (default stderr, so stdout stays clean for results).
    enabled
        Force on/off; default: on only when ``stream`` is a terminal.
    """

    def __init__(self, total: int, *, stream: TextIO | None = None, enabled: bool | None = None):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done = 0

    @contextmanager
    def step(self, label: str) -> Iterator[Callable[[str], None]]:
        """A step; the yielded function adds a detail (e.g. a count) to its closing line."""
        self.done += 1
        details: list[str] = []
        start = time.perf_counter()
        if self.enabled:
            self.stream.write(f"[{self.done}/{self.total}] {label} ...")
            self.stream.flush()
        yield details.append
        if self.enabled:
            extra = f" {'; '.join(details)}" if details else ""
            self.stream.write(f"{extra} ({time.perf_counter() - start:.1f} s)\n")
            self.stream.flush()
