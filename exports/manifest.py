"""``manifest.json``, typed: what a bundle's model expects and outputs, how to compare it, and the proof.

Format ``zoo-bundle/2`` adds each output's comparison rule and the parity
report per runtime. Format ``zoo-bundle/1`` (zoo 0.1.0) is still read: its
rules are derived from its tolerances as that version applied them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import VerifyError
from zoo.exports.compare import Rule, rules_for

FORMAT = "zoo-bundle/2"
READABLE = ("zoo-bundle/1", FORMAT)
FILE = "manifest.json"


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
    variants: dict[str, Any] = field(default_factory=dict)  # name -> how it was made, measured, tested
    format: str = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rules(self) -> list[Rule]:
        return [o.compare for o in self.outputs]

    def to_dict(self) -> dict[str, Any]:
        data = {"format": self.format}
        for key, value in asdict(self).items():
            if key in ("format", "extra", "outputs"):
                continue
            data[key] = value
        data["outputs"] = [o.to_dict() for o in self.outputs]
        order = ["format", "versions", "model", "policy", "input", "outputs", "class_labels", "decision",
                 "threshold", "precision", "normalization", "training", "files", "sha256", "tolerance", "parity",
                 "verified", "variants"]
        return {k: data[k] for k in order} | self.extra

    @classmethod
    def from_dict(cls, data: Any, where: Path | str = FILE) -> Manifest:
        if not isinstance(data, dict) or data.get("format") not in READABLE:
            raise VerifyError(f"{where} is not a zoo manifest (expected format {' or '.join(READABLE)})")
        try:
            tolerance = {"atol": float(data["tolerance"]["atol"]), "rtol": float(data["tolerance"]["rtol"])}
            names = [o["name"] for o in data["outputs"]]
            derived = {r.output: r for r in rules_for(names, tolerance["atol"], tolerance["rtol"])}
            outputs = [Output(o["name"], list(o["shape"]), o["dtype"], o.get("meaning", ""),
                              Rule.from_dict(o["compare"]) if "compare" in o else derived[o["name"]])
                       for o in data["outputs"]]
            files = data["files"]
            known = {f.name for f in cls.__dataclass_fields__.values()}
            return cls(
                versions=dict(data["versions"]), model=dict(data["model"]), policy=dict(data["policy"]),
                input=dict(data["input"]), outputs=outputs, class_labels=[str(c) for c in data["class_labels"]],
                decision=str(data["decision"]), threshold=data.get("threshold"),
                normalization=dict(data["normalization"]), training=dict(data["training"]),
                files=Files(files["model"], files.get("checkpoint"), list(files.get("test_data") or []),
                            files.get("evaluation")),
                sha256=dict(data["sha256"]), tolerance=tolerance, parity=dict(data.get("parity") or {}),
                verified=bool(data.get("verified")), precision=str(data.get("precision", "fp32")),
                variants=dict(data.get("variants") or {}),
                format=data["format"], extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VerifyError(f"{where} is incomplete or invalid ({type(exc).__name__}: {exc})") from None
