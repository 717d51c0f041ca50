"""The registered runtimes, as every command uses them: chosen by name, probed, opened and run safely.

The built-in runtimes are the modules beside this one, each a default plugin
that registers through ``register_runtimes`` as a third party's would. Nothing
outside those modules names an execution provider or a runtime library: the
callers here loop over the registry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import RuntimeFailure, ZooError, first_line
from zoo.registry import Registry, default_registry
from zoo.specs import Runtime, Session

if TYPE_CHECKING:
    import numpy as np

#: The runtime zoo predicts on, scores a card's rows on and makes variants with, unless told otherwise: a base
#: dependency, so it is there wherever zoo is.
DEFAULT_RUNTIME = "onnxruntime-cpu"


@dataclass
class RuntimeStatus:
    """One row of ``zoo runtimes``."""

    name: str
    available: bool
    reason: str | None
    version: str | None
    requires: str
    summary: str
    registered_by: str
    version_error: str | None = None  # why version() failed, when it raised

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _registry(registry: Registry | None) -> Registry:
    return registry or default_registry()


def why_unavailable(runtime: Runtime) -> str | None:
    """The runtime's own probe, a failure of the probe counted as a reason (a plugin's may fail in any way)."""
    try:
        reason = runtime.unavailable()
    except Exception as exc:
        return f"its availability probe failed: {type(exc).__name__}: {first_line(exc)}"
    return None if reason is None else str(reason)


def version_of(runtime: Runtime) -> str | None:
    return _version(runtime)[0]


def _version(runtime: Runtime) -> tuple[str | None, str | None]:
    """(the version, or None; why ``version()`` failed, or None)."""
    try:
        version = runtime.version()
    except Exception as exc:  # shown beside the runtime, never a crash of the command
        return None, f"version() failed: {type(exc).__name__}: {first_line(exc)}"
    return (None if version is None else str(version)), None


def status(runtime: Runtime, registry: Registry | None = None) -> RuntimeStatus:
    reason = why_unavailable(runtime)
    version, version_error = _version(runtime)
    return RuntimeStatus(runtime.name, reason is None, reason, version, runtime.requires,
                         runtime.summary, _registry(registry).owner("runtime", runtime.name), version_error)


def statuses(registry: Registry | None = None) -> list[RuntimeStatus]:
    registry = _registry(registry)
    return [status(registry.get("runtime", name), registry) for name in registry.in_order("runtime")]


@dataclass(frozen=True)
class Choice:
    """A runtime a command runs on, why it cannot run here (None: it can), and whether the user named it.

    It unpacks as ``runtime, why_not``.
    """

    runtime: Runtime
    why_not: str | None
    named: bool = False

    def __iter__(self):
        return iter((self.runtime, self.why_not))


Runtimes = list[str] | tuple[str, ...] | list[Choice] | None


def select(names: Runtimes = None, registry: Registry | None = None) -> list[Choice]:
    """The runtimes a command runs on, resolved once, at its edge, and passed on as they are.

    No names: every registered runtime in registration order (the built-ins
    first, onnxruntime-cpu leading), the unavailable ones with their reason
    (reported as skipped). Names: exactly those, and one that cannot run here
    is an error, since the user asked for it. A selection already made is
    returned as it is: each runtime is probed once per command.
    """
    if names and all(isinstance(n, Choice) for n in names):
        return list(names)
    registry = _registry(registry)
    if not names:
        chosen = [registry.get("runtime", name) for name in registry.in_order("runtime")]
        return [Choice(runtime, why_unavailable(runtime)) for runtime in chosen]
    selected = []
    for name in dict.fromkeys(names):
        runtime = registry.get("runtime", name)
        reason = why_unavailable(runtime)
        if reason is not None:
            hint = f"; it needs {runtime.requires}" if runtime.requires else ""
            raise ZooError(f"runtime {name} cannot run here: {reason}{hint} (zoo runtimes lists what can)")
        selected.append(Choice(runtime, None, named=True))
    return selected


def by_alias(alias: str, registry: Registry | None = None) -> Runtime:
    """The runtime that a deprecated ``--provider`` value names (``cpu``, ``cuda``, a provider name)."""
    registry = _registry(registry)
    for name in registry.names("runtime"):
        runtime = registry.get("runtime", name)
        if alias == name or alias.lower() in (a.lower() for a in runtime.aliases):
            return runtime
    known = sorted(a for n in registry.names("runtime") for a in registry.get("runtime", n).aliases)
    raise ZooError(f"unknown provider {alias!r}: use --runtime NAME (zoo runtimes lists them); "
                   f"--provider takes {', '.join(known)}")


def cannot_take(runtime: Runtime, features) -> str | None:
    """Why ``runtime`` cannot run a model trained on a table with ``features`` (None: it can, or it is no such
    model): a skip with this reason, never a pass."""
    if features is None:
        return None
    if not runtime.columns:
        return "it takes one input matrix; this model takes a table's columns, one input each"
    if features.strings and not runtime.strings:
        categorical = [f.name for f in features.columns if f.kind == "categorical"]
        columns = ", ".join(repr(c) for c in categorical[:3]) + (" ..." if len(categorical) > 3 else "")
        return ("it cannot take string inputs (ai.onnx.ml.LabelEncoder), which the categorical column"
                + (f"s {columns} need" if len(categorical) > 1 else f" {columns} needs"))
    return None


def open_session(runtime: Runtime, model_path: Path) -> Session:
    """``runtime.open``, any failure turned into one line naming the runtime."""
    try:
        session = runtime.open(Path(model_path))
    except RuntimeFailure:
        raise
    except Exception as exc:  # onnxruntime's InvalidGraph, OpenVINO's RuntimeError, a plugin's anything
        raise RuntimeFailure(f"{runtime.name} cannot load {model_path}: {first_line(exc)}") from None
    if not isinstance(session, Session):
        raise RuntimeFailure(f"{runtime.name}: open() returned {type(session).__name__}, not a zoo.Session")
    return session


def run(session: Session, x: np.ndarray, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
    """``session.run``, any failure turned into one line naming the runtime, and what it returned checked:
    every output asked for, one row per input row, ``label`` integers, the scores floating point."""
    import numpy as np  # deferred: the commands' modules import this one, and zoo --help must not pay for numpy

    try:
        got = session.run(x, outputs)
        if not isinstance(got, dict):
            raise RuntimeFailure(f"{session.runtime}: run() returned {type(got).__name__}, not a dict of outputs")
        got = {name: np.asarray(value) for name, value in got.items()}
    except RuntimeFailure:
        raise
    except Exception as exc:
        raise RuntimeFailure(f"{session.runtime} failed to run the model: {first_line(exc)}") from None
    for name in outputs or session.output_names:
        value = got.get(name)
        if value is None:
            raise RuntimeFailure(f"{session.runtime}: run() returned no output {name!r}")
        kinds, ndim = ("iu", 1) if name == "label" else ("f", 2)
        if value.dtype.kind not in kinds or value.ndim != ndim or len(value) != len(x):
            raise RuntimeFailure(f"{session.runtime}: run() returned {name!r} as {value.dtype} {value.shape} for "
                                 f"{len(x)} rows; expected {'integers' if name == 'label' else 'floats'} "
                                 f"({len(x)}{', k' if ndim == 2 else ''})")
    return got


def precision_problem(session: Session, claimed: str, lowered_in_graph: tuple[str, ...] = ()) -> str | None:
    """Why a session may not verify a bundle that claims ``claimed`` precision, or None when it may.

    ``lowered_in_graph``: precisions the graph itself declares (a variant's fp16 weights), which a runtime
    that reports the graph's own types (the ONNX reference) may name beside ``claimed``.
    """
    if session.precision == claimed or set(session.precision.split("+")) <= {claimed, *lowered_in_graph}:
        return None
    return (f"ran at {session.precision}, but the bundle claims {claimed}: this runtime lowered the precision "
            "on its own")
