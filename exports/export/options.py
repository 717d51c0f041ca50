"""How to export: one record of every export setting and its default, built by the CLI and by the Python API.

Light to import (the CLI declares its options' defaults from it, and ``zoo --help`` must stay fast).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from zoo.exports.runtimes import Runtimes
from zoo.exports.variants import DEFAULT_MAX_ACCURACY_DROP, DEFAULT_MIN_AGREEMENT

#: torch's ONNX exporters; ``auto`` takes the faster TorchScript one (see :mod:`.exporter`).
EXPORTERS = ("auto", "torchscript", "dynamo")


@dataclass(frozen=True)
class ExportOptions:
    """Every setting of an export, with its default (``zoo export``'s options; ``zoo.export``'s keywords)."""

    force: bool = False  # replace an existing bundle (swapped in only once verified)
    exporter: str = "auto"  # one of EXPORTERS
    opset: int = 18
    atol: float = 1e-5  # parity's tolerance on probabilities, absolute ...
    rtol: float = 1e-5  # ... and relative
    verbose: bool = False  # show the exporter's own output
    runtimes: Runtimes = None  # parity's runtimes (names, or a selection made); None: every one that can run here
    variants: list[str] = field(default_factory=list)  # deployment variants to make: fp16, int8
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP  # the variants' guard
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    card: bool = True  # write report.html when matplotlib is installed

    @classmethod
    def of(cls, options: ExportOptions | None = None, **given: Any) -> ExportOptions:
        """``options`` (default: the defaults) with the keywords ``given`` that are not None replacing its fields."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise TypeError(f"unknown export option {', '.join(unknown)}; the options are {', '.join(sorted(known))}")
        return replace(options or cls(), **{k: v for k, v in given.items() if v is not None})


DEFAULTS = ExportOptions()
