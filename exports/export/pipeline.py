"""The export flow: trained model -> staged bundle (ONNX, test data, manifest) -> parity -> swapped in.

The reference outputs come from :mod:`.oracle` before anything is exported, so
nothing the export wrapper does can reach them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.exports import card as model_card
from zoo.exports.bundle import evaluation as evaluations
from zoo.exports.bundle import writing as bundle
from zoo.exports.bundle.layout import CHECKPOINT_FILE, EVALUATION_FILE, MANIFEST_FILE, MODEL_FILE, TEST_DATA_SET
from zoo.exports.bundle.manifest import Manifest
from zoo.exports.bundle.rules import rules_for
from zoo.exports.bundle.testdata import write_test_data
from zoo.exports.card.writing import write as write_card
from zoo.exports.export import exporter as onnx_export
from zoo.exports.export import oracle, parity
from zoo.exports.export.options import ExportOptions
from zoo.exports.export.record import build_manifest, onnx_metadata, test_inputs
from zoo.exports.runtimes import select
from zoo.exports.variants.build import build as build_variants
from zoo.training import checkpoint


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


def export_bundle(result, target: str | Path, options: ExportOptions | None = None, /, **given: Any) -> Outcome:
    """Export ``result`` (a :class:`zoo.training.TrainResult`) to the bundle directory ``target``.

    ``options`` (:class:`~.options.ExportOptions`, default: its defaults), with any of its fields given as
    keywords instead: ``runtimes`` names the runtimes parity runs on (default: every registered one that can
    run here); ``variants`` (``fp16``, ``int8``) are made, measured and guarded; a refused one is left out
    and named in ``Outcome.refused``; ``card`` writes ``report.html`` when matplotlib is installed.
    """
    options = ExportOptions.of(options, **given)
    target = Path(target)
    bundle.check_target(target, options.force)
    runtimes = select(options.runtimes)  # resolved once: a named runtime that cannot run here is refused now
    policy, config, split = result.policy, result.built.config, result.split
    names = onnx_export.output_names(policy)
    features = split.features  # a table model: its graph takes the table's columns
    inputs = test_inputs(split)
    references = [oracle.reference(result.module, policy, split.mean, split.scale, x, names, features)
                  for x in inputs]
    rules = rules_for(names, options.atol, options.rtol)
    wrapper = onnx_export.make_wrapper(result.module, policy, split.mean, split.scale)
    with bundle.staging(target) as staged:
        model_path = staged / MODEL_FILE
        used = onnx_export.export(wrapper, model_path, input_size=config["input_size"], names=names,
                                  exporter=options.exporter, opset=options.opset, verbose=options.verbose)
        onnx_export.finish(model_path, onnx_metadata(result, exporter=used, opset=options.opset), features=features)
        report = parity.check(
            model_path, X=inputs[2], reference=references[2], y_true=split.y_test, edge=inputs[3],
            edge_reference=references[3], rules=rules, decision=policy.decision,
            threshold=policy.threshold if policy.decision == "threshold" else None,
            trainer_accuracy=result.metrics.get("holdout_accuracy"), runtimes=runtimes,
            reference_name=oracle.DESCRIPTION if features is None else oracle.TABLE_DESCRIPTION, features=features)
        test_data = write_test_data(staged, inputs, references, onnx_export.INPUT_NAME)
        manifest = build_manifest(result, report, rules, model_path=model_path, test_data=test_data,
                                  exporter=used, opset=options.opset)
        outcome = Outcome(target, manifest, report)
        if not report.passed:
            raise ParityFailed(outcome)
        evaluations.write(staged / EVALUATION_FILE, split, result.config.seed)
        manifest.files.evaluation = EVALUATION_FILE
        manifest.sha256[EVALUATION_FILE] = bundle.sha256(staged / EVALUATION_FILE)
        if options.variants:
            data_sets = [(TEST_DATA_SET.format(n), x, r) for n, (x, r) in enumerate(zip(inputs, references))]
            made = build_variants(staged, model_path, options.variants, evaluations.read(staged, manifest),
                                  data_sets, normalization=(split.mean, split.scale),
                                  max_accuracy_drop=options.max_accuracy_drop, min_agreement=options.min_agreement,
                                  runtimes=runtimes)
            manifest.variants, outcome.refused = made.records, made.refused
        checkpoint.save(result, staged / CHECKPOINT_FILE)
        bundle.write_manifest(staged / MANIFEST_FILE, manifest)  # last but the card: it sizes every file
        if options.card and model_card.available():
            outcome.card = write_card(staged, shown_as=str(target), becomes=target, runtimes=runtimes)
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
