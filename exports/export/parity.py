"""Parity: does every runtime compute, from the written file, what the trained model computes?

The reference is :mod:`zoo.exports.export.oracle` (the trained module on inputs
standardized in numpy, the policy's numpy head and decision), never the export
wrapper. Each registered runtime that can run here opens the written
``model.onnx`` and is compared with it under :mod:`zoo.exports.bundle.rules`'s rules
on the held-out rows at batch 1, an odd batch and all of them, and on the edge
inputs. Its labels on the held-out rows are scored against the *true* labels:
that accuracy must be the trainer's, or the file is not the model that was
trained. A runtime that reports a precision other than the bundle's (fp32)
fails, whatever its numbers. Runtimes that cannot run here are skipped with
their reason; they never count as a pass, and at least one must run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo import table
from zoo.errors import ZooError
from zoo.exports.bundle.rules import Comparison, Rule, Status, compare, shown_error, tolerance
from zoo.exports.runtimes import Runtimes, cannot_take, open_session, precision_problem, run, select, version_of
from zoo.specs import FP32
from zoo.tables import Frame

ODD_BATCH = 7


@dataclass
class Cell:
    """One runtime's result."""

    runtime: str
    status: Status = "skipped"
    reason: str | None = None  # why it was skipped or failed
    version: str | None = None
    device: str | None = None
    precision: str | None = None
    batches: list[int] = field(default_factory=list)
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    label_agreement: float | None = None
    ties: int = 0
    accuracy: float | None = None
    errors: dict[str, float] = field(default_factory=dict)  # max abs error of each numeric output
    failed_outputs: list[str] = field(default_factory=list)


@dataclass
class ParityReport:
    atol: float
    rtol: float
    rows: int
    cells: list[Cell]
    trainer_accuracy: float | None = None
    reference: str = ""

    @property
    def passed(self) -> bool:
        executed = [c for c in self.cells if c.status != "skipped"]
        return bool(executed) and all(c.status == "passed" for c in executed)

    def failures(self) -> str:
        failed = [c for c in self.cells if c.status == "failed"]
        return "; ".join(f"{c.runtime}: {c.reason}" for c in failed) or "no runtime could run the model here"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParityReport:
        return cls(data["atol"], data["rtol"], data["rows"], [Cell(**c) for c in data["cells"]],
                   data.get("trainer_accuracy"), data.get("reference", ""))

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "atol": self.atol, "rtol": self.rtol, "rows": self.rows,
                "trainer_accuracy": self.trainer_accuracy, "reference": self.reference,
                "cells": [asdict(c) for c in self.cells]}

    def table(self) -> str:
        header = ("runtime", "device", "precision", "batches", "max abs err", "labels", "accuracy", "result")
        rows = [(c.runtime, c.device, c.precision, ",".join(map(str, c.batches)) or None,
                 shown_error(c.max_abs_error, c.errors, c.failed_outputs), table.percent(c.label_agreement),
                 table.number(c.accuracy, ".4f"), _result(c)) for c in self.cells]
        trained = "" if self.trainer_accuracy is None else f"; accuracy on the true labels = the trainer's " \
                                                           f"{self.trainer_accuracy:.4f}"
        criterion = (f"|onnx - reference| <= {self.atol:g} + {self.rtol:g} * |reference| and labels equal (ties "
                     f"excused), on {self.rows} held-out rows and the edge inputs{trained}; reference: "
                     f"{self.reference}")
        verdict = "passed" if self.passed else "NOT passed by every runtime above"
        return table.render(header, rows, rule=True) + f"\n{verdict}: {criterion}"


def _result(cell: Cell) -> str:
    text = cell.status.upper() if cell.status != "skipped" else "skipped"
    if cell.ties and cell.status == "passed":
        text += f" ({cell.ties} ties)"
    return text + (f": {cell.reason}" if cell.reason else "")


def batch_sizes(rows: int) -> list[int]:
    return sorted({1, min(ODD_BATCH, rows), rows})


def check(model_path: Path, *, X: np.ndarray, reference: dict[str, np.ndarray], y_true: np.ndarray,
          edge: np.ndarray | None = None, edge_reference: dict[str, np.ndarray] | None = None,
          rules: list[Rule], decision: str, threshold: float | None, trainer_accuracy: float | None,
          runtimes: Runtimes = None, reference_name: str = "", features=None) -> ParityReport:
    """Every selected runtime (default: every registered one) on ``model_path`` against ``reference``.

    ``X`` and ``edge`` are a table model's columns (:class:`zoo.tables.Frame`) when ``features`` is given.
    """
    atol, rtol = tolerance(rules)
    cells = []
    for runtime, why_not in select(runtimes):
        why_not = why_not or cannot_take(runtime, features)
        if why_not is not None:
            cells.append(Cell(runtime.name, reason=why_not))
            continue
        cells.append(_run_cell(runtime, model_path, X, reference, y_true, edge, edge_reference, rules, decision,
                               threshold, trainer_accuracy))
    return ParityReport(atol, rtol, len(X), cells, trainer_accuracy, reference_name)


def _run_cell(runtime, model_path, X, reference, y_true, edge, edge_reference, rules, decision, threshold,
              trainer_accuracy) -> Cell:

    cell = Cell(runtime.name, version=version_of(runtime))
    try:
        session = open_session(runtime, model_path)
    except ZooError as exc:
        cell.status, cell.reason = "failed", str(exc)
        return cell
    cell.device, cell.precision = session.device, session.precision
    problem = precision_problem(session, FP32)
    if problem:
        cell.status, cell.reason = "failed", problem
        return cell
    names = [r.output for r in rules]
    total = Comparison()
    inputs = [(f"batch {b}", X[:b], {k: v[:b] for k, v in reference.items()}) for b in batch_sizes(len(X))]
    if edge is not None and edge_reference is not None:
        inputs.append(("edge inputs", edge, edge_reference))
    full = None
    try:
        for what, x, want in inputs:
            got = run(session, x if isinstance(x, Frame) else np.ascontiguousarray(x, dtype=np.float32), names)
            if what != "edge inputs":
                cell.batches.append(len(x))
            if len(x) == len(X) and what != "edge inputs":
                full = got
            total.merge(compare(got, want, rules, decision=decision, threshold=threshold, x=x), prefix=f"{what}: ")
    except ZooError as exc:
        total.problems.append(str(exc))
    cell.max_abs_error, cell.max_rel_error = total.max_abs_error, total.max_rel_error
    cell.label_agreement, cell.ties = total.label_agreement, total.ties
    cell.errors, cell.failed_outputs = total.errors, total.failed
    if full is not None and "label" in full:
        cell.accuracy = float((np.asarray(full["label"]) == np.asarray(y_true)).mean())
        if trainer_accuracy is not None and abs(cell.accuracy - trainer_accuracy) > total.ties / len(X) + 1e-9:
            total.problems.append(f"accuracy on the true labels is {cell.accuracy:.4f} from the file, "
                                  f"{trainer_accuracy:.4f} from the trainer")
    cell.status = "failed" if total.problems else "passed"
    cell.reason = "; ".join(dict.fromkeys(total.problems)) or None
    return cell
