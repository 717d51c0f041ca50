"""``zoo verify``: re-check an exported model on the target machine, without torch.

A bundle is checked against its manifest (sha256, ONNX checker), then every
``test_data_set_N`` (the reference outputs recorded at export) is replayed on
every selected runtime (default: every registered one that can run here) under
the comparison rules the manifest records. A runtime that reports a precision
other than the bundle's fails. A bare ``.onnx`` from zoo has no test data: it
is checked for self-consistency on generated inputs (finite probabilities in
[0, 1], rows summing to 1 under softmax, ``label`` equal to the decision rule).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from zoo import table
from zoo.errors import VerifyError, ZooError
from zoo.exports.bundle.model import Deployed, decide, open_model
from zoo.exports.bundle.rules import Comparison, Status, compare, rules_for, shown_error, tolerance
from zoo.exports.bundle.testdata import load_test_data, read_test_data
from zoo.exports.runtimes import Runtimes, cannot_take, open_session, precision_problem, run, select
from zoo.tables.encoding import sample


@dataclass
class Replay:
    runtime: str
    data: str | None  # the test data set; None when the runtime did not get that far
    rows: int | None = None
    device: str | None = None
    precision: str | None = None
    status: Status = "skipped"
    reason: str | None = None  # why it was skipped or failed
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    label_agreement: float | None = None
    ties: int = 0
    model: str = "fp32"  # or the variant's name
    errors: dict[str, float] = field(default_factory=dict)  # max abs error of each numeric output
    failed_outputs: list[str] = field(default_factory=list)


@dataclass
class VerifyReport:
    path: str
    checks: list[tuple[str, str]]
    replays: list[Replay] = field(default_factory=list)
    atol: float = 0.0
    rtol: float = 0.0

    @property
    def verified(self) -> bool:
        ran = [r for r in self.replays if r.status != "skipped"]
        return bool(ran) and all(r.status == "passed" for r in ran)

    def failure(self) -> str:
        """Why the model did not verify, in one line: the first replay that failed and how many did."""
        failed = [r for r in self.replays if r.status == "failed"]
        if not failed:
            return "no runtime could run it here (zoo runtimes says why)"
        first = failed[0]
        where = ", ".join(w for w in ((f"variant {first.model}" if first.model != "fp32" else None), first.runtime,
                                      first.data) if w)
        more = f" (and {len(failed) - 1} more replay{'s' if len(failed) > 2 else ''})" if len(failed) > 1 else ""
        return f"{where}: {first.reason}{more}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "verified": self.verified, "atol": self.atol, "rtol": self.rtol,
                "checks": [{"check": c, "detail": d} for c, d in self.checks],
                "replays": [asdict(r) for r in self.replays]}

    def table(self) -> str:
        variants = any(r.model != "fp32" for r in self.replays)
        header = (("model",) if variants else ()) + (
            "runtime", "device", "precision", "test data", "rows", "max abs err", "labels", "result")
        rows = [((r.model,) if variants else ()) + (r.runtime, r.device, r.precision, r.data, r.rows,
                                                    shown_error(r.max_abs_error, r.errors, r.failed_outputs),
                 table.percent(r.label_agreement),
                 (r.status.upper() if r.status != "skipped" else "skipped")
                 + (f" ({r.ties} ties)" if r.ties and r.status == "passed" else "")
                 + (f": {r.reason}" if r.reason else "")) for r in self.replays]
        return "\n".join([f"{check}: {detail}" for check, detail in self.checks]
                         + [table.render(header, rows, rule=True)])


def verify(path: str | Path, *, atol: float | None = None, rtol: float | None = None,
           runtimes: Runtimes = None, variant: str | None = None) -> VerifyReport:
    """Verify a bundle directory or an ``.onnx`` file exported by zoo on the selected runtimes.

    A bundle's variants are replayed too, each under its own rules (``variant``: only that one; ``fp32``:
    only ``model.onnx``).
    """
    deployed = open_model(path)
    selected = select(runtimes)
    manifest = deployed.manifest
    rules = manifest.rules if manifest is not None else rules_for(deployed.output_names, 1e-5, 1e-5)
    targets = []
    if variant in (None, "fp32"):
        targets.append(("fp32", deployed, rules))
    if variant != "fp32" and manifest is not None:
        for name in (list(manifest.variants) if variant is None else [variant]):
            target = open_model(path, variant=name)  # an unknown name: one line naming the variants there are
            targets.append((name, target, manifest.variants[name].compare))
    elif variant not in (None, "fp32"):
        raise VerifyError(f"{path} is not a bundle: it has no variant {variant!r}")
    report = None
    for name, target, target_rules in targets:
        if atol is not None or rtol is not None:
            target_rules = [replace(r, atol=r.atol if atol is None else atol, rtol=r.rtol if rtol is None else rtol)
                            for r in target_rules]
        if report is None:
            found_atol, found_rtol = tolerance(target_rules)
            report = VerifyReport(str(target.model_path), list(target.checks), atol=found_atol, rtol=found_rtol)
        else:
            report.checks.extend((f"{check} ({name})", detail) for check, detail in target.checks)
        data_sets = load_test_data(target) if target.bundle is not None else None
        # The runtime must compute in fp32 whatever the weights: a variant's lowering is in its graph.
        claimed = manifest.precision if manifest is not None else "fp32"
        lowered = (manifest.variants[name].precision,) if name != "fp32" else ()
        for runtime, why_not in selected:
            why_not = why_not or cannot_take(runtime, target.features)
            if why_not is not None:
                report.replays.append(Replay(runtime.name, None, reason=why_not, model=name))
                continue
            report.replays.extend(replace(r, model=name) for r in _replay_on(runtime, target, data_sets, target_rules,
                                                                              claimed, lowered))
        if data_sets is None:
            report.checks.append(("test data", "none (a bare .onnx): checked self-consistency on generated inputs"))
    return report


def replay_variant(path: Path, folder: Path, names: list[str], rules, runtimes: Runtimes,
                   precision: str) -> list[Replay]:
    """A new variant's own test data (in ``folder``) replayed on the selected runtimes, before it is recorded."""
    deployed = open_model(path, check=False)
    data_sets = read_test_data(folder, names, deployed)
    replays = []
    for runtime, why_not in select(runtimes):
        if why_not is None and cannot_take(runtime, deployed.features) is None:
            replays.extend(_replay_on(runtime, deployed, data_sets, rules, "fp32", (precision,)))
    return replays


