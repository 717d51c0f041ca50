"""The one comparison of a model's outputs against a reference, used by parity and by ``zoo verify``.

Each output has a :class:`Rule`, written into the manifest so that anyone can
re-run the comparison with the bundle's test data and numpy alone:

- ``probabilities``: ``|got - want| <= atol + rtol * |want|``, element-wise;
- ``logits``: the same with ``|want|`` replaced by the largest ``|want|`` of the
  row (softmax ignores a shift, and a logit of 1e5 carries 1e-2 of float32
  rounding in absolute terms);
- ``label``: equal, except on *ties*: rows where the reference probabilities
  sit within ``atol + rtol * p`` of the decision boundary (the top two classes,
  or the threshold) may go either way, since no fp32 runtime can promise which.
  Ties are counted and reported; anything else that differs is a failure.

A row whose input holds a NaN or an infinity has no meaningful scores (runtimes
differ there, and may): only its ``label`` is compared, and it must be -1.
Elsewhere NaN matches NaN and an infinity the same infinity. Besides the
reference, a result must agree with itself: its ``label`` is the decision rule
applied to its own ``probabilities``, and -1 on a row whose input or
probabilities are not finite.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from zoo.policies import numeric
from zoo.tables import Frame

Kind = Literal["close", "close-to-row-scale", "equal-except-ties"]
#: What became of a runtime's check, in parity and in zoo verify.
Status = Literal["passed", "failed", "skipped"]

_FORMULAS = {
    "close": "|got - want| <= atol + rtol * |want|, element-wise, on rows whose input is finite",
    "close-to-row-scale": "|got - want| <= atol + rtol * max(|want| over the row), on rows whose input is finite",
    "equal-except-ties": ("got == want, except rows whose reference probabilities lie within "
                          "atol + rtol * p of the decision boundary (ties, counted)"),
}


@dataclass(frozen=True)
class Rule:
    """How one output is compared with its reference."""

    output: str
    kind: Kind
    atol: float
    rtol: float

    @property
    def formula(self) -> str:
        return _FORMULAS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "formula": self.formula}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rule:
        if data.get("kind") not in _FORMULAS:
            raise ValueError(f"unknown comparison kind {data.get('kind')!r}")
        return cls(str(data["output"]), data["kind"], float(data["atol"]), float(data["rtol"]))


def tolerance(rules: list[Rule]) -> tuple[float, float]:
    """(atol, rtol) on probabilities: what reports show as the tolerance."""
    rule = next((r for r in rules if r.output == "probabilities"), rules[0])
    return rule.atol, rule.rtol


def rules_for(outputs: list[str] | tuple[str, ...], atol: float, rtol: float) -> list[Rule]:
    kinds = {"logits": "close-to-row-scale", "probabilities": "close", "label": "equal-except-ties"}
    return [Rule(name, kinds.get(name, "close"), atol, rtol) for name in outputs]


def decide(probabilities: np.ndarray, decision: str, threshold: float | None, x: np.ndarray | None = None
           ) -> np.ndarray:
    """The decision rule in numpy: argmax over classes, or ``p >= threshold`` on the positive class;
    -1 on a row whose probabilities (or input ``x``, when given) hold a NaN or an infinity."""
    p = np.asarray(probabilities)
    if decision == "argmax":
        label = numeric.argmax_decision(p)
    else:
        label = numeric.threshold_decision(p, 0.5 if threshold is None else threshold)
    valid = np.isfinite(p.reshape(len(p), -1)).all(axis=1)
    if x is not None:
        valid &= scorable(x)
    return np.where(valid, label, -1).astype(np.int64)


def scorable(x) -> np.ndarray:
    """Rows that have a class: every feature finite (and their float32 sum too, as the graph checks it). In a table
    model's columns a NaN is a gap, which the graph fills: only an infinite number leaves a row without a class."""
    if isinstance(x, Frame):
        numbers = [np.nan_to_num(v.astype(np.float32), nan=0.0, posinf=np.inf, neginf=-np.inf)
                   for v in x.columns.values() if v.dtype != object]
        x = np.concatenate(numbers, axis=1) if numbers else np.zeros((len(x), 1), np.float32)
    x = np.asarray(x)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.isfinite(x).all(axis=1) & np.isfinite(x.astype(np.float32).sum(axis=1, dtype=np.float32))


