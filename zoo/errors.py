"""Errors zoo raises on bad input. The CLI shows their message as one line."""

from __future__ import annotations

from collections.abc import Iterable


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an exception's message (its type name when it has none), cut at ``limit``."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return (lines[0].strip() if lines else type(exc).__name__)[:limit]


class ZooError(Exception):
    """Base class: something the user can fix; the message says what and how."""


class UnknownNameError(ZooError, LookupError):
    """A model, policy or dataset name that nothing registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind, self.name = kind, name
        import difflib

        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        if close:
            hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
        elif known:
            hint = f"known {kind}s: {', '.join(known)}"
        else:
            hint = f"no {kind}s are registered"
        super().__init__(f"unknown {kind} {name!r}: {hint}")

    def __str__(self) -> str:  # LookupError subclasses would otherwise quote it
        return self.args[0]


class DuplicateNameError(ZooError):
    """Two plugins registered the same name."""


class PluginError(ZooError):
    """A plugin failed to load or register (raised only in strict mode; otherwise a warning)."""


class SpecError(ZooError, TypeError):
    """A plugin registered a spec that is not valid."""


class PairingError(ZooError, ValueError):
    """A model and a loss policy that must not be trained together."""


class TargetError(ZooError, ValueError):
    """Targets that do not fit the policy's encoding (one-hot for CE, labels out of range)."""


class DataError(ZooError, ValueError):
    """Training data that cannot be read or used."""


class TrainingError(ZooError):
    """Training that could not produce a usable model."""


class OutputPathError(ZooError):
    """An output path that cannot or must not be written (exists, parent is a file, no permission)."""


class ExportError(ZooError):
    """The ONNX export or a file it needs failed."""


class VerifyError(ZooError):
    """A file given to ``zoo verify`` that cannot be checked."""


class RuntimeFailure(ZooError):
    """A runtime could not open or run a model; the message names the runtime and what happened."""


class PredictInputError(ZooError, ValueError):
    """Rows given to a model that it cannot take (wrong columns, not numbers, NaN)."""