def _replay_on(runtime, deployed: Deployed, data_sets, rules, claimed: str,
               lowered_in_graph: tuple[str, ...] = ()) -> list[Replay]:
    try:
        session = open_session(runtime, deployed.model_path)
    except ZooError as exc:
        return [Replay(runtime.name, None, status="failed", reason=str(exc))]
    problem = precision_problem(session, claimed, lowered_in_graph)
    if problem:
        return [Replay(runtime.name, None, device=session.device, precision=session.precision, status="failed",
                       reason=problem)]
    if data_sets is None:
        return [_self_check(deployed, session, run)]
    replays = []
    for name, x, expected in data_sets:
        replay = Replay(runtime.name, name, rows=len(x), device=session.device, precision=session.precision)
        try:
            got = run(session, x)
        except ZooError as exc:
            replay.status, replay.reason = "failed", str(exc)
            replays.append(replay)
            continue
        found: Comparison = compare(got, expected, rules, decision=deployed.decision, threshold=deployed.threshold,
                                    x=x)
        replay.max_abs_error, replay.max_rel_error = found.max_abs_error, found.max_rel_error
        replay.label_agreement, replay.ties = found.label_agreement, found.ties
        replay.errors, replay.failed_outputs = found.errors, found.failed
        replay.status = "passed" if found.passed else "failed"
        replay.reason = "; ".join(found.problems) or None
        replays.append(replay)
    return replays


def _generated(deployed: Deployed):
    """Inputs for a bare .onnx: rows near zero, rows far out, a row of zeros; a table model's columns, made up from
    its record (gaps, every category, one never seen)."""
    if deployed.features is not None:
        return sample(deployed.features, 21)
    rng = np.random.default_rng(0)
    width = deployed.input_size
    return np.concatenate([rng.normal(0, 1, (16, width)), rng.normal(0, 1e4, (4, width)),
                           np.zeros((1, width))]).astype(np.float32)


def _self_check(deployed: Deployed, session, run) -> Replay:
    x = _generated(deployed)
    replay = Replay(session.runtime, "generated (no test data)", rows=len(x), device=session.device,
                    precision=session.precision)
    try:
        got = run(session, x)
    except ZooError as exc:
        replay.status, replay.reason = "failed", str(exc)
        return replay
    p, labels = np.asarray(got["probabilities"]), np.asarray(got["label"])
    problems = []
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        problems.append("probabilities are not finite values in [0, 1]")
    if deployed.head == "softmax" and not np.allclose(p.sum(axis=1), 1.0, atol=1e-5):
        problems.append("softmax rows do not sum to 1")
    if not np.array_equal(labels, decide(deployed, p, x)):
        problems.append(f"label is not the {deployed.decision} of probabilities")
    replay.status = "failed" if problems else "passed"
    replay.reason = "; ".join(problems) or None
    return replay