def ties(probabilities: np.ndarray, decision: str, threshold: float | None, atol: float, rtol: float) -> np.ndarray:
    """Rows whose decision is within the probability tolerance of going the other way."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(len(probabilities), -1)
    if decision == "argmax":
        if p.shape[1] < 2:
            return np.zeros(len(p), dtype=bool)
        top2 = np.sort(p, axis=1)[:, -2:]
        return top2[:, 1] - top2[:, 0] <= atol + rtol * top2[:, 1]
    t = 0.5 if threshold is None else threshold
    return np.abs(p[:, 0] - t) <= atol + rtol * np.abs(p[:, 0])


@dataclass
class Comparison:
    """What comparing one result with its reference found."""

    rows: int = 0
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    label_agreement: float | None = None
    ties: int = 0
    problems: list[str] = field(default_factory=list)
    errors: dict[str, float] = field(default_factory=dict)  # max |got - want| of each numeric output
    failed: list[str] = field(default_factory=list)  # the outputs that broke their rule

    @property
    def passed(self) -> bool:
        return not self.problems

    def merge(self, other: Comparison, prefix: str = "") -> None:
        """Fold ``other`` (another batch of the same result) into this one."""
        agree = (self.label_agreement or 0.0) * self.rows + (other.label_agreement or 0.0) * other.rows
        self.rows += other.rows
        self.label_agreement = agree / self.rows if self.rows else None
        self.max_abs_error = _max(self.max_abs_error, other.max_abs_error)
        self.max_rel_error = _max(self.max_rel_error, other.max_rel_error)
        self.ties += other.ties
        self.problems += [prefix + p for p in other.problems]
        for name, error in other.errors.items():
            self.errors[name] = max(self.errors.get(name, error), error)
        self.failed += [name for name in other.failed if name not in self.failed]


def shown_error(max_abs_error: float | None, errors: dict[str, float], failed: list[str]) -> str:
    """A report's "max abs err" cell: the error of the output that failed (named), else of probabilities."""
    broken = next((name for name in failed if name in errors), None)
    if broken is not None and broken != "probabilities":
        return f"{errors[broken]:.2e} ({broken})"
    return "-" if max_abs_error is None else f"{max_abs_error:.2e}"


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def compare(got: dict[str, np.ndarray], want: dict[str, np.ndarray], rules: list[Rule], *,
            decision: str, threshold: float | None, x: np.ndarray | None = None) -> Comparison:
    """Compare ``got`` with ``want`` output by output under ``rules`` (outputs ``want`` lacks are skipped);
    ``x`` is the input, for the self-consistency of ``label`` on rows that are not finite."""
    result = Comparison(rows=len(next(iter(want.values()))) if want else 0)
    prob_rule = next((r for r in rules if r.output == "probabilities"), None)
    scored = None if x is None else scorable(x)  # rows whose scores are compared
    for rule in rules:
        if rule.output not in want:
            continue
        if rule.output not in got:
            result.problems.append(f"no output {rule.output!r}")
            continue
        have, ref = np.asarray(got[rule.output]), np.asarray(want[rule.output])
        if have.shape != ref.shape:
            result.problems.append(f"{rule.output}: shape {have.shape}, expected {ref.shape}")
            continue
        if rule.kind == "equal-except-ties":
            same = have == ref
            excused = np.zeros(len(ref), dtype=bool)
            if "probabilities" in want and prob_rule is not None:
                excused = ties(want["probabilities"], decision, threshold, prob_rule.atol, prob_rule.rtol)
            result.label_agreement = float(same.mean()) if len(same) else 1.0
            result.ties = int((~same & excused).sum())
            wrong = int((~same & ~excused).sum())
            if wrong:
                result.problems.append(f"{wrong} of {len(ref)} {rule.output}s differ")
            continue
        have64, ref64 = have.astype(np.float64), ref.astype(np.float64)
        if scored is not None and len(scored) == len(ref64):
            have64, ref64 = have64[scored], ref64[scored]
        same = (have64 == ref64) | (np.isnan(have64) & np.isnan(ref64))  # inf == inf, NaN "==" NaN
        with np.errstate(invalid="ignore"):
            diff = np.where(same, 0.0, np.nan_to_num(np.abs(have64 - ref64), nan=np.inf))  # NaN vs a number: inf
        scale = np.where(np.isfinite(ref64), np.abs(ref64), 0.0)
        if rule.kind == "close-to-row-scale" and ref.ndim == 2:
            scale = scale.max(axis=1, keepdims=True)
        if diff.size:
            result.errors[rule.output] = float(diff.max())
        if rule.output == "probabilities" and diff.size:
            result.max_abs_error = float(diff.max())
            result.max_rel_error = float((diff / np.maximum(scale, rule.atol or 1e-12)).max())
        if diff.size and not np.all(diff <= rule.atol + rule.rtol * scale):
            result.problems.append(f"{rule.output} differ by up to {float(diff.max()):.2e}")
            result.failed.append(rule.output)
    if "label" in got and "probabilities" in got:
        own = decide(np.asarray(got["probabilities"]), decision, threshold, x)
        if np.asarray(got["label"]).shape == own.shape and not np.array_equal(np.asarray(got["label"]), own):
            result.problems.append(f"label is not the {decision} of its own probabilities")
    return result
