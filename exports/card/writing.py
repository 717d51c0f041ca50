"""The card written into a bundle (or elsewhere) atomically, under the bundle's lock."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo import files
from zoo.exports.card import FILE, require_matplotlib
from zoo.exports.card.evidence import gather
from zoo.exports.card.figures import figures
from zoo.exports.card.page import render
from zoo.exports.runtimes import Runtimes


@dataclass
class Written:
    path: Path
    size: int
    seconds: float
    timings: dict[str, float]
    verified: bool = True  # the manifest says so and every replay here passed

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "bytes": self.size, "seconds": round(self.seconds, 3),
                "timings": {k: round(v, 3) for k, v in self.timings.items()}}

    def describe(self) -> str:
        return f"{self.path} ({self.size / 1024:.0f} KiB, made in {self.seconds:.1f} s)"


def compose(bundle: Path, shown_as: str | None = None, runtimes: Runtimes = None
            ) -> tuple[str, dict[str, float], bool]:
    """The card's HTML, how long its parts took, and whether it says the bundle verified here."""
    require_matplotlib()
    evidence = gather(bundle, shown_as, runtimes)
    started = time.perf_counter()
    made = figures(evidence)
    drawn = time.perf_counter()
    page = render(evidence, made)
    return (page, evidence.seconds | {"figures": drawn - started, "page": time.perf_counter() - drawn},
            evidence.verified)


def write(bundle: Path, output: Path | None = None, *, shown_as: str | None = None,
          becomes: Path | None = None, runtimes: Runtimes = None) -> Written:
    """Make the card of ``bundle`` and write it atomically to ``output`` (default ``bundle/report.html``).

    Written into the bundle, the card holds the bundle's lock (no export swaps it meanwhile), unless the
    bundle is a staging directory that ``becomes`` that path when swapped in: the caller holds that lock, and
    the returned path is the card's there. ``runtimes``: the replay's (default: every one that can run here).
    """
    started = time.perf_counter()
    bundle = Path(bundle)
    target = Path(output) if output is not None else bundle / FILE
    with contextlib.nullcontext() if output is not None or becomes is not None else files.locked(bundle):
        page, timings, verified = compose(bundle, shown_as, runtimes)
        data = page.encode("utf-8")
        files.atomic_write(target, lambda handle: handle.write(data))
    final = Path(becomes) / FILE if becomes is not None and output is None else target
    return Written(final, len(data), time.perf_counter() - started, timings, verified)
