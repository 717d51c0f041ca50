"""``zoo bench``: latency and throughput of a bundle on every runtime, measured within one run.

Each (runtime, batch size) cell is warmed up, then timed call by call in
rounds; the rounds interleave the runtimes (their order rotating), so that a
noisy neighbour slows them all alike and the ratios stay honest. Latency
percentiles come from every timed call; rows/s is the batch size over the
median call. The inputs are the bundle's own held-out rows (tiled to the batch
size). A *baseline* (``zoo bench``'s torch eager, from the export side) is
timed the same way: a callable that gets the opened model and returns what to
time, or why it cannot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo import table
from zoo.errors import RuntimeFailure, ZooError, first_line
from zoo.exports.bundle.model import Deployed, open_model
from zoo.exports.bundle.testdata import load_test_data
from zoo.exports.runtimes import Runtimes, cannot_take, open_session, run, select
from zoo.tables import Frame
from zoo.tables.encoding import sample

DEFAULT_BATCH_SIZES = (1, 16, 1024, 65536)



@dataclass
class BenchRow:
    runtime: str
    batch_size: int
    latency_ms_p50: float
    latency_ms_p90: float
    latency_ms_p99: float
    rows_per_second: float
    calls: int
    device: str
    precision: str
    relative: float | None = None  # rows/s over the baseline's at the same batch size


@dataclass
class BenchReport:
    path: str
    baseline: str | None
    rows: list[BenchRow] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "baseline": self.baseline, "rows": [asdict(r) for r in self.rows],
                "skipped": self.skipped}

    def table(self) -> str:
        header = ("runtime", "device", "precision", "batch", "p50 ms", "p90 ms", "p99 ms", "rows/s",
                  f"vs {self.baseline}")
        rows = [(r.runtime, r.device, r.precision, f"{r.batch_size:,}", f"{r.latency_ms_p50:.4f}",
                 f"{r.latency_ms_p90:.4f}", f"{r.latency_ms_p99:.4f}", f"{r.rows_per_second:,.0f}",
                 table.number(r.relative, ".2f") + ("x" if r.relative is not None else ""))
                for r in self.rows]
        lines = [table.render(header, rows, rule=True)]
        lines += [f"{s['runtime']}: skipped: {s['reason']}" for s in self.skipped]
        return "\n".join(lines)


class Timed:
    """One runtime's session as the bench loop sees it: a name, how it ran, and a way to bind a batch."""

    def __init__(self, name: str, device: str, precision: str, bind: Callable, max_rows: int | None,
                 session=None):
        self.name, self.device, self.precision, self.bind, self.max_rows = name, device, precision, bind, max_rows
        self.session = session  # a runtime's session (checked once per batch before timing); None for torch


def bench(path: str | Path, *, runtimes: Runtimes = None,
          batch_sizes: tuple[int, ...] | list[int] = DEFAULT_BATCH_SIZES, repeats: int = 5,
          round_seconds: float = 0.05, baselines: dict[str, Callable[[Deployed], Timed | str]] | None = None,
          on_step: Callable[[], None] | None = None, variant: str | None = None) -> BenchReport:
    """Measure every selected runtime (default: every one that can run here) on the bundle at ``path``, and each
    of ``baselines``: by name, a callable given the opened model that returns a :class:`Timed`, or why it
    cannot run (reported as skipped)."""
    deployed = open_model(path, check=False, variant=variant)
    report = BenchReport(str(deployed.model_path), None)
    timed: list[Timed] = []
    for runtime, why_not in select(runtimes):
        why_not = why_not or cannot_take(runtime, deployed.features)
        if why_not is not None:
            report.skipped.append({"runtime": runtime.name, "reason": why_not})
            continue
        session = open_session(runtime, deployed.model_path)
        timed.append(Timed(runtime.name, session.device, session.precision, session.runner, runtime.max_rows,
                            session))
    for name, baseline in (baselines or {}).items():
        found = baseline(deployed)
        if isinstance(found, str):
            report.skipped.append({"runtime": name, "reason": found})
        else:
            timed.append(found)
    if not timed:
        raise ZooError("no runtime can run the model here (zoo runtimes says why)")
    report.baseline = timed[0].name
    rows = _rows(deployed)
    cells: dict[tuple[str, int], list[float]] = {}
    plan = []
    for batch in batch_sizes:
        x = rows[np.arange(batch) % len(rows)] if isinstance(rows, Frame) else \
            np.ascontiguousarray(np.resize(rows, (batch, rows.shape[1])), dtype=np.float32)
        for t in timed:
            if t.max_rows is not None and batch > t.max_rows:
                report.skipped.append({"runtime": t.name, "reason": f"batch {batch:,} is over its {t.max_rows:,} "
                                                                    "rows"})
                continue
            try:  # a plugin's runner may fail in any way: one line naming the runtime
                if t.session is not None:
                    run(t.session, x)  # what the runner times, checked once: every output, one row per row
                call = t.bind(x)
                if not callable(call):
                    raise TypeError(f"runner() returned {type(call).__name__}, not a callable")
                plan.append((t, batch, call, _calls_per_round(call, round_seconds)))
            except RuntimeFailure:
                raise
            except Exception as exc:
                raise RuntimeFailure(f"{t.name} failed at batch {batch:,}: {first_line(exc)}") from None
            cells[(t.name, batch)] = []
    for round_no in range(repeats):
        shift = round_no % max(1, len(timed))
        for t, batch, call, n in plan[shift:] + plan[:shift]:
            samples = cells[(t.name, batch)]
            clock = time.perf_counter
            try:
                for _ in range(n):
                    start = clock()
                    call()
                    samples.append(clock() - start)
            except Exception as exc:
                raise RuntimeFailure(f"{t.name} failed at batch {batch:,}: {first_line(exc)}") from None
            if on_step:
                on_step()
    for t, batch, _, _ in plan:
        latencies = np.asarray(cells[(t.name, batch)]) * 1e3
        p50, p90, p99 = (float(v) for v in np.percentile(latencies, [50, 90, 99]))
        report.rows.append(BenchRow(t.name, batch, p50, p90, p99, batch / (p50 / 1e3), len(latencies), t.device,
                                    t.precision))
    base = {r.batch_size: r.rows_per_second for r in report.rows if r.runtime == report.baseline}
    for row in report.rows:
        if row.batch_size in base:
            row.relative = row.rows_per_second / base[row.batch_size]
    order = {t.name: i for i, t in enumerate(timed)}
    report.rows.sort(key=lambda r: (r.batch_size, order[r.runtime]))
    return report


def _calls_per_round(call: Callable, round_seconds: float) -> int:
    """Warm up, then as many calls as fit in ``round_seconds`` (at least 1, at most 2,000)."""
    for _ in range(3):
        call()
    start = time.perf_counter()
    call()
    single = time.perf_counter() - start
    return int(min(2000, max(1, round_seconds / max(single, 1e-7))))


def _rows(deployed):
    """The bundle's held-out rows (its largest test data set of finite rows), or standard normal rows for a
    bare file."""
    sets = [x for _, x, _ in load_test_data(deployed)] if deployed.bundle is not None else []
    if deployed.features is not None:  # a table model: its held-out columns, else columns made up from its record
        return max(sets[:-1] or sets, key=len) if sets else sample(deployed.features, 256)
    finite = [x for x in sets if np.isfinite(x).all()]  # not the edge set, whose NaN rows are not typical
    if finite:
        return max(finite, key=len)
    return np.random.default_rng(0).normal(size=(256, deployed.input_size)).astype(np.float32)
