"""The deployer's side: open an exported model and what it says about itself, with onnx and numpy only.

Nothing here, nor anything ``zoo verify`` and ``zoo predict`` import, may import
torch or scikit-learn: a target machine has neither (a test makes those imports
fail and runs both commands). Running the model is the registered runtimes' job
(:mod:`zoo.exports.runtimes`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from zoo.errors import VerifyError, first_line
from zoo.exports.bundle import MANIFEST_FILE, sha256
from zoo.exports.manifest import Manifest


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


def bundle_file(bundle: Path, relative: object, what: str) -> Path:
    """A path named by the manifest, refused unless it stays inside the bundle."""
    if not isinstance(relative, str) or not relative:
        raise VerifyError(f"{bundle / MANIFEST_FILE}: {what} must be a file name, got {relative!r}")
    root = bundle.resolve()
    path = (bundle / relative).resolve()
    if path != root and root not in path.parents:
        raise VerifyError(f"{bundle / MANIFEST_FILE} names {what} {relative!r}, which lies outside the bundle")
    return path


def read_manifest(bundle: Path) -> Manifest:
    path = bundle / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VerifyError(f"{bundle} has no {MANIFEST_FILE}: not a zoo bundle") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VerifyError(f"{path} is not valid JSON ({exc})") from None
    return Manifest.from_dict(data, path)


def load_onnx(model_path: Path, *, check: bool = True):
    """Parse (and fully check) an ONNX file, with one clear error for each way it can be wrong."""
    import onnx

    if not model_path.exists():
        raise VerifyError(f"{model_path} does not exist")
    if model_path.is_dir():
        raise VerifyError(f"{model_path} is a directory without {MANIFEST_FILE}: not a zoo bundle")
    if model_path.stat().st_size == 0:
        raise VerifyError(f"{model_path} is empty, not an ONNX model")
    try:
        model = onnx.load(str(model_path))
    except Exception as exc:
        raise VerifyError(f"{model_path} is not an ONNX model (cannot parse it: {type(exc).__name__})") from None
    if not model.graph.node:
        raise VerifyError(f"{model_path} is not an ONNX model (it parses to an empty graph)")
    if check:
        try:
            onnx.checker.check_model(model, full_check=True)
        except Exception as exc:
            raise VerifyError(f"{model_path} fails the ONNX checker: {first_line(exc)}") from None
    return model


def open_model(path: str | Path, *, check: bool = True, variant: str | None = None) -> Deployed:
    """Open a bundle directory or an ``.onnx`` file; refuse a tampered, foreign or broken one.

    ``variant``: one of the bundle's variants (``variants`` in its manifest) instead of ``model.onnx``.
    """
    path = Path(path)
    bundle = manifest = None
    if path.is_dir() and (path / MANIFEST_FILE).exists():
        bundle = path
    elif path.is_file() and (path.parent / MANIFEST_FILE).exists():
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
            model_path = bundle_file(bundle, record.get("file"), f"variant {variant}")
            expected, test_data = record.get("sha256"), list(record.get("test_data") or [])
        else:
            model_path = bundle_file(bundle, manifest.files.model, "the model")
            expected = manifest.sha256.get(model_path.name)
        if not model_path.exists():
            raise VerifyError(f"{model_path} does not exist (the manifest names it)")
        actual = sha256(model_path)
        if actual != expected:
            raise VerifyError(
                f"checksum mismatch: {model_path.name} has sha256 {actual[:16]}..., the manifest says "
                f"{str(expected)[:16]}...: the file changed after export; re-export it"
            )
        checks.append(("sha256", f"{model_path.name} matches the manifest"))
    else:
        model_path = path
    model = load_onnx(model_path, check=check)
    if check:
        checks.append(("onnx checker", "full check passed"))
    metadata = {p.key: p.value for p in model.metadata_props}
    if "zoo.model" not in metadata:
        raise VerifyError(f"{model_path} carries no zoo metadata: it was not exported by zoo")
    try:
        inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
        input_name = inputs[0].name
        input_size = int(metadata["zoo.input_size"])
        threshold = float(metadata["zoo.threshold"]) if metadata["zoo.decision"] == "threshold" else None
        deployed = Deployed(
            model_path, bundle, manifest, metadata, input_name, input_size,
            [o.name for o in model.graph.output], json.loads(metadata["zoo.class_labels"]),
            metadata["zoo.head"], metadata["zoo.decision"], threshold, checks,
            tuple(json.loads(metadata["zoo.feature_names"])) if "zoo.feature_names" in metadata else None,
            variant, test_data,
        )
    except (KeyError, IndexError, ValueError) as exc:
        raise VerifyError(f"{model_path}: zoo metadata is incomplete or invalid ({exc})") from None
    if manifest is not None and manifest.model.get("name") != deployed.metadata["zoo.model"]:
        raise VerifyError(f"{bundle / MANIFEST_FILE} describes model {manifest.model.get('name')!r} "
                          f"but {model_path.name} holds {deployed.metadata['zoo.model']!r}")
    if "probabilities" not in deployed.output_names or "label" not in deployed.output_names:
        raise VerifyError(f"{model_path} has no 'probabilities' and 'label' outputs: not a zoo export")
    return deployed


def decide(deployed: Deployed, probabilities, x=None):
    """The decision rule the metadata states, in numpy (-1 on rows that are not finite)."""
    from zoo.exports.compare import decide as decide_np

    return decide_np(probabilities, deployed.decision, deployed.threshold, x)
