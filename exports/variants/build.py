"""Variants made in a bundle: lowered, measured, guarded and replayed on every runtime, then recorded."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from zoo import files
from zoo.errors import ZooError
from zoo.exports import card
from zoo.exports.bundle import evaluation as evaluations
from zoo.exports.bundle import reading
from zoo.exports.bundle.evaluation import Evaluation
from zoo.exports.bundle.layout import MANIFEST_FILE, MODEL_FILE, VARIANTS_DIR
from zoo.exports.bundle.manifest import Variant
from zoo.exports.bundle.model import open_model
from zoo.exports.bundle.testdata import load_test_data, write_test_data
from zoo.exports.bundle.writing import sha256, write_manifest
from zoo.exports.card.writing import write as write_card
from zoo.exports.deploy.verify import replay_variant
from zoo.exports.runtimes import DEFAULT_RUNTIME, Runtimes, open_session, run, select
from zoo.exports.variants import DEFAULT_MAX_ACCURACY_DROP, DEFAULT_MIN_AGREEMENT
from zoo.exports.variants.measure import (
    SCORED,
    TOLERANCE,  # noqa: F401 (the replay tolerances, beside the flow that applies them)
    VariantRefused,
    guard,
    measure,
    record,
    rules_for_variant,
    speeds,
    test_inputs,
)
from zoo.exports.variants.methods import finish, lower, method, require
from zoo.tables.features import Features
from zoo.tables.graph import compose, core_of

# -- the flow --------------------------------------------------------------------------------------


@dataclass
class Made:
    """What a build made: the records of the variants kept, and one line per variant refused."""

    records: dict[str, Variant] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # one line each
    card: Any = None  # the remade report.html (zoo.exports.card.writing.Written), when zoo variants --add remade it


def build(bundle: Path, fp32_path: Path, names: list[str], evaluation: Evaluation, data_sets, *,
          normalization=None, max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
          min_agreement: float = DEFAULT_MIN_AGREEMENT, runtimes: Runtimes = None, bench: bool = True) -> Made:
    """Make, measure, guard and test each variant under ``bundle/variants/`` (a staged bundle)."""
    runtimes = select(runtimes)  # resolved once for the replays and the timings of every variant
    fp32 = onnx.load(str(fp32_path))
    metadata = {p.key: p.value for p in fp32.metadata_props}
    threshold = float(metadata["zoo.threshold"]) if metadata.get("zoo.decision") == "threshold" else None
    output_names, input_name = [o.name for o in fp32.graph.output], fp32.graph.input[0].name
    # A table model: the model behind its preprocessing is lowered, and the preprocessing put back in front, exact.
    features = Features.from_dict(json.loads(metadata["zoo.features"]), "zoo.features") \
        if "zoo.features" in metadata else None
    built = Made()
    fp32_speed = speeds(fp32_path, runtimes) if bench and names else {}
    inputs = test_inputs(data_sets, features, normalization)
    [(default, _)] = select([DEFAULT_RUNTIME])
    fp32_scored = run(open_session(default, fp32_path), evaluation.X, SCORED)  # once, for every variant
    for name in dict.fromkeys(names):
        chosen = method(name)
        folder = bundle / VARIANTS_DIR / name
        if folder.exists():
            shutil.rmtree(folder)  # replaced: the manifest record is replaced with it
        folder.mkdir(parents=True)
        path = folder / MODEL_FILE
        # int8: the folded graph first (smaller); if the guard refuses it, or a runtime cannot replay it within the
        # tolerance (a folded scale of 1e4 makes int8 weights that OpenVINO and onnxruntime requantize apart), the
        # normalization in fp32 ahead.
        ways = [None, normalization] if chosen.options.get("fallback") and normalization is not None else [None]
        tried, refusal = [], None
        for way in ways:
            model, made = _lowered(name, fp32, fp32_path, features, evaluation, way)
            onnx.save(finish(model, metadata, name, chosen.precision), str(path))
            found = measure(fp32_scored, run(open_session(default, path), evaluation.X, SCORED), evaluation.y,
                            threshold)
            tried.append({"normalization": made.get("normalization"), "agreement_percent": found["agreement_percent"],
                          "accuracy_delta_points": found["accuracy_delta_points"]})
            try:
                guard(name, found, max_accuracy_drop, min_agreement)
            except VariantRefused as refused:
                refusal = str(refused)
                continue
            session = open_session(default, path)
            references = [run(session, x, output_names) for x in inputs]
            written = write_test_data(folder, inputs, references, input_name)
            rules = rules_for_variant(output_names, chosen.precision)
            problem = _replays_fail(path, folder, written, rules, runtimes, chosen.precision)
            if problem:
                refusal = f"variant {name} refused: {problem}; nothing written for it"
                for stale in written:
                    shutil.rmtree(folder / stale, ignore_errors=True)
                continue
            refusal = None
            break
        if refusal is not None:
            shutil.rmtree(folder)
            built.refused.append(refusal if len(tried) == 1 else
                                 f"{refusal} (tried with the normalization folded and in fp32 ahead)")
            continue
        if chosen.precision == "int8":
            made["tried"] = tried
        relative = f"{VARIANTS_DIR}/{name}"
        built.records[name] = record(
            name, chosen.precision, made, found, file=f"{relative}/{MODEL_FILE}", sha=sha256(path),
            size=path.stat().st_size, fp32_size=fp32_path.stat().st_size, rules=rules,
            test_data=[f"{relative}/{w}" for w in written],
            rows_per_second=speeds(path, runtimes) if bench else {}, fp32_rows_per_second=fp32_speed)
    if (bundle / VARIANTS_DIR).exists() and not any((bundle / VARIANTS_DIR).iterdir()):
        (bundle / VARIANTS_DIR).rmdir()
    return built


def _lowered(name: str, fp32, fp32_path: Path, features: Features | None, evaluation: Evaluation, way):
    """The variant ``name`` of the fp32 model: the whole graph lowered, or a table model's core lowered with its
    preprocessing put back in front (the medians and vocabularies stay exact)."""
    if features is None:
        return lower(name, fp32_path, evaluation.calibration, way, evaluation.calibration_source)
    with tempfile.TemporaryDirectory(prefix="zoo-core-") as scratch:
        core_path = Path(scratch) / MODEL_FILE
        onnx.save(core_of(fp32, features.width), str(core_path))
        model, made = lower(name, core_path, evaluation.calibration, way, evaluation.calibration_source)
    return compose(model, features), made | {"preprocessing": "kept in fp32, exact"}


def _replays_fail(path: Path, folder: Path, written: list[str], rules, runtimes, precision: str) -> str | None:
    """The variant's own test data replayed on every runtime that can run here; why one failed, or None."""
    for replay in replay_variant(path, folder, written, rules, runtimes, precision):
        if replay.status == "failed":
            return f"on {replay.runtime}, {replay.data or 'opening it'}: {replay.reason}"
    return None


