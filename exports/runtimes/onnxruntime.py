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
from zoo.exports.runtimes import installed
from zoo.specs import FP32, Runtime, Session
from zoo.tables import feed

if TYPE_CHECKING:
    import numpy as np

#: One onnxruntime call takes at most this many bytes of input (a bound on its memory, not a cache size).
SLICE_BYTES = 256 << 20

#: onnxruntime's element types (``NodeArg.type``) that an output can be bound to a numpy buffer with.
_NUMPY_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
                "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
                "tensor(bool)": "bool"}


def slice_rows(n_features: int) -> int:
    """Rows per ``run`` call for inputs of ``n_features`` float32 features: 1,048,576 at 64 features, 85,598 at 784.

    A bound on one call's memory: onnxruntime keeps its arena at the largest call's intermediate tensors (rows
    times the widest layer), so a session that once ran a million rows at once would hold them for good.
    """
    return max(256, SLICE_BYTES // (4 * max(1, n_features)))


class OnnxRuntimeSession(Session):
    """An onnxruntime session: a batch runs in one call, and past :func:`slice_rows` a slice at a time, each
    slice's outputs written by onnxruntime straight into its rows of arrays allocated once for the batch (IO
    binding), never gathered with ``np.concatenate``.

    Slicing to keep a call's input in cache (3 MiB slices, once measured 1.5x on 784-5-3) does not pay on a
    shared machine: each call wakes onnxruntime's thread pool for every node, and a neighbour on the other core
    delays each wake-up. Measured on 2 busy cores, 64-32-10, against one call: 65,536 rows in 12,288-row slices
    0.58-0.62x (concatenated or bound), 262,144 rows in 65,536-row slices 0.64x concatenated and 0.70-0.81x
    bound; the quieter runs put slices within 0.96-1.16x. String inputs (a table's categories) cannot be bound
    in place: such a batch runs in slices whose outputs are concatenated.
    """

    def __init__(self, runtime: str, sess, device: str, precision: str):
        super().__init__(runtime, device, precision, sess.get_inputs()[0].name,
                         [o.name for o in sess.get_outputs()])
        self.sess = sess
        # name -> (dtype, shape of one row), for the outputs whose rows have a fixed shape and a numpy type
        self.row_shapes = {o.name: (_NUMPY_TYPES[o.type], tuple(o.shape[1:])) for o in sess.get_outputs()
                           if o.type in _NUMPY_TYPES and o.shape and not isinstance(o.shape[0], int)
                           and all(isinstance(d, int) for d in o.shape[1:])}

    def run(self, x: np.ndarray, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        names = list(outputs or self.output_names)
        rows = slice_rows(x.shape[1] if len(x.shape) == 2 else 1)
        if len(x) <= rows:
            return dict(zip(names, self.sess.run(names, feed(x, self.input_name))))
        if all(name in self.row_shapes for name in names) and not _has_strings(x):
            return self._run_bound(x, names, rows)
        return self._run_concatenated(x, names, rows)

    def _run_bound(self, x, names: list[str], rows: int) -> dict[str, np.ndarray]:
        """``x`` a slice at a time, each slice's outputs written by onnxruntime into their rows of the result."""
        import numpy as np

        results = {name: np.empty((len(x), *self.row_shapes[name][1]), self.row_shapes[name][0]) for name in names}
        binding = self.sess.io_binding()
        for start in range(0, len(x), rows):
            stop = min(start + rows, len(x))
            for name, value in feed(x[start:stop], self.input_name).items():
                binding.bind_cpu_input(name, value)  # x's own rows (onnxruntime copies rows that are not C-ordered)
            for name, result in results.items():
                part = result[start:stop]
                binding.bind_output(name, "cpu", 0, part.dtype, part.shape, part.ctypes.data)
            self.sess.run_with_iobinding(binding)
        return results

    def _run_concatenated(self, x, names: list[str], rows: int) -> dict[str, np.ndarray]:
        import numpy as np

        parts = [self.sess.run(names, feed(x[start:start + rows], self.input_name)) for start in range(0, len(x), rows)]
        return {name: np.concatenate([p[i] for p in parts]) for i, name in enumerate(names)}

    def runner(self, x, outputs=None):
        if len(x) <= slice_rows(x.shape[1]):  # one call: time onnxruntime's own run, nothing around it
            return partial(self.sess.run, list(outputs or self.output_names), feed(x, self.input_name))
        return partial(self.run, x, outputs)


def _has_strings(x) -> bool:
    return any(value.dtype == object for value in feed(x, "").values())


def _provider_missing(provider: str) -> str | None:
    """Why this onnxruntime cannot have ``provider``, read from its files (see :mod:`.installed`): every build
    has the CPU provider in its compiled core; the CUDA provider is a library of its own beside it."""
    folder = installed.package_folder("onnxruntime")
    if folder is None or not installed.has(folder / "capi", "onnxruntime_pybind11_state*"):
        return "onnxruntime is not installed"
    if provider == "CUDAExecutionProvider" and not installed.has(folder / "capi", "*onnxruntime_providers_cuda*"):
        return f"this onnxruntime has no {provider}"
    return None


class _OnnxRuntime(Runtime):
    provider = ""
    requires = "onnxruntime"
    columns = strings = True

    def version(self) -> str | None:
        return installed.version("onnxruntime")

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
        import onnxruntime as ort
        from onnx import TensorProto, helper

        if self.provider not in ort.get_available_providers():
            return f"this onnxruntime has no {self.provider}"

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
