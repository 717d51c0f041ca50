"""The deployer's side: open an exported model and what it says about itself, with onnx and numpy only.

Nothing here, nor anything ``zoo verify`` and ``zoo predict`` import, may import
torch or scikit-learn: a target machine has neither (a test makes those imports
fail and runs both commands). Running the model is the registered runtimes' job
(:mod:`zoo.exports.runtimes`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from zoo.errors import DataError, VerifyError, first_line
from zoo.exports.bundle import reading
from zoo.exports.bundle.layout import MANIFEST_FILE
from zoo.exports.bundle.manifest import Manifest
from zoo.exports.bundle.rules import decide as decide_np
from zoo.tables.features import Features


@dataclass
class Deployed:
    """An exported model and what it says about itself (from its manifest, or its metadata props)."""

    model_path: Path
    bundle: Path | None
    manifest: Manifest | None
    metadata: dict[str, str]
    input_name: str
    input_size: int
    output_names: list[str]
    class_labels: list[str]
    head: str
    decision: str
    threshold: float | None
    checks: list[tuple[str, str]] = field(default_factory=list)  # (what, detail) that passed on opening
    feature_names: tuple[str, ...] | None = None  # the training data's column names, when it had them
    variant: str | None = None  # a variant of the bundle (fp16, int8): its own file and test data
    test_data: list[str] | None = None  # the bundle's test data sets for this model (None: the manifest's)
    features: Features | None = None  # a model trained on a table: it takes these columns, one input each


def read_manifest(bundle: Path) -> Manifest:
    """The bundle's manifest, typed and checked, after the bundle's tree was found to be a closed set."""
    path = bundle / MANIFEST_FILE
    if not os.path.lexists(path):
        raise VerifyError(f"{bundle} has no {MANIFEST_FILE}: not a zoo bundle")
    reading.check_tree(bundle)
    try:
        data = json.loads(reading.read(path, limit=reading.MANIFEST_LIMIT).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VerifyError(f"{path} is not valid JSON ({exc})") from None
    except RecursionError:
        raise VerifyError(f"{path} is not valid JSON (nested too deeply)") from None
    return Manifest.from_dict(data, path)


def load_onnx(model_path: Path, *, check: bool = True, data: bytes | None = None):
    """Parse (and fully check) an ONNX file, with one clear error for each way it can be wrong.

    ``data``: the file's bytes, read already (with a bound); else the file is read here, following the
    path the user named, bounded by protobuf's own limit. The model is parsed from bytes, so nothing it
    names outside itself is ever read: a model with external data is refused.
    """
    import onnx

    if data is None:
        if not os.path.lexists(model_path):
            raise VerifyError(f"{model_path} does not exist")
        if model_path.is_dir():
            raise VerifyError(f"{model_path} is a directory without {MANIFEST_FILE}: not a zoo bundle")
        data = reading.read(model_path, follow=True)
    if not data:
        raise VerifyError(f"{model_path} is empty, not an ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:
        raise VerifyError(f"{model_path} is not an ONNX model (cannot parse it: {type(exc).__name__})") from None
    if not model.graph.node:
        raise VerifyError(f"{model_path} is not an ONNX model (it parses to an empty graph)")
    if _uses_external_data(model.graph):
        raise VerifyError(f"{model_path} keeps tensors in external files, which a zoo export never does: zoo reads "
                          "nothing a model names outside itself")
    if check:
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as exc:
            raise VerifyError(f"{model_path} fails the ONNX checker: {first_line(exc)}") from None
    return model


def _uses_external_data(graph) -> bool:
    from onnx import AttributeProto, TensorProto

    tensors = list(graph.initializer) + [s.values for s in graph.sparse_initializer]
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == AttributeProto.TENSOR:
                tensors.append(attribute.t)
            tensors.extend(attribute.tensors)
            subgraphs = list(attribute.graphs) + ([attribute.g] if attribute.type == AttributeProto.GRAPH else [])
            if any(_uses_external_data(g) for g in subgraphs):
                return True
    return any(t.data_location == TensorProto.EXTERNAL for t in tensors)


def open_model(path: str | Path, *, check: bool = True, variant: str | None = None) -> Deployed:
    """Open a bundle directory or an ``.onnx`` file; refuse a tampered, foreign, broken or inconsistent one.

    ``variant``: one of the bundle's variants (``variants`` in its manifest) instead of ``model.onnx``.
    """
    path = Path(path)
    bundle = manifest = None
    if path.is_dir() and os.path.lexists(path / MANIFEST_FILE):
        bundle = path
    elif path.is_file() and os.path.lexists(path.parent / MANIFEST_FILE):
        candidate = read_manifest(path.parent)
        if candidate.files.model == path.name:
            bundle, manifest = path.parent, candidate
    checks = []
    test_data = None
    if variant is not None and bundle is None:
        raise VerifyError(f"{path} is not a bundle directory: variants live in a bundle's variants/")
    if bundle is not None:
        manifest = manifest or read_manifest(bundle)
        if variant is not None:
            record = manifest.variants.get(variant)
            if record is None:
                known = ", ".join(manifest.variants) or "none (zoo variants DIR --add int8 makes one)"
                raise VerifyError(f"{bundle} has no variant {variant!r}; its variants: {known}")
            relative, test_data, what = record.file, list(record.test_data), f"variant {variant}"
            digests = {**manifest.sha256, PurePosixPath(record.file).as_posix(): record.sha256}
        else:
            relative, what, digests = manifest.files.model, "the model", manifest.sha256
        reading.member(bundle, relative, what)  # inside the bundle, before anything else is said of it
        if PurePosixPath(str(relative)).as_posix() not in digests:
            raise VerifyError(f"{bundle / MANIFEST_FILE} records no sha256 for {what} {relative!r}: it cannot be "
                              "checked; export it again")
        model_path, data = reading.read_member(bundle, relative, what, manifest.bytes, digests)
        checks.append(("sha256", f"{model_path.name} matches the manifest"))
    else:
        model_path, data = path, None
    model = load_onnx(model_path, check=check, data=data)
    if check:
        checks.append(("onnx checker", "full check passed"))
    deployed = _describe(model, model_path, bundle, manifest, checks, variant, test_data)
    checks.append(("metadata", "class labels, classes, features and outputs agree with the graph"
                   + (" and the manifest" if manifest is not None else "")))
    return deployed


def _describe(model, model_path: Path, bundle: Path | None, manifest: Manifest | None, checks, variant,
              test_data) -> Deployed:
    """What the model says about itself, checked against its own graph and the manifest: one line per
    disagreement, naming the file and the field."""
    metadata = {p.key: p.value for p in model.metadata_props}
    if "zoo.model" not in metadata:
        raise VerifyError(f"{model_path} carries no zoo metadata: it was not exported by zoo")

    def wrong(field: str, problem: str) -> VerifyError:
        return VerifyError(f"{model_path}: metadata {field} {problem}")

    def parsed(field: str, kind: type):
        if field not in metadata:
            raise wrong(field, "is missing: the file was not exported by zoo, or was edited")
        try:
            value = json.loads(metadata[field]) if kind in (list, tuple) else kind(metadata[field])
        except (ValueError, RecursionError):
            raise wrong(field, f"is not a valid {kind.__name__}: {metadata[field]!r:.80}") from None
        if kind in (list, tuple) and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise wrong(field, f"must be a JSON list of strings, got {metadata[field]!r:.80}")
        return value

    labels, classes, width = parsed("zoo.class_labels", list), parsed("zoo.num_classes", int), \
        parsed("zoo.input_size", int)
    head, decision = metadata.get("zoo.head"), metadata.get("zoo.decision")
    if head not in ("softmax", "sigmoid"):
        raise wrong("zoo.head", f"is {head!r}, not softmax or sigmoid")
    if decision not in ("argmax", "threshold"):
        raise wrong("zoo.decision", f"is {decision!r}, not argmax or threshold")
    threshold = parsed("zoo.threshold", float) if decision == "threshold" else None
    names = tuple(parsed("zoo.feature_names", list)) if "zoo.feature_names" in metadata else None
    if len(labels) != classes:
        raise wrong("zoo.class_labels", f"names {len(labels)} classes, but zoo.num_classes says {classes}")
    if len(set(labels)) != len(labels):
        raise wrong("zoo.class_labels", "names a class twice")
    if classes < 2:
        raise wrong("zoo.num_classes", f"is {classes}; a classifier has two or more classes")
    if names is not None and len(names) != width:
        raise wrong("zoo.feature_names", f"names {len(names)} features, but zoo.input_size says {width}")
    features = None
    if "zoo.features" in metadata:
        try:
            features = Features.from_dict(json.loads(metadata["zoo.features"]), f"{model_path}: metadata zoo.features")
        except (ValueError, RecursionError) as exc:
            raise wrong("zoo.features", f"is not valid JSON ({type(exc).__name__})") from None
        except DataError as exc:
            raise VerifyError(str(exc)) from None
        if features.width != width:
            raise wrong("zoo.features", f"encode {features.width} columns, but zoo.input_size says {width}")
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    outputs = {o.name: o for o in model.graph.output}
    if features is not None:
        _check_columns(model_path, inputs, features)
    elif len(inputs) != 1:
        raise VerifyError(f"{model_path} has {len(inputs)} inputs; a zoo export has one")
    if "probabilities" not in outputs or "label" not in outputs:
        raise VerifyError(f"{model_path} has no 'probabilities' and 'label' outputs: not a zoo export")
    graph_width = _dim(inputs[0], 1) if features is None else None
    graph_classes = _dim(outputs["probabilities"], 1)
    if graph_width is not None and graph_width != width:
        raise wrong("zoo.input_size", f"is {width}, but the graph's input takes {graph_width} features")
    expected = classes if head == "softmax" else 1
    if graph_classes is not None and graph_classes != expected:
        raise wrong("zoo.num_classes", f"is {classes} ({head}: {expected} probability column"
                    f"{'s' if expected != 1 else ''}), but the graph outputs {graph_classes}")
    if head == "sigmoid" and classes != 2:
        raise wrong("zoo.num_classes", f"is {classes}, but a sigmoid head decides between two classes")
    if manifest is not None:
        where = f"{bundle / MANIFEST_FILE}"
        if manifest.model.get("name") != metadata["zoo.model"]:
            raise VerifyError(f"{where} describes model {manifest.model.get('name')!r} "
                              f"but {model_path.name} holds {metadata['zoo.model']!r}")
        for field, mine, theirs in (("outputs", [o.name for o in manifest.outputs], list(outputs)),
                                    ("class_labels", manifest.class_labels, labels),
                                    ("policy.head", manifest.policy.get("head"), head),
                                    ("decision", manifest.decision, decision),
                                    ("threshold", manifest.threshold, threshold),
                                    ("input.shape", manifest.input["shape"][1], width),
                                    ("features", manifest.features, features and features.to_dict())):
            if mine != theirs:
                raise VerifyError(f"{where}: {field} is {mine!r:.80}, but {model_path.name} has {theirs!r:.80}: the "
                                  "manifest and the model disagree; export it again")
    return Deployed(model_path, bundle, manifest, metadata, inputs[0].name, width, list(outputs), labels, head,
                    decision, threshold, checks, names, variant, test_data, features)


def _check_columns(model_path: Path, inputs, features: Features) -> None:
    """A table model's graph takes one input per feature column, in order: a number as float, a category as a
    string."""
    from onnx import TensorProto

    got = [(i.name, i.type.tensor_type.elem_type) for i in inputs]
    want = [(f.name, TensorProto.FLOAT if f.kind == "numeric" else TensorProto.STRING) for f in features.columns]
    if got != want:
        raise VerifyError(f"{model_path}: the graph's inputs ({', '.join(n for n, _ in got[:6])}) are not the "
                          f"{len(want)} columns its metadata zoo.features records; export it again")


def _dim(value_info, axis: int) -> int | None:
    """A fixed dimension of a graph input or output, or None when it is symbolic or absent."""
    dims = value_info.type.tensor_type.shape.dim
    if len(dims) <= axis or not dims[axis].HasField("dim_value"):
        return None
    return dims[axis].dim_value


def decide(deployed: Deployed, probabilities, x=None):
    """The decision rule the metadata states, in numpy (-1 on rows that are not finite)."""
    return decide_np(probabilities, deployed.decision, deployed.threshold, x)
