"""The export and verify flows: trained model -> staged bundle -> parity -> swapped into place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import VerifyError, ZooError
from zoo.exports import bundle, parity
from zoo.exports import onnx as onnx_export


@dataclass
class Outcome:
    """What an export or a verify found. ``verified`` is True only when parity passed."""

    path: Path
    report: dict[str, Any]
    parity: parity.ParityReport

    @property
    def verified(self) -> bool:
        return self.parity.passed


class ParityFailed(ZooError):
    """Parity failed: nothing was written at the target."""

    def __init__(self, outcome: Outcome):
        self.outcome = outcome
        failed = [c for c in outcome.parity.cells if c.status == "failed"]
        detail = "; ".join(f"{c.name}: {c.reason}" for c in failed) or "no check ran"
        super().__init__(f"parity failed ({detail}); nothing was written at {outcome.path}")


def export_bundle(result, target: str | Path, *, force: bool = False, exporter: str = "auto",
                  opset: int = onnx_export.DEFAULT_OPSET, atol: float = parity.DEFAULT_ATOL,
                  rtol: float = parity.DEFAULT_RTOL, verbose: bool = False) -> Outcome:
    """Export ``result`` (a :class:`zoo.training.TrainResult`) to the bundle directory ``target``."""
    from zoo import checkpoint

    target = Path(target)
    bundle.check_target(target, force)
    policy, config = result.policy, result.built.config
    wrapper = onnx_export.make_wrapper(result.module, policy, result.split.mean, result.split.scale)
    with bundle.staging(target) as staged:
        model_path = staged / bundle.MODEL_FILE
        used = onnx_export.export(wrapper, model_path, input_size=config["input_size"],
                                  names=onnx_export.output_names(policy), exporter=exporter,
                                  opset=opset, verbose=verbose)
        onnx_export.finish(model_path, bundle.onnx_metadata(result, exporter=used, opset=opset))
        report = parity.check(model_path, wrapper, policy, result.split.X_test, atol=atol, rtol=rtol)
        outcome = Outcome(target, bundle.build_report(result, report, exporter=used, opset=opset), report)
        if not report.passed:
            raise ParityFailed(outcome)
        bundle.write_json(staged / bundle.REPORT_FILE, outcome.report)
        checkpoint.save(result, staged / bundle.CHECKPOINT_FILE)
        bundle.commit(staged, target)
    return outcome


def locate(path: str | Path, checkpoint_path: str | Path | None) -> tuple[Path, Path | None]:
    """The ONNX file and the checkpoint for a bundle directory or a bare ``.onnx`` file."""
    path = Path(path)
    if path.is_dir():
        model = path / bundle.MODEL_FILE
        if not model.exists():
            raise VerifyError(f"{path} is a directory without {bundle.MODEL_FILE}: not a zoo bundle")
    else:
        model = path
    if not model.exists():
        raise VerifyError(f"{model} does not exist")
    if checkpoint_path is not None:
        return model, Path(checkpoint_path)
    beside = model.parent / bundle.CHECKPOINT_FILE
    return model, beside if beside.exists() else None


def load_onnx(model_path: Path):
    """Parse and fully check an ONNX file, with one clear error for each way it can be wrong."""
    import onnx

    if model_path.stat().st_size == 0:
        raise VerifyError(f"{model_path} is empty, not an ONNX model")
    try:
        model = onnx.load(str(model_path))
    except Exception as exc:
        raise VerifyError(f"{model_path} is not an ONNX model (cannot parse it: {type(exc).__name__})") from None
    if not model.graph.node:
        raise VerifyError(f"{model_path} is not an ONNX model (it parses to an empty graph)")
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VerifyError(f"{model_path} fails the ONNX checker: {first}") from None
    return model


def verify(path: str | Path, *, checkpoint_path: str | Path | None = None,
           atol: float = parity.DEFAULT_ATOL, rtol: float = parity.DEFAULT_RTOL) -> Outcome:
    """Re-run parity on an exported bundle or file: torch (from the checkpoint) vs onnxruntime."""
    from zoo import checkpoint

    model_path, ckpt = locate(path, checkpoint_path)
    model = load_onnx(model_path)
    meta = onnx_export.read_metadata(model)
    if "zoo.model" not in meta:
        raise VerifyError(f"{model_path} carries no zoo metadata: it was not exported by zoo")
    if ckpt is None:
        raise VerifyError(
            f"no {bundle.CHECKPOINT_FILE} beside {model_path}: verify recomputes torch's outputs "
            "from the training checkpoint; pass --checkpoint PATH"
        )
    result = checkpoint.load(ckpt)
    if result.built.spec.name != meta["zoo.model"] or result.policy.name != meta.get("zoo.policy"):
        raise VerifyError(
            f"{ckpt} holds {result.built.spec.name}/{result.policy.name} but {model_path} was "
            f"exported from {meta['zoo.model']}/{meta.get('zoo.policy')}"
        )
    wrapper = onnx_export.make_wrapper(result.module, result.policy, result.split.mean, result.split.scale)
    report = parity.check(model_path, wrapper, result.policy, result.split.X_test, atol=atol, rtol=rtol)
    summary = {"file": str(model_path), "checkpoint": str(ckpt), "metadata": meta, "parity": report.to_dict(),
               "verified": report.passed}
    return Outcome(model_path, summary, report)
