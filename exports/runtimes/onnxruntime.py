"""onnxruntime on the CPU and on CUDA: the ``onnxruntime-cpu`` and ``onnxruntime-cuda`` runtimes.

This module is the only place in zoo that names an onnxruntime execution
provider. A CUDA session counts only when it really runs on CUDA: onnxruntime
lists providers it cannot load and falls back to the CPU silently, so the
session's own provider list is read back after opening. TF32 is switched off
(onnxruntime's CUDA provider enables it by default since 1.18, which rounds
fp32 matrix products to a 10-bit mantissa) and the option is read back too, so
the session reports the precision it really uses.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from zoo import hookimpl
from zoo.errors import RuntimeFailure, first_line
from zoo.specs import FP32, Runtime, Session
from zoo.tables import feed

if TYPE_CHECKING:
    import numpy as np

#: Rows per onnxruntime call are sized so that one call's input stays near this many bytes.
SLICE_BYTES = 3 << 20


def slice_rows(n_features: int) -> int:
    """Rows per ``run`` call for inputs of ``n_features`` float32 features.

    Measured on 2 cores with the 784-5-3 model at batch 65,536: one ``run`` over
    all rows gave 1.6 M rows/s, runs of 512-2,048 rows 2.4-2.6 M (torch eager on
    the bare MLP: 2.6-2.9 M). Past a few MiB of input per call onnxruntime's GEMM
    falls out of cache; a call costs ~20 us, so slicing is nearly free. Narrow
    inputs (64 features) prefer the larger runs this byte budget gives them.
    """
    return max(256, SLICE_BYTES // (4 * max(1, n_features)))


class OnnxRuntimeSession(Session):
    def __init__(self, runtime: str, sess, device: str, precision: str):
        super().__init__(runtime, device, precision, sess.get_inputs()[0].name,
                         [o.name for o in sess.get_outputs()])
        self.sess = sess

    def run(self, x: np.ndarray, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        import numpy as np

        names = list(outputs or self.output_names)
        rows = slice_rows(x.shape[1] if len(x.shape) == 2 else 1)
        if len(x) <= rows:
            return dict(zip(names, self.sess.run(names, feed(x, self.input_name))))
        parts = [self.sess.run(names, feed(x[start:start + rows], self.input_name)) for start in range(0, len(x), rows)]
        return {name: np.concatenate([p[i] for p in parts]) for i, name in enumerate(names)}

    def runner(self, x, outputs=None):
        if len(x) <= slice_rows(x.shape[1]):  # one call: time onnxruntime's own run, nothing around it
            return partial(self.sess.run, list(outputs or self.output_names), feed(x, self.input_name))
        return partial(self.run, x, outputs)


def _provider_missing(provider: str) -> str | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime is not installed"
    if provider not in ort.get_available_providers():
        return f"this onnxruntime has no {provider}"
    return None


class _OnnxRuntime(Runtime):
    provider = ""
    requires = "onnxruntime"
    columns = strings = True

    def version(self) -> str | None:
        try:
            import onnxruntime
        except ImportError:
            return None
        return onnxruntime.__version__

    def _session(self, model: Path | bytes, provider_options: dict | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        threads = _thread_limit()
        if threads:
            options.intra_op_num_threads = threads
        source = model if isinstance(model, bytes) else str(model)
        providers = [(self.provider, provider_options)] if provider_options else [self.provider]
        return ort.InferenceSession(source, sess_options=options, providers=providers)


def _thread_limit() -> int | None:
    """``OMP_NUM_THREADS``, the usual per-process thread cap, which onnxruntime's own pool ignores.

    Dask's nanny sets it to 1 in every worker process (as pyarrow and BLAS honour it); without it, two
    workers on two cores would each start a pool of two threads and run at half speed.
    """
    import os

    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


class OnnxRuntimeCPU(_OnnxRuntime):
    name = "onnxruntime-cpu"
    summary = "onnxruntime, CPUExecutionProvider"
    provider = "CPUExecutionProvider"
    aliases = ("cpu", "CPUExecutionProvider")

    def unavailable(self) -> str | None:
        return _provider_missing(self.provider)

    def open(self, model_path: Path) -> Session:
        sess = self._session(model_path)
        return OnnxRuntimeSession(self.name, sess, "cpu", FP32)


class OnnxRuntimeCUDA(_OnnxRuntime):
    name = "onnxruntime-cuda"
    summary = "onnxruntime, CUDAExecutionProvider (TF32 off); passes only when the session really runs on CUDA"
    provider = "CUDAExecutionProvider"
    requires = "onnxruntime-gpu (replacing onnxruntime)"
    aliases = ("cuda", "gpu", "CUDAExecutionProvider")
    options = {"use_tf32": "0"}

    def unavailable(self) -> str | None:
        missing = _provider_missing(self.provider)
        if missing:
            return missing
        from onnx import TensorProto, helper

        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        try:
            sess = self._session(probe.SerializeToString(), self.options)
        except Exception as exc:
            return f"{self.provider} is listed but cannot start: {first_line(exc, 200)}"
        if sess.get_providers()[:1] != [self.provider]:
            return f"{self.provider} is listed but a session fell back to {sess.get_providers()[0]}"
        return None

    def open(self, model_path: Path) -> Session:
        sess = self._session(model_path, self.options)
        used = sess.get_providers()
        if used[:1] != [self.provider]:
            raise RuntimeFailure(f"{self.name}: onnxruntime fell back to {used[0] if used else 'nothing'}; "
                                 "nothing ran on CUDA")
        options = sess.get_provider_options().get(self.provider, {})
        precision = "tf32" if options.get("use_tf32") == "1" else FP32
        return OnnxRuntimeSession(self.name, sess, f"cuda:{options.get('device_id', '0')}", precision)


@hookimpl
def register_runtimes(register):
    register(OnnxRuntimeCPU())
    register(OnnxRuntimeCUDA())
