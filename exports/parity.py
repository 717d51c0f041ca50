"""Parity: does onnxruntime compute the probabilities and labels that torch does?

Each *cell* compares one torch device with one onnxruntime execution provider
on the same raw inputs at batch sizes 1, an odd size and the full set:
probabilities within ``atol + rtol * |torch|``, labels 100 % equal, and the
ONNX ``label`` equal to the policy's decision rule applied to the ONNX
``probabilities``. CPU always runs. CUDA runs when torch sees a GPU and
onnxruntime offers CUDAExecutionProvider, and passes only if the session really
runs on it (onnxruntime falls back to the CPU silently); otherwise the cell
says "skipped" and why, and never counts as a pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from zoo.exports.defaults import DEFAULT_ATOL, DEFAULT_RTOL  # noqa: F401 (re-exported)

ODD_BATCH = 7


@dataclass
class Cell:
    name: str
    reference: str
    runtime: str
    status: str = "skipped"  # passed | failed | skipped
    reason: str = ""
    batches: list[int] = field(default_factory=list)
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    label_agreement: float | None = None
    providers: list[str] = field(default_factory=list)


@dataclass
class ParityReport:
    atol: float
    rtol: float
    rows: int
    cells: list[Cell]

    @property
    def passed(self) -> bool:
        executed = [c for c in self.cells if c.status != "skipped"]
        return bool(executed) and all(c.status == "passed" for c in executed)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParityReport:
        return cls(data["atol"], data["rtol"], data["rows"], [Cell(**c) for c in data["cells"]])

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "atol": self.atol, "rtol": self.rtol, "rows": self.rows,
                "cells": [asdict(c) for c in self.cells]}

    def table(self) -> str:
        header = ("check", "reference", "onnxruntime", "batches", "max abs err", "max rel err", "labels", "result")
        rows = [header]
        for c in self.cells:
            result = c.status.upper() if c.status != "skipped" else "skipped"
            rows.append((
                c.name, c.reference, c.runtime,
                ",".join(map(str, c.batches)) or "-",
                _fmt(c.max_abs_error), _fmt(c.max_rel_error),
                "-" if c.label_agreement is None else f"{c.label_agreement:.2%}",
                result + (f": {c.reason}" if c.reason else ""),
            ))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
        lines.append(f"pass: |onnx - torch| <= {self.atol:g} + {self.rtol:g} * |torch| and labels 100 % "
                     f"equal, on {self.rows} held-out rows (rel err = |onnx - torch| / max(|torch|, atol))")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def batch_sizes(rows: int) -> list[int]:
    return sorted({1, min(ODD_BATCH, rows), rows})


def check(onnx_path, wrapper, policy, X: np.ndarray, *, atol: float = DEFAULT_ATOL,
          rtol: float = DEFAULT_RTOL) -> ParityReport:
    """Compare ``wrapper`` (torch) with the ONNX file on raw inputs ``X``, on every device available."""
    import numpy as np

    X = np.ascontiguousarray(X, dtype=np.float32)
    cells = [_run_cell("cpu", "cpu", "CPUExecutionProvider", onnx_path, wrapper, policy, X, atol, rtol)]
    reason = cuda_unavailable()
    if reason:
        cells.append(Cell("cuda", "torch cuda", "CUDAExecutionProvider", reason=reason))
    else:
        cells.append(_run_cell("cuda", "cuda", "CUDAExecutionProvider", onnx_path, wrapper, policy, X, atol, rtol))
    ort_reason = ort_cuda_unavailable()
    if ort_reason:
        cells.append(Cell("ort cpu-cuda", "onnxruntime cpu", "CUDAExecutionProvider", reason=ort_reason))
    else:
        cells.append(_cpu_vs_cuda(onnx_path, policy, X, atol, rtol))
    return ParityReport(atol, rtol, len(X), cells)


def _cpu_vs_cuda(onnx_path, policy, X, atol, rtol) -> Cell:
    """onnxruntime against itself: CPUExecutionProvider as the reference for CUDAExecutionProvider.

    CPU and CUDA kernels round differently; labels flipping between them on a deployment
    machine would be the worst kind of surprise, so this is measured, never assumed.
    """
    import numpy as np

    from zoo.exports.runtime import run_sliced, session

    cell = Cell("ort cpu-cuda", "onnxruntime cpu", "CUDAExecutionProvider")
    try:
        cpu, cuda = session(onnx_path, "CPUExecutionProvider"), session(onnx_path, "CUDAExecutionProvider")
    except Exception as exc:
        cell.status, cell.reason = "failed", str(exc)
        return cell
    cell.providers = list(cuda.get_providers())
    if cell.providers[:1] != ["CUDAExecutionProvider"]:
        cell.status, cell.reason = "failed", f"onnxruntime fell back to {cell.providers[0]}"
        return cell
    names = ["probabilities", "label"]
    ref_p, ref_l = run_sliced(cpu, names, cpu.get_inputs()[0].name, X)
    got_p, got_l = run_sliced(cuda, names, cuda.get_inputs()[0].name, X)
    diff = np.abs(got_p.astype(np.float64) - ref_p)
    cell.batches = [len(X)]
    cell.max_abs_error = float(diff.max())
    cell.max_rel_error = float((diff / np.maximum(np.abs(ref_p), atol)).max())
    cell.label_agreement = float((got_l == ref_l).mean())
    problems = []
    if not np.all(diff <= atol + rtol * np.abs(ref_p)):
        problems.append(f"probabilities differ by up to {diff.max():.2e}")
    if cell.label_agreement < 1.0:
        problems.append(f"{int((got_l != ref_l).sum())} labels differ")
    cell.status, cell.reason = ("failed" if problems else "passed"), "; ".join(problems)
    return cell


def cuda_unavailable() -> str | None:
    """Why the torch-CUDA-vs-onnxruntime-CUDA cell cannot run here, or None when it can."""
    import torch

    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    return ort_cuda_unavailable()


def ort_cuda_unavailable() -> str | None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
    return None


def _run_cell(name, device, provider, onnx_path, wrapper, policy, X, atol, rtol) -> Cell:
    import numpy as np
    import torch

    from zoo.exports.runtime import session

    cell = Cell(name, f"torch {device}", provider)
    try:
        sess = session(onnx_path, provider)
    except Exception as exc:
        cell.status, cell.reason = "failed", f"onnxruntime could not load the model: {exc}"
        return cell
    cell.providers = list(sess.get_providers())
    if cell.providers[:1] != [provider]:
        cell.status = "failed"
        cell.reason = f"onnxruntime fell back to {cell.providers[0] if cell.providers else 'nothing'}"
        return cell
    output_names = [o.name for o in sess.get_outputs()]
    prob_i, label_i = output_names.index("probabilities"), output_names.index("label")
    model = wrapper.to(device)
    worst_abs = worst_rel = 0.0
    agree = total = 0
    problems = []
    try:
        for batch in batch_sizes(len(X)):
            x = X[:batch]
            with torch.inference_mode():
                outputs = model(torch.from_numpy(x).to(device))
            ref_p = outputs[-2].float().cpu().numpy()
            ref_l = outputs[-1].cpu().numpy()
            got = sess.run(None, {sess.get_inputs()[0].name: x})
            got_p, got_l = np.asarray(got[prob_i]), np.asarray(got[label_i])
            if got_p.shape != ref_p.shape or got_l.shape != ref_l.shape:
                problems.append(f"batch {batch}: shapes {got_p.shape}/{got_l.shape} vs torch "
                                f"{ref_p.shape}/{ref_l.shape}")
                continue
            diff = np.abs(got_p.astype(np.float64) - ref_p)
            worst_abs = max(worst_abs, float(diff.max()))
            worst_rel = max(worst_rel, float((diff / np.maximum(np.abs(ref_p), atol)).max()))
            if not np.all(diff <= atol + rtol * np.abs(ref_p)):
                problems.append(f"batch {batch}: probabilities differ by up to {diff.max():.2e}")
            agree += int((got_l == ref_l).sum())
            total += len(ref_l)
            if not np.array_equal(got_l, policy.decide_np(got_p)):
                problems.append(f"batch {batch}: ONNX label is not the {policy.decision} of its probabilities")
            cell.batches.append(batch)
    finally:
        wrapper.to("cpu")
    cell.max_abs_error, cell.max_rel_error = worst_abs, worst_rel
    cell.label_agreement = agree / total if total else None
    if total and agree != total:
        problems.append(f"{total - agree} of {total} labels differ")
    cell.status = "failed" if problems or not total else "passed"
    cell.reason = "; ".join(problems)
    return cell
