"""What plugins register: plain, import-light descriptions of models and datasets, and runtimes.

A runtime is something that can run an exported ONNX file and says how it really
ran it. zoo's own (onnxruntime on CPU and CUDA, ONNX's reference evaluator,
OpenVINO) are default plugins that register through ``register_runtimes``
exactly as a third party would; parity, ``zoo verify``, ``zoo predict`` and
``zoo bench`` loop over what is registered and never name a concrete one. A
runtime object must be cheap to create and import nothing heavy at module
level: the library it wraps is imported inside :meth:`Runtime.unavailable`,
:meth:`Runtime.version` and :meth:`Runtime.open`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from zoo.errors import SpecError

if TYPE_CHECKING:
    import numpy as np

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

Task = Literal["binary", "multiclass"]


def check_name(kind: str, name: object) -> None:
    """Names are lower-case words joined by '-', '_' or '.', as used on the command line."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise SpecError(
            f"invalid {kind} name {name!r}: use lower-case letters, digits, '-', '_' or '.'"
        )


def resolve(target: Callable | str) -> Callable:
    """Return ``target`` itself, or import it from a ``"module:attr"`` string."""
    if callable(target):
        return target
    module_name, _, attr = target.partition(":")
    if not attr:
        raise SpecError(f"builder {target!r} must look like 'package.module:attribute'")
    module = importlib.import_module(module_name)
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise SpecError(f"{module_name!r} has no attribute {attr!r}") from None
    return obj


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    ``builder`` is called as ``builder(input_size=..., num_classes=..., **hyperparameters)``
    and returns a ``torch.nn.Module``. ``emits`` says what its forward returns:
    ``"logits"`` (raw scores, the default and the right choice for nearly every
    loss) or ``"probabilities"`` (an activation inside the model, as the seed's
    binary net does). ``hyperparameters`` holds every option the builder takes
    and its default; ``input_size`` and ``num_classes`` come from the data when
    training.
    """

    name: str
    summary: str
    builder: Callable[..., Any] | str
    policy: str
    task: Task
    dataset: str
    emits: Literal["logits", "probabilities"] = "logits"
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("model", self.name)
        for attr in ("summary", "policy", "dataset"):
            if not isinstance(getattr(self, attr), str):
                raise SpecError(f"model {self.name!r}: {attr} must be a string")
        if not (callable(self.builder) or isinstance(self.builder, str)):
            raise SpecError(f"model {self.name!r}: builder must be a callable or 'module:attr'")
        if self.task not in ("binary", "multiclass"):
            raise SpecError(f"model {self.name!r}: task must be 'binary' or 'multiclass'")
        if self.emits not in ("logits", "probabilities"):
            raise SpecError(f"model {self.name!r}: emits must be 'logits' or 'probabilities'")
        if not isinstance(self.hyperparameters, Mapping):
            raise SpecError(f"model {self.name!r}: hyperparameters must be a mapping of name to default")
        defaults = {"input_size": 784, "num_classes": 2 if self.task == "binary" else 3}
        defaults.update(self.hyperparameters)
        object.__setattr__(self, "hyperparameters", MappingProxyType(defaults))

    def config(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The builder's keyword arguments: defaults updated with ``overrides``."""
        unknown = sorted(set(overrides) - set(self.hyperparameters))
        if unknown:
            raise SpecError(
                f"model {self.name!r} takes no option {', '.join(map(repr, unknown))}; "
                f"it takes: {', '.join(sorted(self.hyperparameters))}"
            )
        config = {**self.hyperparameters, **overrides}
        for key, value in config.items():
            if key.endswith("_size") or key == "num_classes":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise SpecError(
                        f"model {self.name!r}: {key} must be a positive integer, got {value!r}"
                    )
        return config


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: ``loader()`` returns a :class:`zoo.data.Dataset` from local files."""

    name: str
    summary: str
    task: Task
    loader: Callable[[], Any] | str

    def __post_init__(self) -> None:
        check_name("dataset", self.name)
        if self.task not in ("binary", "multiclass"):
            raise SpecError(f"dataset {self.name!r}: task must be 'binary' or 'multiclass'")
        if not (callable(self.loader) or isinstance(self.loader, str)):
            raise SpecError(f"dataset {self.name!r}: loader must be a callable or 'module:attr'")

    def load(self):
        return resolve(self.loader)()


# -- runtimes ------------------------------------------------------------------------------------


#: The precision every zoo bundle claims today; a session reporting another one fails verification.
FP32 = "fp32"


class Session:
    """A model opened by a runtime.

    ``device`` and ``precision`` say what the runtime *really* used, read back
    from the runtime after opening (the providers an onnxruntime session ended
    up with, the inference precision OpenVINO compiled for), never what was
    asked for: a runtime that lowers precision or falls back to another device
    on its own must say so here, and zoo then fails verification.
    """

    def __init__(self, runtime: str, device: str, precision: str, input_name: str, output_names: list[str]):
        self.runtime, self.device, self.precision = runtime, device, precision
        self.input_name, self.output_names = input_name, list(output_names)

    def run(self, x: np.ndarray, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run float32 rows ``x`` (batch, features); return the named outputs (all when None) by name.

        For a model trained on a table, ``x`` is a :class:`zoo.tables.Frame` instead: one ``(batch, 1)`` array per
        column (float32, or ``str`` objects for a category), and ``x.feed()`` gives them by input name; only a
        runtime whose ``columns`` (and, for categories, ``strings``) is True gets one.
        """
        raise NotImplementedError

    def runner(self, x: np.ndarray, outputs: list[str] | None = None) -> Callable[[], Any]:
        """A call with no arguments that runs ``x`` once: what ``zoo bench`` times, so that a runtime can
        bind its arguments ahead and the timing holds nothing but the run."""
        return partial(self.run, x, outputs)


class Runtime:
    """Subclass this, set the class attributes, implement the three methods, and register an instance.

    ``name``
        What users type: ``--runtime NAME``. Lower-case, ``-`` allowed.
    ``summary``
        One line for ``zoo runtimes``.
    ``requires``
        What to install when it is unavailable, as a pip requirement
        (``"zoo-onnx[openvino]"``, ``"onnxruntime-gpu"``).
    ``max_rows``
        The largest batch it is meant for (``None``: no limit). A slow runtime
        such as a pure-Python interpreter sets it; ``zoo bench`` stays below it
        and ``zoo predict`` feeds it no more rows at once.
    ``aliases``
        Other names ``zoo predict --provider`` (deprecated) maps to it.
    ``columns``
        True when ``Session.run`` takes a model trained on a table: a
        :class:`zoo.tables.Frame` of its columns, one graph input each. False
        (the default, for runtimes written before) skips such a model, with
        that reason.
    ``strings``
        True when it runs string inputs and ``ai.onnx.ml.LabelEncoder`` (a
        model with categorical columns); False skips such a model.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    requires: ClassVar[str] = ""
    max_rows: ClassVar[int | None] = None
    aliases: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[bool] = False
    strings: ClassVar[bool] = False

    def unavailable(self) -> str | None:
        """``None`` when this runtime can run a model here, else the reason it cannot (one line)."""
        raise NotImplementedError

    def version(self) -> str | None:
        """The version of the library behind it, or ``None`` when it is not installed."""
        raise NotImplementedError

    def open(self, model_path: Path) -> Session:
        """Open ``model_path``; raise an exception with a one-line message when it cannot."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<runtime {self.name}>"
