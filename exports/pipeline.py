"""The export flow: trained model -> staged bundle (ONNX, test data, manifest) -> parity -> swapped in.

The reference outputs come from :mod:`zoo.exports.oracle` before anything is
exported, so nothing the export wrapper does can reach them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.exports import bundle, oracle, parity
from zoo.exports import onnx as onnx_export
from zoo.exports.manifest import Manifest


@dataclass
class Outcome:
    """What an export found. ``verified`` is True only when parity passed."""

    path: Path
    manifest: Manifest
    parity: parity.ParityReport
    refused: list[str] = field(default_factory=list)  # variants the guard refused, one line each
    card: Any = None  # the written report.html (zoo.exports.card.Written); None when it was not made

    @property
    def report(self) -> dict[str, Any]:
        return self.manifest.to_dict()

    @property
    def verified(self) -> bool:
        return self.parity.passed


class ParityFailed(ZooError):
    """Parity failed: nothing was written at the target."""

    def __init__(self, outcome: Outcome):
        self.outcome = outcome
        super().__init__(f"parity failed ({outcome.parity.failures()}); nothing was written at {outcome.path}")


def export_bundle(result, target: str | Path, *, force: bool = False, exporter: str = "auto",
                  opset: int = onnx_export.DEFAULT_OPSET, atol: float = parity.DEFAULT_ATOL,
                  rtol: float = parity.DEFAULT_RTOL, verbose: bool = False,
                  runtimes: list[str] | None = None, variants: list[str] | None = None,
                  max_accuracy_drop: float | None = None, min_agreement: float | None = None,
                  card: bool = True) -> Outcome:
    """Export ``result`` (a :class:`zoo.training.TrainResult`) to the bundle directory ``target``.

    ``runtimes`` names the runtimes parity runs on (default: every registered one that can run here).
    ``variants`` (``fp16``, ``int8``) are made, measured and guarded (:mod:`zoo.exports.variants`); a
    refused one is left out and named in ``Outcome.refused``. ``card``: write ``report.html``
    (:mod:`zoo.exports.card`) when matplotlib is installed.
    """
    from zoo import checkpoint
    from zoo.exports import card as model_card
    from zoo.exports import evaluation as evaluations
    from zoo.exports import variants as lowered
    from zoo.exports.compare import rules_for
    from zoo.exports.runtimes import select

    target = Path(target)
    bundle.check_target(target, force)
    select(runtimes)  # a named runtime that cannot run here: refused before any work
    policy, config, split = result.policy, result.built.config, result.split
    names = onnx_export.output_names(policy)
    inputs = bundle.test_inputs(split)
    references = [oracle.reference(result.module, policy, split.mean, split.scale, x, names) for x in inputs]
    rules = rules_for(names, atol, rtol)
    wrapper = onnx_export.make_wrapper(result.module, policy, split.mean, split.scale)
    with bundle.staging(target) as staged:
        model_path = staged / bundle.MODEL_FILE
        used = onnx_export.export(wrapper, model_path, input_size=config["input_size"],
                                  names=names, exporter=exporter,
                                  opset=opset, verbose=verbose)
        onnx_export.finish(model_path, bundle.onnx_metadata(result, exporter=used, opset=opset))
        report = parity.check(
            model_path, X=split.X_test, reference=references[2], y_true=split.y_test, edge=inputs[3],
            edge_reference=references[3], rules=rules, decision=policy.decision,
            threshold=policy.threshold if policy.decision == "threshold" else None,
            trainer_accuracy=result.metrics.get("holdout_accuracy"), runtimes=runtimes,
            reference_name=oracle.DESCRIPTION)
        test_data = bundle.write_test_data(staged, inputs, references, onnx_export.INPUT_NAME)
        manifest = bundle.build_manifest(result, report, rules, model_path=model_path, test_data=test_data,
                                         exporter=used, opset=opset)
        outcome = Outcome(target, manifest, report)
        if not report.passed:
            raise ParityFailed(outcome)
        evaluations.write(staged / evaluations.FILE, split, result.config.seed)
        manifest.files.evaluation = evaluations.FILE
        manifest.sha256[evaluations.FILE] = bundle.sha256(staged / evaluations.FILE)
        if variants:
            data_sets = [(f"test_data_set_{n}", x, r) for n, (x, r) in enumerate(zip(inputs, references))]
            built = lowered.build(
                staged, model_path, variants, evaluations.read(staged, manifest), data_sets,
                normalization=(split.mean, split.scale),
                max_accuracy_drop=lowered.DEFAULT_MAX_ACCURACY_DROP if max_accuracy_drop is None else max_accuracy_drop,
                min_agreement=lowered.DEFAULT_MIN_AGREEMENT if min_agreement is None else min_agreement,
                runtimes=runtimes)
            manifest.variants, outcome.refused = built.records, built.refused
        checkpoint.save(result, staged / bundle.CHECKPOINT_FILE)
        bundle.write_manifest(staged / bundle.MANIFEST_FILE, manifest)  # last but the card: it sizes every file
        if card and model_card.available():
            outcome.card = model_card.write(staged, shown_as=str(target), becomes=target)
        bundle.commit(staged, target)
    return outcome


def export_job(result, target: str, **options) -> dict:
    """Rank 0's last step of a distributed ``zoo export``: export and check parity, report back."""
    try:
        outcome = export_bundle(result, target, **options)
    except ParityFailed as failure:
        return {"describe": result.describe(), "report": failure.outcome.report, "failed": str(failure)}
    return {"describe": result.describe(), "report": outcome.report, "refused": outcome.refused,
            "card": outcome.card and outcome.card.to_dict()}