def add(bundle: Path, names: list[str], *, max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
        min_agreement: float = DEFAULT_MIN_AGREEMENT, runtimes: Runtimes = None,
        bench: bool = True) -> Made:
    """``zoo variants DIR --add NAME``: variants added to an existing bundle, without torch.

    The bundle is copied beside itself, the variants are made in the copy and the copy is swapped in
    (:mod:`zoo.files`), so a refused variant, a crash or a kill leaves the bundle as it was.
    """
    require(names)
    runtimes = select(runtimes)
    bundle = Path(bundle)
    deployed = open_model(bundle)
    if deployed.manifest is None:
        raise ZooError(f"{bundle} is not a bundle directory: variants are added to one (zoo export writes it)")
    manifest = deployed.manifest
    evaluation = evaluations.read(bundle, manifest)
    data_sets = load_test_data(deployed)
    with files.staged_directory(bundle) as staged:
        # open_model found the tree a closed set of regular files; a link planted since is copied as a link,
        # never followed, and the copy is refused like any bundle with one.
        shutil.copytree(bundle, staged, symlinks=True, dirs_exist_ok=True)
        reading.check_tree(staged)
        normalization = (manifest.normalization["mean"], manifest.normalization["scale"])
        built = build(staged, staged / deployed.model_path.name, names, evaluation, data_sets,
                      normalization=normalization, max_accuracy_drop=max_accuracy_drop, min_agreement=min_agreement,
                      runtimes=runtimes, bench=bench)
        if not built.records:
            shutil.rmtree(staged)
            return built
        manifest.variants.update(built.records)
        write_manifest(staged / MANIFEST_FILE, manifest)
        if card.available():  # the card shows the variants: remade with them, swapped in with them
            built.card = write_card(staged, shown_as=str(bundle), becomes=bundle, runtimes=runtimes)
        elif (staged / card.FILE).exists():
            files.notice(f"{bundle / card.FILE} does not show the new variants: it needs matplotlib to be remade "
                         f"({card.INSTALL}, then zoo report {bundle})")
        files.replace_directory(staged, bundle)
    return built
