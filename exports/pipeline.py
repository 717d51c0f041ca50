"""The export flow: trained model -> staged bundle (ONNX, test data, manifest) -> parity -> swapped in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
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
    names = onnx_export.output_names(policy)
    wrapper = onnx_export.make_wrapper(result.module, policy, result.split.mean, result.split.scale)
    with bundle.staging(target) as staged:
        model_path = staged / bundle.MODEL_FILE
        used = onnx_export.export(wrapper, model_path, input_size=config["input_size"],
                                  names=names, exporter=exporter,
                                  opset=opset, verbose=verbose)
        onnx_export.finish(model_path, bundle.onnx_metadata(result, exporter=used, opset=opset))
        report = parity.check(model_path, wrapper, policy, result.split.X_test, atol=atol, rtol=rtol)
        test_data = bundle.write_test_data(staged, wrapper, bundle.test_inputs(result.split),
                                           onnx_export.INPUT_NAME, names)
        manifest = bundle.build_manifest(result, report, model_path=model_path, test_data=test_data,
                                         exporter=used, opset=opset)
        outcome = Outcome(target, manifest, report)
        if not report.passed:
            raise ParityFailed(outcome)
        bundle.write_json(staged / bundle.MANIFEST_FILE, manifest)
        checkpoint.save(result, staged / bundle.CHECKPOINT_FILE)
        bundle.commit(staged, target)
    return outcome


def export_job(result, target: str, **options) -> dict:
    """Rank 0's last step of a distributed ``zoo export``: export and check parity, report back."""
    try:
        outcome = export_bundle(result, target, **options)
    except ParityFailed as failure:
        return {"describe": result.describe(), "report": failure.outcome.report, "failed": str(failure)}
    return {"describe": result.describe(), "report": outcome.report}
