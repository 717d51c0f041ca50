"""A variant measured against fp32 on the held-out rows, guarded, timed, and recorded with its replay rules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from zoo import table as render
from zoo.errors import ZooError
from zoo.exports.bundle.manifest import Variant
from zoo.exports.bundle.rules import rules_for, ties
from zoo.exports.deploy.bench import bench
from zoo.exports.runtimes import DEFAULT_RUNTIME, Runtimes, select
from zoo.tables import Frame

#: Replay tolerance (atol, rtol) of a variant's own test data, by precision and output: runtimes round lowered
#: arithmetic differently (the ONNX reference accumulates an fp16 matrix product in fp16; onnxruntime and
#: OpenVINO in fp32; int8 kernels requantize differently). Measured across the three on the held-out rows of
#: the built-in models: up to 2.3e-2 on a binary logit in fp16, 2.8e-2 on an int8 probability. The logit's
#: error follows the size of the sums behind it, not its own size, hence its larger absolute term.
TOLERANCE = {"fp16": {"logits": (1e-1, 2e-2), "probabilities": (2e-2, 2e-2), "label": (2e-2, 2e-2)},
             "int8": {"logits": (5e-1, 5e-2), "probabilities": (5e-2, 5e-2), "label": (5e-2, 5e-2)}}
BENCH_BATCHES = (1, 65536)


class VariantRefused(ZooError):
    """A variant that the guard refused: nothing was written for it."""


SCORED = ["probabilities", "label"]


def measure(base: dict, got: dict, y, threshold: float | None = None) -> dict[str, Any]:
    """Accuracy on the true labels and its delta to fp32, label agreement, exact ties, max abs probability
    difference, from the fp32 model's and the variant's outputs (``SCORED``) on the same held-out rows.

    A *tie* is a row whose top probabilities are exactly equal (or exactly on the threshold) in either
    model: ArgMax's first-index rule, not the model, picked its label. Ties are counted apart and never as
    agreement, whichever label the rule happened to pick. ``threshold``: a sigmoid head's decision.
    """


    decision = "argmax" if np.asarray(base["probabilities"]).reshape(len(y), -1).shape[1] > 1 else "threshold"
    tied = ties(base["probabilities"], decision, threshold, 0.0, 0.0) | \
        ties(got["probabilities"], decision, threshold, 0.0, 0.0)
    agree = (got["label"] == base["label"]) & ~tied
    accuracy, fp32_accuracy = float(np.mean(got["label"] == y)), float(np.mean(base["label"] == y))
    return {"rows": int(len(y)), "accuracy": accuracy, "fp32_accuracy": fp32_accuracy,
            "accuracy_delta_points": round(100 * (accuracy - fp32_accuracy), 4),
            "agreement_percent": round(100 * float(np.mean(agree)), 4), "ties": int(tied.sum()),
            "max_abs_probability_difference": float(np.max(np.abs(got["probabilities"] - base["probabilities"])))}


def guard(name: str, found: dict[str, Any], max_accuracy_drop: float, min_agreement: float) -> None:
    drop = -found["accuracy_delta_points"]
    if drop > max_accuracy_drop:
        raise VariantRefused(f"variant {name} refused: it loses {drop:.2f} accuracy points on {found['rows']} held-out "
                             f"rows (more than --max-accuracy-drop {max_accuracy_drop:g}); nothing written for it")
    if found["agreement_percent"] < min_agreement:
        raise VariantRefused(f"variant {name} refused: it agrees with fp32 on {found['agreement_percent']:.2f} % of "
                             f"{found['rows']} held-out labels (below --min-agreement {min_agreement:g}); nothing "
                             "written for it")


#: Runtimes left out of a variant's speed figures unless named: the ONNX reference evaluates in numpy, whose
#: fp16 matrix product has no BLAS (63 s for one fp16 variant at 65,536 rows, against 0.6 s on onnxruntime).
NOT_TIMED = {"onnx-reference": "the ONNX specification's evaluator in numpy, not a deployment runtime"}


def speeds(path: Path, runtimes: Runtimes) -> dict[str, dict[str, float]]:
    """rows/s at batch 1 and 65,536 on each runtime that can run here (``zoo bench``'s measurement), but those
    in ``NOT_TIMED`` unless named."""
    timed = [c for c in select(runtimes) if c.why_not is None and (c.named or c.runtime.name not in NOT_TIMED)]
    report = bench(path, runtimes=timed, batch_sizes=BENCH_BATCHES, repeats=2)
    out: dict[str, dict[str, float]] = {}
    for row in report.rows:
        if row.rows_per_second is not None:
            out.setdefault(row.runtime, {})[str(row.batch_size)] = round(row.rows_per_second, 1)
    return out


# -- test data and the manifest record -------------------------------------------------------------


def test_inputs(data_sets, features=None, normalization=None) -> list:
    """The fp32 test inputs a variant replays: every set but the +-1e4-std rows, whose overflow in lowered
    precision each runtime handles its own way; the NaN and infinite rows stay (label -1 everywhere). A table
    model's columns: its numbers, standardized with ``normalization`` (the encoded columns' mean and scale), are
    held to the same bound."""

    inputs = []
    for _, x, _ in data_sets:
        numbers = _standardized_numbers(x, features, normalization) if isinstance(x, Frame) else x
        finite_scale = np.all(np.abs(np.nan_to_num(numbers, nan=0.0, posinf=0.0, neginf=0.0)) < 1e3, axis=1)
        keep = finite_scale | ~np.all(np.isfinite(numbers), axis=1)
        if keep.any():
            inputs.append(x[keep])
    return inputs


def _standardized_numbers(x: Frame, features, normalization) -> np.ndarray:
    """A frame's numeric columns as standard deviations from the training mean (a gap is 0: it becomes the
    median); one column of zeros when it has none."""
    mean, scale = (np.asarray(v, np.float64) for v in normalization)
    columns = []
    for feature, at in zip(features.columns, features.offsets):
        if feature.kind == "numeric":
            values = x.columns[feature.name].reshape(-1).astype(np.float64)
            columns.append(np.where(np.isnan(values), 0.0, (values - mean[at]) * scale[at]))
    return np.stack(columns, axis=1) if columns else np.zeros((len(x), 1))


def record(name: str, precision: str, made: dict[str, Any], found: dict[str, Any], *, file: str, sha: str,
           size: int, fp32_size: int, rules, test_data: list[str], rows_per_second, fp32_rows_per_second) -> Variant:
    return Variant(file=file, sha256=sha, precision=precision, method=made, **found,
                   size_bytes=size, size_ratio=round(size / fp32_size, 4),
                   rows_per_second=rows_per_second, fp32_rows_per_second=fp32_rows_per_second,
                   not_timed={k: v for k, v in NOT_TIMED.items() if k not in rows_per_second},
                   compare=list(rules), test_data=test_data)


def rules_for_variant(names: list[str], precision: str):


    tolerances = TOLERANCE[precision]
    return [replace(rule, atol=tolerances[rule.output][0], rtol=tolerances[rule.output][1])
            if rule.output in tolerances else rule for rule in rules_for(names, *tolerances["probabilities"])]


def table(variants: dict[str, Variant]) -> str:

    rows = []
    for name, v in variants.items():
        ort = v.rows_per_second.get(DEFAULT_RUNTIME, {})
        base = v.fp32_rows_per_second.get(DEFAULT_RUNTIME, {})
        speed = " / ".join(f"{ort[b] / base[b]:.2f}x" if b in ort and b in base and base[b] else "-"
                           for b in ("1", "65536"))
        rows.append((name, v.precision, f"{v.size_ratio:.2f}x", f"{v.accuracy:.4f}",
                     f"{v.accuracy_delta_points:+.2f}", f"{v.agreement_percent:.2f} %", render.number(v.ties, "d"),
                     f"{v.max_abs_probability_difference:.2e}", speed))
    return render.render(("variant", "weights", "size vs fp32", "accuracy", "delta (points)", "agreement", "ties",
                          "max abs prob. diff", f"rows/s vs fp32 (batch 1 / 65,536, {DEFAULT_RUNTIME})"), rows)

