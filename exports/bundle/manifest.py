"""``manifest.json``, typed: what a bundle's model expects and outputs, how to compare it, and the proof.

Format ``zoo-bundle/2`` adds each output's comparison rule and the parity
report per runtime. Format ``zoo-bundle/1`` (zoo 0.1.0) is still read: its
rules are derived from its tolerances as that version applied them. ``bytes``
(the size of every file, which bounds every read of it) and a variant's
``ties`` were added within format 2; a manifest without them is still read.

Everything is validated here, once, as the manifest is read: a field of the wrong
type or a record missing a field is one line naming the field.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from zoo.errors import DataError, VerifyError
from zoo.exports.bundle.layout import MANIFEST_FILE
from zoo.exports.bundle.rules import Rule, rules_for
from zoo.tables.features import Features

FORMAT = "zoo-bundle/2"
READABLE = ("zoo-bundle/1", FORMAT)


@dataclass
class Output:
    name: str
    shape: list[Any]
    dtype: str
    meaning: str
    compare: Rule

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype, "meaning": self.meaning,
                "compare": self.compare.to_dict()}


@dataclass
class Files:
    model: str
    checkpoint: str | None
    test_data: list[str]
    evaluation: str | None = None  # held-out rows and labels, calibration rows (for variants)


#: What a variant's weights are lowered to.
PRECISIONS = ("fp16", "int8")


@dataclass
class Variant:
    """One deployment variant of the bundle's model: its file, how it was made, measured and is replayed."""

    file: str
    sha256: str
    precision: Literal["fp16", "int8"]
    compare: list[Rule]
    test_data: list[str]
    rows: int
    accuracy: float
    fp32_accuracy: float
    accuracy_delta_points: float
    agreement_percent: float  # held-out rows whose labels agree with fp32's, ties left out
    max_abs_probability_difference: float
    size_bytes: int
    size_ratio: float
    method: dict[str, Any] = field(default_factory=dict)
    rows_per_second: dict[str, dict[str, float]] = field(default_factory=dict)
    fp32_rows_per_second: dict[str, dict[str, float]] = field(default_factory=dict)
    not_timed: dict[str, str] = field(default_factory=dict)
    ties: int | None = None  # rows whose top scores are exactly equal in either model; None: not counted

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["compare"] = [r.to_dict() for r in self.compare]
        return data

    @classmethod
    def from_dict(cls, name: str, data: Any, where: Path | str = MANIFEST_FILE) -> Variant:
        field_of = f"{where}: variants.{name}"
        if not isinstance(data, dict):
            raise VerifyError(f"{field_of} is {type(data).__name__}, not a record: export the bundle again")
        missing = [f.name for f in fields(cls) if f.name not in data and not _has_default(f)]
        if missing:
            raise VerifyError(f"{field_of} lacks {', '.join(missing)}: export the bundle again")
        try:
            found = cls(
                file=_text(data["file"]), sha256=_text(data["sha256"]), precision=data["precision"],
                compare=[Rule.from_dict(r) for r in _list(data["compare"])],
                test_data=[_text(t) for t in _list(data["test_data"])], rows=_count(data["rows"]),
                accuracy=_number(data["accuracy"]), fp32_accuracy=_number(data["fp32_accuracy"]),
                accuracy_delta_points=_number(data["accuracy_delta_points"]),
                agreement_percent=_number(data["agreement_percent"]),
                max_abs_probability_difference=_number(data["max_abs_probability_difference"]),
                size_bytes=_count(data["size_bytes"]), size_ratio=_number(data["size_ratio"]),
                method=_record(data.get("method", {})), rows_per_second=_record(data.get("rows_per_second", {})),
                fp32_rows_per_second=_record(data.get("fp32_rows_per_second", {})),
                not_timed=_record(data.get("not_timed", {})),
                ties=None if data.get("ties") is None else _count(data["ties"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise VerifyError(f"{field_of} is invalid ({exc}): export the bundle again") from None
        if found.precision not in PRECISIONS:
            raise VerifyError(f"{field_of}.precision is {found.precision!r}, not one of {', '.join(PRECISIONS)}")
        if not found.test_data:
            raise VerifyError(f"{field_of} lists no test data: export the bundle again")
        return found


def _has_default(f) -> bool:
    return f.default is not MISSING or f.default_factory is not MISSING


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _record(value: Any) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"expected a record, got {type(value).__name__}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"expected a count, got {value!r}")
    return value


@dataclass
class Manifest:
    """Every field a deployer (or a third party re-running the checks) needs."""

    versions: dict[str, Any]
    model: dict[str, Any]
    policy: dict[str, Any]
    input: dict[str, Any]
    outputs: list[Output]
    class_labels: list[str]
    decision: str
    threshold: float | None
    normalization: dict[str, Any]
    training: dict[str, Any]
    files: Files
    sha256: dict[str, str]
    tolerance: dict[str, float]
    parity: dict[str, Any]
    verified: bool
    precision: str = "fp32"
    variants: dict[str, Variant] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)  # every file's size, by relative path (bounds each read)
    format: str = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] | None = None  # a model trained on a table: zoo.tables.features.Features.to_dict()

    @property
    def table(self):
        """The :class:`~zoo.tables.features.Features` of a model trained on a table, else None."""
        return None if self.features is None else Features.from_dict(self.features, "manifest.json")

    @property
    def rules(self) -> list[Rule]:
        return [o.compare for o in self.outputs]

    def to_dict(self) -> dict[str, Any]:
        data = {"format": self.format}
        for key, value in asdict(self).items():
            if key in ("format", "extra", "outputs", "variants"):
                continue
            data[key] = value
        data["outputs"] = [o.to_dict() for o in self.outputs]
        data["variants"] = {name: v.to_dict() for name, v in self.variants.items()}
        order = ["format", "versions", "model", "policy", "input", "features", "outputs", "class_labels", "decision",
                 "threshold", "precision", "normalization", "training", "files", "sha256", "bytes", "tolerance",
                 "parity", "verified", "variants"]
        return {k: data[k] for k in order} | self.extra

    @classmethod
    def from_dict(cls, data: Any, where: Path | str = MANIFEST_FILE) -> Manifest:
        if not isinstance(data, dict) or data.get("format") not in READABLE:
            raise VerifyError(f"{where} is not a zoo manifest (expected format {' or '.join(READABLE)})")
        try:
            tolerance = {"atol": float(data["tolerance"]["atol"]), "rtol": float(data["tolerance"]["rtol"])}
            names = [o["name"] for o in data["outputs"]]
            derived = {r.output: r for r in rules_for(names, tolerance["atol"], tolerance["rtol"])}
            outputs = [Output(o["name"], list(o["shape"]), o["dtype"], o.get("meaning", ""),
                              Rule.from_dict(o["compare"]) if "compare" in o else derived[o["name"]])
                       for o in data["outputs"]]
            if not outputs:
                raise VerifyError(f"{where}: outputs lists no output")
            files = data["files"]
            known = {f.name for f in cls.__dataclass_fields__.values()}
            labels = data["class_labels"]
            if not isinstance(labels, list) or not all(isinstance(c, str) for c in labels):
                raise VerifyError(f"{where}: class_labels must be a list of strings")
            if len(set(labels)) != len(labels) or len(labels) < 2:
                raise VerifyError(f"{where}: class_labels must name two or more classes, each once; "
                                  f"got {labels!r:.200}")
            shape, names = data["input"].get("shape"), data["input"].get("feature_names")
            if not (isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int)
                    and not isinstance(shape[1], bool) and shape[1] > 0):
                raise VerifyError(f"{where}: input.shape must be [batch, features], got {shape!r:.80}")
            if names is not None and not (isinstance(names, list) and len(names) == shape[1]
                                          and all(isinstance(n, str) for n in names)):
                raise VerifyError(f"{where}: input.feature_names must be {shape[1]} strings (or null)")
            if not isinstance(data["training"].get("metrics", {}), dict):
                raise VerifyError(f"{where}: training.metrics must be a record")
            variants = data.get("variants") or {}
            if not isinstance(variants, dict):
                raise VerifyError(f"{where}: variants is {type(variants).__name__}, not a record of variants")
            sizes = data.get("bytes") or {}
            if not isinstance(sizes, dict) or not all(isinstance(k, str) and isinstance(v, int) and
                                                      not isinstance(v, bool) and v >= 0 for k, v in sizes.items()):
                raise VerifyError(f"{where}: bytes must map file names to sizes")
            return cls(
                versions=dict(data["versions"]), model=dict(data["model"]), policy=dict(data["policy"]),
                input=dict(data["input"]), outputs=outputs, class_labels=list(labels),
                decision=str(data["decision"]), threshold=data.get("threshold"),
                normalization=dict(data["normalization"]), training=dict(data["training"]),
                files=Files(files["model"], files.get("checkpoint"), list(files.get("test_data") or []),
                            files.get("evaluation")),
                sha256=dict(data["sha256"]), tolerance=tolerance, parity=dict(data.get("parity") or {}),
                verified=bool(data.get("verified")), precision=str(data.get("precision", "fp32")),
                variants={str(name): Variant.from_dict(str(name), record, where) for name, record in variants.items()},
                bytes=dict(sizes), features=_features(data.get("features"), where),
                format=data["format"], extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise VerifyError(f"{where} is incomplete or invalid ({type(exc).__name__}: {exc})") from None


def _features(data: Any, where) -> dict[str, Any] | None:
    """The features record, checked once here (a malformed one is one line)."""
    if data is None:
        return None
    try:
        return Features.from_dict(data, str(where)).to_dict()
    except DataError as exc:
        raise VerifyError(str(exc)) from None
