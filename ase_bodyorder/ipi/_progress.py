"""The progress bar of a run: i-PI's property and shares files, read as they grow."""

from __future__ import annotations

import math
from pathlib import Path

from tqdm import tqdm


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
    """Reads i-PI's properties and shares as they grow; shows them on a tqdm bar.

    The bar counts i-PI's steps (from the run's first step to ``total_steps``, with the
    time left) and carries the temperature, the conserved quantity and the latest
    body-order shares. It appears at the first step read, updates at most every 0.5 s
    on a terminal and every 5 s elsewhere (a log file), and not at all when not
    ``enabled``; the files are read either way (:attr:`step` is the run's last step).
    """

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
        self.bar = None

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
        """The state of the run beside the bar: temperature, conserved quantity, shares."""
        last = self.last
        parts = []
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
        """Read what i-PI wrote since; move the bar (``final``: show the last state and
        close the bar)."""
        self._read()
        if not self.enabled or self.step is None:
            return
        if self.bar is None:
            self.bar = tqdm(
                total=self.total,
                initial=self.step,
                desc="step",
                unit="step",
                file=self.stream,
                mininterval=0.5 if self.tty else 5.0,
            )
        self.bar.set_postfix_str(self.line(), refresh=False)
        self.bar.update(self.step - self.bar.n)
        if final:
            self.bar.close()
            self.bar = None
