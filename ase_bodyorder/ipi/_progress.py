"""The progress line of a run: i-PI's property and shares files, read as they grow."""

from __future__ import annotations

import math
import time
from pathlib import Path


class Tail:
    """New complete lines of a growing file."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = ""

    def lines(self) -> list[str]:
        try:
            with open(self.path) as handle:
                handle.seek(self.offset)
                text = handle.read()
                self.offset = handle.tell()
        except FileNotFoundError:
            return []
        text = self.partial + text
        *complete, self.partial = text.split("\n")
        return complete


class Progress:
    """Reads i-PI's properties and shares as they grow; prints one status line."""

    def __init__(self, run, stream, enabled: bool):
        self.properties = Tail(run.properties)
        self.shares = Tail(run.extras["bo_shares"][0])
        self.columns = list(run.property_columns)
        self.last: dict[str, float] = {}
        self.last_shares: list[float] = []
        self.total = run.total_steps
        self.stream = stream
        self.enabled = enabled
        self.tty = enabled and hasattr(stream, "isatty") and stream.isatty()
        self.printed_step = None
        self.printed_at = 0.0

    def _read(self) -> None:
        for line in self.properties.lines():
            if line.strip() and not line.startswith("#"):
                values = line.split()
                if len(values) == len(self.columns):
                    self.last = dict(zip(self.columns, map(float, values), strict=True))
        for line in self.shares.lines():
            if line.strip() and "#" not in line:
                try:
                    self.last_shares = [float(x) for x in line.split()]
                except ValueError:
                    continue

    @property
    def step(self) -> int | None:
        return int(self.last["step"]) if "step" in self.last else None

    def line(self) -> str:
        last = self.last
        parts = [f"step {self.step}/{self.total}"]
        if "temperature" in last:
            parts.append(f"T {last['temperature']:.0f} K")
        if "conserved" in last:
            parts.append(f"E_cons {last['conserved']:.5f} eV")
        shares = " ".join(
            f"{n}:{s:+.3f}" for n, s in enumerate(self.last_shares, start=1) if math.isfinite(s)
        )
        if shares:
            parts.append(f"shares {shares}")
        return "  ".join(parts)

    def update(self, final: bool = False) -> None:
        self._read()
        if not self.enabled or self.step is None:
            return
        now = time.monotonic()
        if self.tty:
            if final or now - self.printed_at > 0.5:
                end = "\n" if final else ""
                print(f"\r{self.line()}\033[K", end=end, file=self.stream, flush=True)
                self.printed_at = now
        elif self.step != self.printed_step and (final or now - self.printed_at > 5.0):
            print(self.line(), file=self.stream, flush=True)
            self.printed_step, self.printed_at = self.step, now
