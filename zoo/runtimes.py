"""What a runtime is: something that can run an exported ONNX file, and says how it really ran it.

Runtimes are registered through the ``register_runtimes`` hook, like models and
policies. zoo's own (onnxruntime on CPU and CUDA, ONNX's reference evaluator,
OpenVINO) are default plugins that use that hook exactly as a third party would;
parity at export, ``zoo verify``, ``zoo predict`` and ``zoo bench`` loop over
what is registered and never name a concrete one.

A runtime object must be cheap to create and import nothing heavy at module
level: ``zoo list`` and ``zoo --help`` build the registry without running
anything. The library it wraps is imported inside :meth:`Runtime.unavailable`,
:meth:`Runtime.version` and :meth:`Runtime.open`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np

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
        """Run float32 rows ``x`` (batch, features); return the named outputs (all when None) by name."""
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
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    requires: ClassVar[str] = ""
    max_rows: ClassVar[int | None] = None
    aliases: ClassVar[tuple[str, ...]] = ()

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
