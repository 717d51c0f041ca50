"""torch -> ONNX: a wrapper that bakes in standardization, head and decision, and the export.

The graph takes raw features and returns ``logits`` (when the model emits
them), ``probabilities`` (the policy's head) and ``label`` (the policy's
decision), with a dynamic batch axis.

Exporter choice, measured with torch 2.13 on a 2-core CPU: the TorchScript
exporter takes 0.2 s, the torch.export-based ("dynamo") one 5-7 s for the same
Gemm-Relu-Gemm graph, and needs onnxscript. ``auto`` takes TorchScript and
falls back to dynamo where TorchScript is gone; both print noise (deprecation
warnings, progress and log lines) that zoo captures and shows only when asked.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import zoo
from zoo.errors import ExportError, first_line
from zoo.exports.export.optimize import fold_standardization
from zoo.exports.export.options import DEFAULTS, EXPORTERS
from zoo.tables.graph import compose

INPUT_NAME = "input"


def output_names(policy) -> tuple[str, ...]:
    if policy.expects == "logits":
        return ("logits", "probabilities", "label")
    return ("probabilities", "label")


def make_wrapper(module, policy, mean, scale):
    """``torch.nn.Module``: raw features -> (logits,) probabilities, label (-1 for a row with a NaN/Inf)."""
    import torch

    class ExportWrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = module
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
            self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

        def forward(self, x):
            output = self.model((x - self.mean) * self.scale)
            probabilities = policy.probabilities(output)
            # A row with a NaN/Inf feature has no class: label -1, never a plausible one. One ReduceSum
            # over the input finds it (NaN and inf propagate; a finite row overflows only beyond 3e38),
            # where an element-wise IsNaN/IsInf would cost several passes over the widest tensor.
            valid = torch.isfinite(x.sum(dim=1)) & torch.isfinite(probabilities.sum(dim=1))
            label = torch.where(valid, policy.decide(probabilities), torch.full_like(valid, -1, dtype=torch.int64))
            if policy.expects == "logits":
                return output, probabilities, label
            return probabilities, label

    return ExportWrapper().eval()


def available_exporters() -> dict[str, str | None]:
    """Each exporter mapped to None when usable, else the reason it is not."""
    import torch

    reasons: dict[str, str | None] = {}
    legacy = getattr(torch.onnx, "utils", None)
    reasons["torchscript"] = None if legacy is not None and hasattr(torch.jit, "trace") else (
        f"torch {torch.__version__} has no TorchScript exporter")
    import importlib.util

    # find_spec, not import: importing onnxscript costs 1.5 s, which an export through
    # TorchScript would pay for nothing.
    has_onnxscript = importlib.util.find_spec("onnxscript") is not None
    reasons["dynamo"] = None if has_onnxscript else "needs onnxscript: pip install 'zoo-onnx[dynamo]'"
    return reasons


def choose_exporter(requested: str) -> str:
    if requested not in EXPORTERS:
        raise ExportError(f"unknown exporter {requested!r}: use one of {', '.join(EXPORTERS)}")
    reasons = available_exporters()
    if requested == "auto":
        for name in ("torchscript", "dynamo"):
            if reasons[name] is None:
                return name
        raise ExportError("no ONNX exporter is usable: " + "; ".join(f"{k}: {v}" for k, v in reasons.items()))
    if reasons[requested] is not None:
        raise ExportError(f"the {requested} exporter is not usable: {reasons[requested]}")
    return requested


@contextlib.contextmanager
def captured(verbose: bool):
    """Silence warnings, log records and prints (Python's and C++'s) unless ``verbose``.

    Yields a StringIO that holds what was captured, for error messages.
    """
    import io
    import logging
    import sys
    import tempfile
    import warnings

    log = io.StringIO()
    if verbose:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            yield log
        return
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield log
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)
            sink.seek(0)
            log.write(sink.read().decode(errors="replace"))


def export(wrapper, path: str | os.PathLike, *, input_size: int, names: tuple[str, ...],
           exporter: str = "auto", opset: int = DEFAULTS.opset, verbose: bool = False) -> str:
    """Export ``wrapper`` to ``path``; return the exporter that was used."""
    import torch

    exporter = choose_exporter(exporter)
    example = torch.randn(3, input_size)  # batch >= 2, so the trace keeps the batch axis general
    try:
        with captured(verbose), torch.no_grad():
            if exporter == "torchscript":
                torch.onnx.export(
                    wrapper, (example,), str(path), input_names=[INPUT_NAME], output_names=list(names),
                    dynamic_axes={n: {0: "batch"} for n in (INPUT_NAME, *names)},
                    opset_version=opset, dynamo=False,
                )
            else:
                batch = torch.export.Dim("batch", min=1)
                program = torch.onnx.export(
                    wrapper, (example,), input_names=[INPUT_NAME], output_names=list(names),
                    dynamic_shapes=({0: batch},), opset_version=opset, dynamo=True,
                    verbose=False, optimize=True,
                )
                program.save(str(path))
    except Exception as exc:
        raise ExportError(f"the {exporter} exporter failed: {first_line(exc)}") from exc
    return exporter


def finish(path: str | os.PathLike, metadata: dict[str, Any], *, optimize: bool = True, features=None) -> None:
    """Fold the standardization (see :mod:`zoo.exports.export.optimize`), put a table model's preprocessing in
    front (:mod:`zoo.tables.graph`), add zoo's metadata props, run the full ONNX checker and rewrite the file."""
    import onnx

    model = onnx.load(str(path))
    if optimize:
        metadata = {**metadata, "zoo.standardization": "folded into the first Gemm"
                    if fold_standardization(model) else "Sub and Mul nodes on the input"}
    if features is not None:
        model = compose(model, features)
    model.producer_name, model.producer_version = "zoo", zoo.__version__
    model.doc_string = f"zoo export of {metadata.get('zoo.model')!r} (raw " + \
        ("table columns in; imputation, one-hot encoding" if features is not None else "features in;") + \
        " standardization baked in)"
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # onnx.checker.ValidationError, shape inference errors
        raise ExportError(f"the exported graph fails the ONNX checker: {exc}") from exc
    onnx.save(model, str(Path(path)))

