"""``zoo verify``: re-check an exported model on the target machine, without torch.

A bundle is checked against its manifest (sha256, ONNX checker), then every
``test_data_set_N`` (torch's outputs, recorded at export) is replayed through
onnxruntime on every execution provider that is really usable here, within the
manifest's tolerances. A bare ``.onnx`` from zoo has no test data: it is checked
for self-consistency on generated inputs (finite probabilities in [0, 1], rows
summing to 1 under softmax, ``label`` equal to the decision rule).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import VerifyError
from zoo.exports.runtime import Deployed, bundle_file, decide, open_model, run, usable_providers


@dataclass
class Replay:
    provider: str
    data: str
    rows: int | None = None
    status: str = "skipped"  # passed | failed | skipped
    reason: str = ""
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    label_agreement: float | None = None


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

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "verified": self.verified, "atol": self.atol, "rtol": self.rtol,
                "checks": [{"check": c, "detail": d} for c, d in self.checks],
                "replays": [asdict(r) for r in self.replays]}

    def table(self) -> str:
        lines = [f"{check}: {detail}" for check, detail in self.checks]
        header = ("provider", "test data", "rows", "max abs err", "max rel err", "labels", "result")
        rows = [header] + [(
            r.provider, r.data, "-" if r.rows is None else str(r.rows),
            _fmt(r.max_abs_error), _fmt(r.max_rel_error),
            "-" if r.label_agreement is None else f"{r.label_agreement:.2%}",
            r.status.upper() if r.status != "skipped" else "skipped",
        ) for r in self.replays]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        for i, row in enumerate(rows):
            reason = self.replays[i - 1].reason if i else ""
            lines.append("  ".join(v.ljust(w) for v, w in zip(row[:-1], widths)) + "  " + row[-1]
                         + (f": {reason}" if reason else ""))
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def verify(path: str | Path, *, atol: float | None = None, rtol: float | None = None) -> VerifyReport:
    """Verify a bundle directory or an ``.onnx`` file exported by zoo."""
    deployed = open_model(path)
    tolerance = (deployed.manifest or {}).get("tolerance", {})
    atol = float(tolerance.get("atol", 1e-5)) if atol is None else atol
    rtol = float(tolerance.get("rtol", 1e-5)) if rtol is None else rtol
    report = VerifyReport(str(deployed.model_path), list(deployed.checks), atol=atol, rtol=rtol)
    data_sets = _load_test_data(deployed) if deployed.bundle is not None else None
    for provider, sess, why_not in usable_providers(deployed.model_path):
        if sess is None:
            report.replays.append(Replay(provider, "-", reason=why_not))
            continue
        if data_sets is None:
            report.replays.append(_self_check(deployed, sess, provider))
        else:
            for name, x, expected in data_sets:
                report.replays.append(_replay(deployed, sess, provider, name, x, expected, atol, rtol))
    if data_sets is None:
        report.checks.append(("test data", "none (a bare .onnx): checked self-consistency on generated inputs"))
    return report


def _load_test_data(deployed: Deployed):
    import numpy as np
    from onnx import TensorProto, numpy_helper

    bundle, manifest = deployed.bundle, deployed.manifest
    names = manifest.get("files", {}).get("test_data") or []
    if not isinstance(names, list) or not names:
        raise VerifyError(f"{bundle}/manifest.json lists no test data sets")
    sets = []
    for name in names:
        folder = bundle_file(bundle, name, "a test data set")
        tensors = []
        for file in ["input_0.pb"] + [f"output_{k}.pb" for k in range(len(deployed.output_names))]:
            path = folder / file
            try:
                proto = TensorProto()
                proto.ParseFromString(path.read_bytes())
                tensors.append(numpy_helper.to_array(proto))
            except FileNotFoundError:
                raise VerifyError(f"{path} is missing (the manifest lists {name})") from None
            except Exception as exc:
                raise VerifyError(f"{path} is not an ONNX tensor ({type(exc).__name__})") from None
        x = tensors[0]
        if x.ndim != 2 or x.shape[1] != deployed.input_size or x.dtype != np.float32:
            raise VerifyError(f"{folder.name}/input_0.pb holds {x.dtype} {x.shape} but the model takes "
                              f"float32 (batch, {deployed.input_size})")
        for out_name, out in zip(deployed.output_names, tensors[1:]):
            if out.shape[:1] != x.shape[:1]:
                raise VerifyError(f"{folder.name}: output {out_name!r} has {out.shape[0] if out.ndim else 0} rows "
                                  f"for {x.shape[0]} input rows")
        sets.append((folder.name, x, dict(zip(deployed.output_names, tensors[1:]))))
    return sets


def _replay(deployed, sess, provider, name, x, expected, atol, rtol) -> Replay:
    import numpy as np

    replay = Replay(provider, name, rows=len(x))
    try:
        got = dict(zip(deployed.output_names, run(sess, None, {deployed.input_name: x})))
    except VerifyError as exc:
        replay.status, replay.reason = "failed", str(exc)
        return replay
    problems, worst_abs, worst_rel = [], 0.0, 0.0
    for out_name, want in expected.items():
        have = np.asarray(got[out_name])
        if have.shape != want.shape:
            problems.append(f"{out_name}: shape {have.shape}, expected {want.shape}")
            continue
        if want.dtype.kind in "iu":
            continue  # labels: compared below
        diff = np.abs(have.astype(np.float64) - want)
        if out_name == "probabilities":
            worst_abs = float(diff.max()) if diff.size else 0.0
            worst_rel = float((diff / np.maximum(np.abs(want), atol)).max()) if diff.size else 0.0
        # Logits are compared to the scale of their row: softmax ignores a shift, and at
        # extreme inputs float32 rounding of a 1e5 logit is 1e-2 in absolute terms.
        scale = np.abs(want).max(axis=1, keepdims=True) if out_name == "logits" and want.ndim == 2 else np.abs(want)
        if not np.all(diff <= atol + rtol * scale):
            problems.append(f"{out_name} differs by up to {diff.max():.2e}")
    labels = np.asarray(got["label"])
    if labels.shape == expected["label"].shape:
        agree = float((labels == expected["label"]).mean()) if len(labels) else 1.0
        replay.label_agreement = agree
        if agree < 1.0:
            problems.append(f"{int((labels != expected['label']).sum())} labels differ")
    if not np.array_equal(labels, decide(deployed, got["probabilities"])):
        problems.append(f"label is not the {deployed.decision} of probabilities")
    replay.max_abs_error, replay.max_rel_error = worst_abs, worst_rel
    replay.status = "failed" if problems else "passed"
    replay.reason = "; ".join(problems)
    return replay


def _self_check(deployed, sess, provider) -> Replay:
    import numpy as np

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (16, deployed.input_size)),
                        rng.normal(0, 1e4, (4, deployed.input_size)),
                        np.zeros((1, deployed.input_size))]).astype(np.float32)
    replay = Replay(provider, "generated (no test data)", rows=len(x))
    try:
        got = dict(zip(deployed.output_names, run(sess, None, {deployed.input_name: x})))
    except VerifyError as exc:
        replay.status, replay.reason = "failed", str(exc)
        return replay
    p, labels = np.asarray(got["probabilities"]), np.asarray(got["label"])
    problems = []
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        problems.append("probabilities are not finite values in [0, 1]")
    if deployed.head == "softmax" and not np.allclose(p.sum(axis=1), 1.0, atol=1e-5):
        problems.append("softmax rows do not sum to 1")
    if not np.array_equal(labels, decide(deployed, p)):
        problems.append(f"label is not the {deployed.decision} of probabilities")
    replay.status = "failed" if problems else "passed"
    replay.reason = "; ".join(problems)
    return replay
