"""``openvino-cpu``: Intel's OpenVINO on the CPU, in the ``[openvino]`` extra.

OpenVINO lowers precision on its own: on CPUs with AMX or AVX512-BF16 it runs
an fp32 model in bfloat16 unless told otherwise (measured on the multiclass
bundle at batch 65,536: probabilities off by up to 0.14 against onnxruntime,
0.19 % of labels flipped). zoo bundles claim fp32, so this runtime asks for f32
inference precision and reports the precision the compiled model really has;
a session that reports anything but fp32 fails verification.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from zoo import hookimpl
from zoo.exports.runtimes import installed
from zoo.specs import FP32, Runtime, Session
from zoo.tables import feed

_PRECISIONS = {"f32": FP32, "bf16": "bf16", "f16": "fp16", "f64": "fp64"}


class OpenVINOSession(Session):
    def __init__(self, runtime: str, compiled, device: str, precision: str, names: list[str]):
        # A port may carry several tensor names (an output that also feeds other nodes): find the graph's own.
        self.ports = {}
        for port in compiled.outputs:
            mine = [n for n in names if n in port.get_names()]
            self.ports[mine[0] if mine else port.get_any_name()] = port
        super().__init__(runtime, device, precision, compiled.inputs[0].get_any_name(), list(self.ports))
        self.compiled, self.local = compiled, threading.local()

    def run(self, x, outputs=None):
        import numpy as np

        # An infer request runs one inference at a time ("Infer Request is busy"): one per thread, so that a
        # session shared by threads (zoo.load_bundle's, in a thread pool) runs in each of them.
        request = getattr(self.local, "request", None)
        if request is None:
            request = self.local.request = self.compiled.create_infer_request()
        results = request.infer(feed(x, self.input_name))
        return {name: np.array(results[self.ports[name]]) for name in (outputs or self.output_names)}


class OpenVINOCPU(Runtime):
    name = "openvino-cpu"
    summary = "OpenVINO on the CPU, at fp32 inference precision (read back from the compiled model)"
    requires = "zoo-onnx[openvino]"
    device = "CPU"
    # Measured with OpenVINO 2026.4: its ONNX frontend has "no conversion rule" for ai.onnx.ml.LabelEncoder, so a
    # model with categorical columns cannot load; numbers (IsNaN, Where, Concat) run.
    columns, strings = True, False

    def __init__(self, precision: str | None = "f32") -> None:
        """``precision`` is OpenVINO's INFERENCE_PRECISION_HINT; None leaves OpenVINO's own default."""
        self.precision = precision

    def unavailable(self) -> str | None:
        folder = installed.package_folder("openvino")  # read from the files: see zoo.exports.runtimes.installed
        if folder is None:
            return "openvino is not installed"
        if installed.has(folder / "libs", "*openvino_*_cpu_plugin*"):  # the wheel's CPU plugin, beside its core
            return None
        ov = import_openvino()  # another layout (a system or conda install): ask OpenVINO itself
        if self.device not in ov.Core().available_devices:
            return f"OpenVINO sees no {self.device} device"
        return None

    def version(self) -> str | None:
        return installed.version("openvino")

    def open(self, model_path: Path) -> Session:
        ov = import_openvino()
        config = {} if self.precision is None else {"INFERENCE_PRECISION_HINT": self.precision}
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0:  # as onnxruntime does: a Dask worker sets 1
            config["INFERENCE_NUM_THREADS"] = int(threads)
        core = ov.Core()
        model = core.read_model(str(model_path))
        names = [name for port in model.outputs for name in sorted(port.get_names())]
        compiled = core.compile_model(model, self.device, config)
        used = str(compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())
        devices = ",".join(compiled.get_property("EXECUTION_DEVICES")).lower()
        return OpenVINOSession(self.name, compiled, devices, _PRECISIONS.get(used, used), _graph_outputs(model_path)
                               or names)


def import_openvino():
    """``import openvino``, without the usage report its import sends.

    ``import openvino`` imports its model converter, which posts a Google Analytics event unless
    ``~/intel/openvino_telemetry`` holds 0: on Linux it forks the whole process (torch and all) to post it, counts
    the import in ``~/intel/stats``, and waits up to 3 s for the post as the process exits. Measured here:
    ``import openvino`` 0.48 s against 0.35 s without; where the network swallows the packets, 3.3 s, and a
    ``zoo export`` 5.8 s against 2.4 s with a traceback from the forked child on stderr. zoo reaches no network.
    So while zoo imports OpenVINO the telemetry package is hidden, and the converter takes the stand-in OpenVINO
    ships for its absence; everything else, ``openvino.convert_model`` included, is unchanged, and a later
    ``import openvino_telemetry`` finds the package again. An OpenVINO imported before zoo's is taken as it is.
    """
    with _IMPORTING:
        if "openvino" in sys.modules:
            return sys.modules["openvino"]
        hidden = sys.modules.get(_TELEMETRY, _ABSENT)
        sys.modules[_TELEMETRY] = None  # import raises ImportError, which OpenVINO's converter catches
        try:
            import openvino
        finally:
            if hidden is _ABSENT:
                del sys.modules[_TELEMETRY]
            else:
                sys.modules[_TELEMETRY] = hidden
        return openvino


_TELEMETRY, _ABSENT = "openvino_telemetry", object()
_IMPORTING = threading.Lock()


def _graph_outputs(model_path: Path) -> list[str]:
    """The output names the ONNX graph declares (what zoo and its users call the outputs)."""
    import onnx

    return [o.name for o in onnx.load(str(model_path), load_external_data=False).graph.output]


@hookimpl
def register_runtimes(register):
    register(OpenVINOCPU())
